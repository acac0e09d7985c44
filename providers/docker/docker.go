package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Labels of what the provider creates, beside spec.LabelFleet, LabelEnvironment and LabelSpecHash.
const (
	// labelSpec holds the environment's redacted spec, as JSON, the container was created with.
	labelSpec = "appfleet.dev/spec"
	// labelImage holds the image reference the container was created from (its id is in inspect).
	labelImage = "appfleet.dev/image"
	// labelBinary is the sha256 of the appfleet binary a built image holds.
	labelBinary = "appfleet.dev/binary-sha256"
	// labelArchived marks a volume that holds a destroyed environment's data; its value is when.
	labelArchived = "appfleet.dev/archived"
	// labelRole marks the short-lived container that copies data into an archive.
	labelRole = "appfleet.dev/role"
)

// Bounds of the provider's waits. The runtime shuts down within 10 s (its --shutdown-timeout) and then
// closes every app's database; the container's stop timeout is well above that.
const (
	defaultReadyTimeout = 60 * time.Second
	stopTimeoutSeconds  = 30
	pingTimeout         = 15 * time.Second
	observeTimeout      = 30 * time.Second
	runtimePort         = 7410
)

// Provider runs runtimes in containers on Docker hosts.
type Provider struct {
	fleet      string
	binaryPath string

	readyTimeout time.Duration

	mu    sync.Mutex
	hosts map[string]*host

	builds imageBuilds

	binOnce sync.Once
	bin     binaryInfo
	binErr  error

	tokens tokenCache
}

var _ providers.Provider = (*Provider)(nil)

// New returns the docker provider for cfg. cfg.Binary, when empty, is this process's own executable: the
// binary an image is built from when an environment declares none.
func New(cfg providers.Config) (providers.Provider, error) {
	return newProvider(cfg)
}

func newProvider(cfg providers.Config) (*Provider, error) {
	if cfg.Fleet == "" {
		return nil, errors.New("docker provider: no fleet name")
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("docker provider: find the appfleet executable: %w", err)
		}
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	p := &Provider{fleet: cfg.Fleet, binaryPath: bin, readyTimeout: defaultReadyTimeout, hosts: map[string]*host{}}
	if cfg.StateDir != "" {
		p.tokens.file = filepath.Join(cfg.StateDir, "docker", "tokens.json")
	}
	return p, nil
}

// binary hashes and inspects the appfleet binary once.
func (p *Provider) binary() (binaryInfo, error) {
	p.binOnce.Do(func() { p.bin, p.binErr = inspectBinary(p.binaryPath) })
	return p.bin, p.binErr
}

// Close ends every connection and tunnel the provider opened.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, h := range p.hosts {
		h.close()
		delete(p.hosts, k)
	}
	return nil
}

// hostFor returns the connected host of env, dialling and pinging it on first use. A host that does not
// answer is not kept, so that a later call tries again.
func (p *Provider) hostFor(ctx context.Context, env spec.Environment) (*host, error) {
	return p.hostOf(ctx, env.Spec.Docker, env.Source.Dir)
}

func (p *Provider) hostOf(ctx context.Context, d *spec.DockerSpec, dir string) (*host, error) {
	key := hostKey(d, dir)
	p.mu.Lock()
	h, ok := p.hosts[key]
	p.mu.Unlock()
	if ok {
		return h, nil
	}
	h, err := dial(d, dir)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := h.cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		h.close()
		if pctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s", pingTimeout)
		}
		return nil, fmt.Errorf("docker host %s does not answer: %w", h.display(), err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if existing, ok := p.hosts[key]; ok {
		h.close()
		return existing, nil
	}
	p.hosts[key] = h
	return h, nil
}

func (p *Provider) containerName(env string) string { return "appfleet-" + p.fleet + "-" + env }
func (p *Provider) volumeName(env string) string    { return p.containerName(env) + "-data" }

// Observe reports env's container as the host shows it: ErrNotFound when there is none. It also says,
// in Changes, what Apply would do to the container (update it in place or replace it), so that the plan
// can show it.
func (p *Provider) Observe(ctx context.Context, env spec.Environment) (providers.Observed, error) {
	name := env.Metadata.Name
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	h, err := p.hostFor(ctx, env)
	if err != nil {
		return providers.Observed{}, fmt.Errorf("environment %q: %w", name, err)
	}
	cur, err := p.inspect(ctx, h, name)
	if err != nil {
		return providers.Observed{}, fmt.Errorf("environment %q: %w", name, err)
	}
	if cur == nil {
		return providers.Observed{}, fmt.Errorf("environment %q: container %s on %s: %w", name, p.containerName(name), h.display(), providers.ErrNotFound)
	}
	obs := p.observed(ctx, h, cur, &env)
	if s, err := p.decide(ctx, h, env, cur, ""); err == nil && s.kind != stepNone && s.kind != stepStart {
		obs.Changes = []providers.ResourceChange{s.change(cur.name)}
	}
	return obs, nil
}

