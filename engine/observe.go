package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// DefaultObserveTimeout bounds one runtime's management API during observation when the caller gives none.
const DefaultObserveTimeout = 10 * time.Second

// observeParallelism bounds how many environments are observed at once: enough that a fleet of many
// environments is observed in about the time of its slowest one, few enough not to exhaust descriptors.
const observeParallelism = 16

// Observation is everything Observe learns about a fleet.
type Observation struct {
	// Snapshot is what the planner reads.
	Snapshot plan.Snapshot
	// Endpoints are the management API endpoints (with tokens) of every environment that exists, by name,
	// for the executor to act through.
	Endpoints map[string]providers.Endpoint
	// Problems are failures that belong to no single environment, such as a provider that could not list
	// what the fleet owns; undeclared environments may be missing from Snapshot because of them.
	Problems []error
}

// Observe asks, in parallel, each declared environment's provider for its runtime and each running
// runtime's management API for its apps, and every registered provider for the environments cfg.Fleet
// owns that envs no longer declare (those are what prune removes). timeout bounds each runtime's API
// (zero means DefaultObserveTimeout); ctx bounds everything.
//
// It never fails and never panics on a provider's behalf: a provider error or an unreachable runtime is
// recorded in that environment's state (Error, Reachable false), so that a plan can show it. When ctx
// ends before it is done, what it returns is partial: callers check ctx.Err() before using it.
func Observe(ctx context.Context, reg providers.Registry, cfg providers.Config, envs []spec.Environment, timeout time.Duration) Observation {
	if timeout <= 0 {
		timeout = DefaultObserveTimeout
	}
	o := &observer{reg: reg, cfg: cfg, timeout: timeout, providers: map[string]*lazyProvider{}}
	out := Observation{
		Snapshot:  plan.Snapshot{Fleet: cfg.Fleet, Environments: map[string]plan.EnvironmentState{}},
		Endpoints: map[string]providers.Endpoint{},
	}
	var mu sync.Mutex
	record := func(st plan.EnvironmentState, ep providers.Endpoint) {
		mu.Lock()
		defer mu.Unlock()
		out.Snapshot.Environments[st.Name] = st
		if st.Exists && ep.URL != "" {
			out.Endpoints[st.Name] = ep
		}
	}
	declared := map[string]bool{}
	for _, env := range envs {
		declared[env.Metadata.Name] = true
	}

	// Every environment is observed in one bounded group. The providers' List calls (one per registered
	// kind, a handful) run beside it, outside the bound, so that a List waiting for a free slot to observe
	// what it found can never hold a slot itself.
	var g errgroup.Group
	g.SetLimit(observeParallelism)
	var listers sync.WaitGroup
	var problems []error
	for _, kind := range slices.Sorted(maps.Keys(reg)) {
		listers.Go(func() {
			owned, err := o.list(ctx, kind)
			if err != nil {
				mu.Lock()
				problems = append(problems, err)
				mu.Unlock()
				return
			}
			for _, obs := range owned {
				if !declared[obs.Environment] {
					g.Go(func() error { record(o.undeclared(ctx, obs)); return nil })
				}
			}
		})
	}
	for _, env := range envs {
		g.Go(func() error { record(o.declared(ctx, env)); return nil })
	}
	// The listers add to g: they finish before g is waited for, so nothing is added after Wait begins.
	listers.Wait()
	_ = g.Wait()
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	out.Problems = problems
	return out
}

type observer struct {
	reg     providers.Registry
	cfg     providers.Config
	timeout time.Duration

	mu        sync.Mutex
	providers map[string]*lazyProvider
}

// lazyProvider builds each provider kind once, however many environments use it.
type lazyProvider struct {
	once sync.Once
	p    providers.Provider
	err  error
}

func (o *observer) provider(kind string) (providers.Provider, error) {
	o.mu.Lock()
	lp, ok := o.providers[kind]
	if !ok {
		lp = &lazyProvider{}
		o.providers[kind] = lp
	}
	o.mu.Unlock()
	lp.once.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				lp.err = fmt.Errorf("provider %q panicked while being built: %v", kind, r)
			}
		}()
		lp.p, lp.err = o.reg.New(kind, o.cfg)
	})
	return lp.p, lp.err
}

