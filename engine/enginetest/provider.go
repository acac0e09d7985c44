package enginetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/appfleet/appfleet/apphost"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Provider is a fake provider whose runtimes are real ones (apphost) served in this process: what a plan
// observes of apps and what apply does to them is real, while environments come and go without processes
// or containers. It records every call that changes something. It is safe for concurrent use.
//
// Register it under a provider name manifests may use (spec.ProviderLocal) with Registry.
type Provider struct {
	t    *testing.T
	root string

	mu    sync.Mutex
	envs  map[string]*runtime
	calls []string
}

type runtime struct {
	fleet    string
	specHash string
	srv      *httptest.Server
	rt       *apphost.Runtime
	// down makes the runtime answer every request with 503 until its next Apply.
	down atomic.Bool
}

// Manifests declare a small fleet for tests: fleet acme, environment dev (provider local, which
// Registry serves by default) and app crm in it, with one collection of two fields.
const Manifests = `apiVersion: appfleet.dev/v1alpha1
kind: Fleet
metadata: {name: acme}
---
apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: crm}
spec:
  environment: dev
  collections:
    - name: customers
      fields:
        - {name: name, type: string}
        - {name: email, type: string}
`

// token is the management token of every runtime the fake starts.
const token = "enginetest-token"

// NewProvider returns a fake provider whose runtimes keep their data under t.TempDir() and are closed
// when the test ends.
func NewProvider(t *testing.T) *Provider {
	p := &Provider{t: t, root: t.TempDir(), envs: map[string]*runtime{}}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for name, r := range p.envs {
			p.close(name, r)
		}
	})
	return p
}

// Registry returns a registry that builds p under each of names, or spec.ProviderLocal when none given.
// Every provider built records the fleet it was configured with.
func (p *Provider) Registry(names ...string) providers.Registry {
	if len(names) == 0 {
		names = []string{spec.ProviderLocal}
	}
	reg := providers.Registry{}
	for _, n := range names {
		reg[n] = func(cfg providers.Config) (providers.Provider, error) {
			return &bound{p: p, fleet: cfg.Fleet, kind: n}, nil
		}
	}
	return reg
}

// Calls returns the calls that changed something, in order: "apply dev", "destroy dev".
func (p *Provider) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// Runtime returns the runtime of env, or nil when it does not exist.
func (p *Provider) Runtime(env string) *apphost.Runtime {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.envs[env]; r != nil {
		return r.rt
	}
	return nil
}

// Unreach makes env's runtime answer 503 to everything, as a runtime that is overloaded or hung would
// look to the planner, until its next Apply.
func (p *Provider) Unreach(env string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.envs[env]; r != nil {
		r.down.Store(true)
	}
}

// bound is the provider as built for one fleet.
type bound struct {
	p     *Provider
	fleet string
	kind  string
}

func (b *bound) Observe(_ context.Context, env spec.Environment) (providers.Observed, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	r := b.p.envs[env.Metadata.Name]
	if r == nil || r.fleet != b.fleet {
		return providers.Observed{}, fmt.Errorf("environment %q: %w", env.Metadata.Name, providers.ErrNotFound)
	}
	return b.observed(env.Metadata.Name, r), nil
}

func (b *bound) observed(name string, r *runtime) providers.Observed {
	return providers.Observed{
		Environment: name, Fleet: r.fleet, Provider: b.kind, Running: true,
		Endpoint: providers.Endpoint{URL: r.srv.URL, Token: token}, SpecHash: r.specHash,
	}
}

func (b *bound) Apply(ctx context.Context, env spec.Environment) (providers.Endpoint, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	name := env.Metadata.Name
	b.p.calls = append(b.p.calls, "apply "+name)
	r := b.p.envs[name]
	if r == nil {
		rt, err := apphost.New(ctx, apphost.Config{DataDir: filepath.Join(b.p.root, name), Name: name, Token: token})
		if err != nil {
			return providers.Endpoint{}, err
		}
		r = &runtime{fleet: b.fleet, rt: rt}
		r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if r.down.Load() {
				http.Error(w, "unreachable", http.StatusServiceUnavailable)
				return
			}
			rt.ServeHTTP(w, req)
		}))
		b.p.envs[name] = r
	}
	r.down.Store(false)
	r.specHash = env.SpecHash()
	return providers.Endpoint{URL: r.srv.URL, Token: token}, nil
}

func (b *bound) Destroy(_ context.Context, env spec.Environment) error {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	name := env.Metadata.Name
	b.p.calls = append(b.p.calls, "destroy "+name)
	if r := b.p.envs[name]; r != nil {
		b.p.close(name, r)
	}
	return nil
}

func (b *bound) List(_ context.Context, fleet string) ([]providers.Observed, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	var out []providers.Observed
	for name, r := range b.p.envs {
		if r.fleet == fleet {
			out = append(out, b.observed(name, r))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Environment < out[j].Environment })
	return out, nil
}

// close stops env's runtime; p.mu is held.
func (p *Provider) close(name string, r *runtime) {
	r.srv.Close()
	if err := r.rt.Close(context.Background()); err != nil {
		p.t.Errorf("close runtime of %s: %v", name, err)
	}
	delete(p.envs, name)
}