// List returns the environments fleet owns, sorted by name, on every Docker host this provider has
// reached (the hosts the manifests name, once observed) and on the default host (DOCKER_HOST, else the
// local engine, when it has one). An environment found through two hosts that reach one engine is
// reported through a host the manifests name. A host that the manifests no longer name is not searched.
func (p *Provider) List(ctx context.Context, fleet string) ([]providers.Observed, error) {
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	p.mu.Lock()
	keys := make([]string, 0, len(p.hosts))
	for k := range p.hosts {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	sort.Strings(keys)
	var hosts []*host
	for _, k := range keys {
		p.mu.Lock()
		h := p.hosts[k]
		p.mu.Unlock()
		if h != nil && k != hostKey(nil, "") {
			hosts = append(hosts, h)
		}
	}
	if _, err := os.Stat(defaultSocket); effectiveHost(nil) != "" || err == nil {
		h, err := p.hostOf(ctx, nil, "")
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	type found struct {
		h   *host
		id  string
		env string
	}
	var todo []found
	seen := map[string]bool{}
	for _, h := range hosts {
		res, err := h.cli.ContainerList(ctx, client.ContainerListOptions{
			All:     true,
			Filters: client.Filters{}.Add("label", spec.LabelFleet+"="+fleet),
		})
		if err != nil {
			return nil, fmt.Errorf("list containers on %s: %w", h.display(), err)
		}
		for _, c := range res.Items {
			env := c.Labels[spec.LabelEnvironment]
			if env == "" || c.Labels[labelRole] != "" || seen[env] {
				continue
			}
			seen[env] = true
			todo = append(todo, found{h, c.ID, env})
		}
	}
	// Each container is inspected and its token read, in parallel: a fleet of many environments is
	// listed in about the time of one.
	results := make([]*providers.Observed, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, f := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cur, err := p.inspectRef(ctx, f.h, f.id, fleet, f.env)
			if err != nil || cur == nil {
				return // gone meanwhile, or not this provider's
			}
			obs := p.observed(ctx, f.h, cur, nil)
			results[i] = &obs
		})
	}
	wg.Wait()
	var out []providers.Observed
	for _, r := range results {
		if r != nil {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Environment < out[j].Environment })
	return out, nil
}

// Destroy stops and removes env's container and archives its volume: the data is copied into a new
// volume labelled appfleet.dev/archived, and the environment's own volume is removed, so that a later
// environment of the same name starts empty. An environment that does not exist is already destroyed.
//
// Each step is safe to repeat, and a run that was interrupted is finished by the next one:
//
//	container  volume   then
//	present    present  stop the container, archive the volume, remove the container, remove the volume
//	absent     present  archive the volume (read through a helper container), remove the volume
//	present    absent   remove the container (its data was archived already)
//	absent     absent   nothing
//
// The archive of a volume is named after the volume's creation time, so a repeated run copies into the
// same archive again instead of making a second one; the volume is removed only after the copy succeeded.
func (p *Provider) Destroy(ctx context.Context, env spec.Environment) error {
	name := env.Metadata.Name
	fail := func(step string, err error) error { return fmt.Errorf("environment %q: %s: %w", name, step, err) }
	h, err := p.hostFor(ctx, env)
	if err != nil {
		return fmt.Errorf("environment %q: %w", name, err)
	}
	cur, err := p.inspect(ctx, h, name)
	if err != nil {
		return fmt.Errorf("environment %q: %w", name, err)
	}
	vol, err := p.volume(ctx, h, name)
	if err != nil {
		return fmt.Errorf("environment %q: %w", name, err)
	}
	if cur != nil {
		if err := stopContainer(ctx, h, cur.id); err != nil {
			return fail("stop container "+cur.name, err)
		}
	}
	if vol != nil {
		if err := p.archive(ctx, h, env, cur, vol); err != nil {
			return fail("archive volume "+vol.Name, err)
		}
	}
	if cur != nil {
		if _, err := h.cli.ContainerRemove(ctx, cur.id, client.ContainerRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fail("remove container "+cur.name, err)
		}
	}
	if vol != nil {
		if _, err := h.cli.VolumeRemove(ctx, vol.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fail("remove volume "+vol.Name+" (its data is archived)", err)
		}
	}
	return nil
}

// Purge removes the archived volumes of env: the data of its destroyed lives. It never touches the live
// volume of an environment that exists.
func (p *Provider) Purge(ctx context.Context, env spec.Environment) ([]string, error) {
	name := env.Metadata.Name
	h, err := p.hostFor(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("environment %q: %w", name, err)
	}
	archived, err := p.archives(ctx, h, name)
	if err != nil {
		return nil, fmt.Errorf("environment %q: %w", name, err)
	}
	var removed []string
	for _, v := range archived {
		if _, err := h.cli.VolumeRemove(ctx, v, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return removed, fmt.Errorf("environment %q: remove archived volume %s: %w", name, v, err)
		}
		removed = append(removed, v)
	}
	return removed, nil
}