func (o *observer) declared(ctx context.Context, env spec.Environment) (st plan.EnvironmentState, ep providers.Endpoint) {
	st = plan.EnvironmentState{Name: env.Metadata.Name, Provider: env.Spec.Provider}
	defer recoverInto(&st)
	p, err := o.provider(env.Spec.Provider)
	if err != nil {
		st.Error, st.ProviderUnavailable = err.Error(), true
		return st, providers.Endpoint{}
	}
	obs, err := p.Observe(ctx, env)
	if errors.Is(err, providers.ErrNotFound) {
		return st, providers.Endpoint{}
	}
	if err != nil {
		st.Error = fmt.Sprintf("observe %s runtime: %v", env.Spec.Provider, err)
		return st, providers.Endpoint{}
	}
	return o.runtime(ctx, st, obs)
}

func (o *observer) undeclared(ctx context.Context, obs providers.Observed) (st plan.EnvironmentState, ep providers.Endpoint) {
	st = plan.EnvironmentState{Name: obs.Environment, Provider: obs.Provider}
	defer recoverInto(&st)
	return o.runtime(ctx, st, obs)
}

// runtime fills st from what the provider observed and, when the runtime runs, from its management API.
func (o *observer) runtime(ctx context.Context, st plan.EnvironmentState, obs providers.Observed) (plan.EnvironmentState, providers.Endpoint) {
	st.Exists = true
	st.Running = obs.Running
	st.SpecHash = obs.SpecHash
	st.Spec = obs.Spec
	st.Endpoint = obs.Endpoint.URL
	st.Changes = nestedChanges(obs.Changes)
	st.ProviderPlan = obs.Plan
	if !obs.Running {
		return st, obs.Endpoint
	}
	if obs.Endpoint.URL == "" {
		st.Error = "the provider reports the runtime running but gives no endpoint"
		return st, obs.Endpoint
	}
	actx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	apps, err := api.NewClient(obs.Endpoint.URL, obs.Endpoint.Token).ListApps(actx)
	if err != nil {
		if actx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within %s", o.timeout)
		}
		st.Error = fmt.Sprintf("runtime at %s is unreachable: %v", obs.Endpoint.URL, err)
		return st, obs.Endpoint
	}
	slices.SortFunc(apps, func(a, b api.App) int { return strings.Compare(a.Name, b.Name) })
	st.Reachable = true
	st.Apps = apps
	return st, obs.Endpoint
}

// nestedChanges turns a provider's own planned changes into the planner's terms.
func nestedChanges(cs []providers.ResourceChange) []plan.NestedChange {
	if len(cs) == 0 {
		return nil
	}
	out := make([]plan.NestedChange, len(cs))
	for i, c := range cs {
		out[i] = plan.NestedChange{
			Address: c.Address, Action: c.Action, Drift: c.Drift, Reason: c.Reason,
			Mode: c.Mode, Type: c.Type, Name: c.Name, ProviderName: c.ProviderName,
			Before: c.Before, After: c.After, AfterUnknown: c.AfterUnknown,
			BeforeSensitive: c.BeforeSensitive, AfterSensitive: c.AfterSensitive,
		}
		for _, d := range c.Diffs {
			out[i].Diffs = append(out[i].Diffs, plan.FieldDiff{
				Path: d.Path, Kind: plan.FieldDiffKind(d.Kind), Before: d.Before, After: d.After, Sensitive: d.Sensitive,
			})
		}
	}
	return out
}

func (o *observer) list(ctx context.Context, kind string) (owned []providers.Observed, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("list %s environments of fleet %q: provider panicked: %v", kind, o.cfg.Fleet, r)
		}
	}()
	p, err := o.provider(kind)
	if err != nil {
		return nil, fmt.Errorf("list %s environments of fleet %q: %w", kind, o.cfg.Fleet, err)
	}
	owned, err = p.List(ctx, o.cfg.Fleet)
	if err != nil {
		return nil, fmt.Errorf("list %s environments of fleet %q: %w", kind, o.cfg.Fleet, err)
	}
	return owned, nil
}

// recoverInto turns a provider's panic into the environment's error, so one faulty provider cannot take
// the whole observation down.
func recoverInto(st *plan.EnvironmentState) {
	if r := recover(); r != nil {
		st.Error = fmt.Sprintf("provider %q panicked: %v", st.Provider, r)
	}
}

// FingerprintKeys asks each runtime o reached for its fingerprints of the API keys apps declare (their
// values' spec.SecretHash, never the values) and records them in the environment's KeyFingerprints, so
// that the planner compares a declared key with an app's by the runtime's fingerprint and no plan holds
// a key's salted hash. A runtime is asked about the apps declared in it, observed in it, or that it may
// be placed in. A runtime that does not answer is recorded as unreachable: no key of its apps can be
// compared. A runtime that does not know the endpoint (404: an older binary) reports keys as their
// salted hashes; those are compared as they are, with a problem saying so. timeout bounds each runtime
// (zero means DefaultObserveTimeout).
func FingerprintKeys(ctx context.Context, o *Observation, apps []spec.App, timeout time.Duration) {
	if timeout <= 0 {
		timeout = DefaultObserveTimeout
	}
	type ask struct {
		env  string
		ep   providers.Endpoint
		keys map[string][]string
		fps  map[string]string
		err  error
	}
	var asks []*ask
	for _, name := range slices.Sorted(maps.Keys(o.Snapshot.Environments)) {
		st := o.Snapshot.Environments[name]
		ep, ok := o.Endpoints[name]
		if keys := keysToFingerprint(name, st, apps); st.Reachable && ok && len(keys) > 0 {
			asks = append(asks, &ask{env: name, ep: ep, keys: keys})
		}
	}
	var g errgroup.Group
	g.SetLimit(observeParallelism)
	for _, a := range asks {
		g.Go(func() error {
			a.fps, a.err = fingerprints(ctx, a.ep, a.keys, timeout)
			return nil
		})
	}
	_ = g.Wait()
	for _, a := range asks {
		st := o.Snapshot.Environments[a.env]
		if api.IsNotFound(a.err) {
			// A runtime older than the endpoint reports each key as its salted hash: compare by that.
			a.err, a.fps = nil, map[string]string{}
			for _, hs := range a.keys {
				for _, h := range hs {
					a.fps[h] = h
				}
			}
			o.Problems = append(o.Problems, fmt.Errorf("environment %s: its runtime at %s predates API-key fingerprints and reports keys as salted hashes, which plans then hold; restart it with this appfleet", a.env, a.ep.URL))
		}
		if a.err != nil {
			st.Reachable = false
			st.Error = fmt.Sprintf("runtime at %s could not fingerprint the declared API keys: %v", a.ep.URL, a.err)
		} else {
			st.KeyFingerprints = a.fps
		}
		o.Snapshot.Environments[a.env] = st
	}
}

// keysToFingerprint are, by app, the salted hashes of the declared keys that environment env's runtime
// (observed as st) is asked about.
func keysToFingerprint(env string, st plan.EnvironmentState, apps []spec.App) map[string][]string {
	out := map[string][]string{}
	for _, a := range apps {
		name := a.Metadata.Name
		inEnv := a.Spec.Environment == env || a.Spec.Environment == "" || slices.ContainsFunc(st.Apps, func(x api.App) bool { return x.Name == name })
		if !inEnv {
			continue
		}
		for _, k := range a.Spec.APIKeys {
			if k.Value.Value != "" {
				out[name] = append(out[name], spec.SecretHash(name, k.Value.Value))
			}
		}
	}
	return out
}

// fingerprints asks one runtime for the fingerprints of asks (salted hashes by app) and returns them by
// hash.
func fingerprints(ctx context.Context, ep providers.Endpoint, asks map[string][]string, timeout time.Duration) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := api.NewClient(ep.URL, ep.Token)
	out := map[string]string{}
	for _, app := range slices.Sorted(maps.Keys(asks)) {
		fps, err := c.Fingerprints(ctx, app, asks[app])
		if err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				err = fmt.Errorf("no answer within %s", timeout)
			}
			return nil, err
		}
		for i, h := range asks[app] {
			out[h] = fps[i]
		}
	}
	return out, nil
}
