package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// stepKind is what Apply does to an existing container.
type stepKind int

const (
	stepNone     stepKind = iota // it runs as declared
	stepStart                    // it is as declared but not running
	stepUpdate                   // its limits or restart policy change in place, without a restart
	stepRecreate                 // it is replaced by a new container on the same volume
)

// step is Apply's decision for one container, with the reason a plan shows.
type step struct {
	kind   stepKind
	reason string
}

func (s step) change(container string) providers.ResourceChange {
	action := "update"
	if s.kind == stepRecreate {
		action = "replace"
	}
	return providers.ResourceChange{Address: "container." + container, Action: action, Reason: s.reason}
}

// decide compares the container with the declared environment. wantImage is the id of the image the
// container must run, "" to look it up (Observe: the image is not built there; a missing default image
// means a new binary, which means a recreate).
func (p *Provider) decide(ctx context.Context, h *host, env spec.Environment, c *current, wantImage string) (step, error) {
	ref := dockerImage(env)
	if ref == "" {
		bi, err := p.binary()
		if err != nil {
			return step{}, err
		}
		ref = bi.defaultImage()
	}
	if wantImage == "" {
		id, err := imageID(ctx, h, ref)
		if err != nil {
			return step{}, err
		}
		wantImage = id
	}
	had := c.info.Config.Labels[labelImage]
	switch {
	case had != ref && strings.HasPrefix(had, imageRepo+":") && strings.HasPrefix(ref, imageRepo+":"):
		return step{stepRecreate, fmt.Sprintf("runtime upgrade: image %s -> %s, apps and data kept", had, ref)}, nil
	case had != ref:
		return step{stepRecreate, fmt.Sprintf("image %s -> %s, apps and data kept", had, ref)}, nil
	case wantImage != c.info.Image:
		return step{stepRecreate, fmt.Sprintf("image %s changed on the host (%s -> %s), apps and data kept", ref, shortID(c.info.Image), shortID(wantImage))}, nil
	}
	want := env.Spec.Redacted()
	got := c.observedSpec(&env)
	if got == nil {
		return step{stepRecreate, "the container records no spec, apps and data kept"}, nil
	}
	if specHash(*got) != specHash(want) {
		if fields, ok := inPlace(*got, want); ok {
			return step{stepUpdate, strings.Join(fields, " and ") + " changed in place, no restart"}, nil
		}
		return step{stepRecreate, "settings changed, apps and data kept"}, nil
	}
	if tok := env.Spec.Runtime.Token; tok != nil && tok.Value != "" {
		if have, err := p.tokens.read(ctx, h, c); err == nil && have != tok.Value {
			return step{stepRecreate, "runtime.token changed, apps and data kept"}, nil
		}
	}
	if rp := c.info.HostConfig; rp != nil && rp.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		return step{stepUpdate, fmt.Sprintf("restart policy %q -> %q in place", rp.RestartPolicy.Name, container.RestartPolicyUnlessStopped)}, nil
	}
	if !c.running() {
		return step{stepStart, "not running"}, nil
	}
	return step{}, nil
}

// inPlace reports whether got becomes want by changing only limits that Docker updates on a running
// container: memory and cpus, each set before and after (Docker cannot lift a limit in place).
func inPlace(got, want spec.EnvironmentSpec) ([]string, bool) {
	g, w := spec.DockerSpec{}, spec.DockerSpec{}
	if got.Docker != nil {
		g = *got.Docker
	}
	if want.Docker != nil {
		w = *want.Docker
	}
	var fields []string
	for _, f := range []struct {
		name string
		a, b *string
	}{{"memory", &g.Memory, &w.Memory}, {"cpus", &g.CPUs, &w.CPUs}} {
		if *f.a == *f.b {
			continue
		}
		if *f.a == "" || *f.b == "" {
			return nil, false
		}
		fields = append(fields, f.name)
		*f.a = *f.b
	}
	got.Docker, want.Docker = &g, &w
	if len(fields) == 0 || specHash(got) != specHash(want) {
		return nil, false
	}
	return fields, true
}

// Apply makes env's container run as declared, keeping its volume, in steps that are each safe to
// repeat (a run interrupted anywhere is finished by the next):
//
//  1. connect to the host; refuse a container or volume of the environment's name that is not this
//     fleet's (never adopted);
//  2. the image: the declared one must exist on the host; the one built from this binary is built when
//     the host lacks it;
//  3. the volume appfleet-<fleet>-<env>-data, created when absent (a container removed by hand comes
//     back on the volume it left, with its data);
//  4. the container, by decide: a new image, new settings or a new declared token replace it (stop it
//     gracefully, remove it, create a new one on the same volume); new limits or a drifted restart
//     policy update it in place; otherwise it is kept;
//  5. the token: the declared one, else the one in the volume, else a new one, written into the volume
//     while the container is not running, before it starts; so the token is never only on this machine;
//  6. start it when it is not running, and wait until its management API answers.
//
// A container that exists but is not running with the declared settings (a crash after step 4, a stop
// by hand) needs only steps 5 and 6. The old container is removed before the new one is created, so an
// interruption between them leaves only the volume, and the next run creates the container again.
func (p *Provider) Apply(ctx context.Context, env spec.Environment) (providers.Endpoint, error) {
	name := env.Metadata.Name
	fail := func(step string, err error) (providers.Endpoint, error) {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %s: %w", name, step, err)
	}
	h, err := p.hostFor(ctx, env)
	if err != nil {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %w", name, err)
	}
	cur, err := p.inspect(ctx, h, name)
	if err != nil {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %w", name, err)
	}
	limits, err := resources(env)
	if err != nil {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %w", name, err)
	}
	ref, imageID, err := p.ensureImage(ctx, h, dockerImage(env))
	if err != nil {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %w", name, err)
	}
	if err := p.ensureVolume(ctx, h, name); err != nil {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %w", name, err)
	}

	created := false
	if cur != nil {
		s, err := p.decide(ctx, h, env, cur, imageID)
		if err != nil {
			return fail("compare container "+cur.name, err)
		}
		switch s.kind {
		case stepRecreate:
			if err := stopContainer(ctx, h, cur.id); err != nil {
				return fail("stop container "+cur.name+" to replace it", err)
			}
			if _, err := h.cli.ContainerRemove(ctx, cur.id, client.ContainerRemoveOptions{}); err != nil {
				return fail("remove container "+cur.name+" to replace it (its volume stays)", err)
			}
			cur = nil
		case stepUpdate:
			rp := container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
			if _, err := h.cli.ContainerUpdate(ctx, cur.id, client.ContainerUpdateOptions{Resources: &limits, RestartPolicy: &rp}); err != nil {
				return fail("update container "+cur.name, err)
			}
		}
	}
	if cur == nil {
		if cur, err = p.create(ctx, h, env, ref, limits); err != nil {
			return fail("create container", err)
		}
		created = true
	}
	token, err := p.ensureToken(ctx, h, env, cur)
	if err != nil {
		return fail("write the runtime token into volume "+p.volumeName(name), err)
	}
	if !cur.running() {
		if _, err := h.cli.ContainerStart(ctx, cur.id, client.ContainerStartOptions{}); err != nil {
			err = startError(env, h, err)
			if created {
				// A container that never ran holds nothing: leave only the volume, as before.
				_, _ = h.cli.ContainerRemove(context.WithoutCancel(ctx), cur.id, client.ContainerRemoveOptions{Force: true})
			}
			return fail("start container "+cur.name, err)
		}
	}
	url, err := p.waitReady(ctx, h, cur, token, dockerEndpoint(env))
	if err != nil {
		return fail("runtime in container "+cur.name, err)
	}
	return providers.Endpoint{URL: url, Token: token}, nil
}

// startError names the declared publish address when the engine could not bind it.
func startError(env spec.Environment, h *host, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated") {
		addr := "the port"
		if env.Spec.Docker != nil && env.Spec.Docker.Publish != "" {
			addr = env.Spec.Docker.Publish + " (spec.docker.publish)"
		}
		return fmt.Errorf("publish address %s is in use on docker host %s: free it, or declare another spec.docker.publish: %w", addr, h.display(), err)
	}
	return err
}

// resources are the container's declared limits. Without swap: a limit means the runtime's memory.
func resources(env spec.Environment) (container.Resources, error) {
	var r container.Resources
	if env.Spec.Docker == nil {
		return r, nil
	}
	mem, err := env.Spec.Docker.MemoryBytes()
	if err != nil {
		return r, fmt.Errorf("spec.docker.memory: %w", err)
	}
	cpus, err := env.Spec.Docker.NanoCPUs()
	if err != nil {
		return r, fmt.Errorf("spec.docker.cpus: %w", err)
	}
	r.Memory, r.NanoCPUs = mem, cpus
	if mem > 0 {
		r.MemorySwap = mem
	}
	return r, nil
}

// create creates the environment's container, not started.
func (p *Provider) create(ctx context.Context, h *host, env spec.Environment, ref string, limits container.Resources) (*current, error) {
	name := env.Metadata.Name
	es := env.Spec.Redacted()
	specJSON, err := json.Marshal(es)
	if err != nil {
		return nil, err
	}
	labels := p.labels(name)
	labels[spec.LabelSpecHash] = env.SpecHash()
	labels[labelSpec] = string(specJSON)
	labels[labelImage] = ref

	bind := network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1")}
	if d := env.Spec.Docker; d != nil && d.Publish != "" {
		host, port, err := d.PublishAddr()
		if err != nil {
			return nil, fmt.Errorf("spec.docker.publish: %w", err)
		}
		bind.HostPort = strconv.Itoa(port)
		switch host {
		case "", "0.0.0.0":
			bind.HostIP = netip.IPv4Unspecified()
		case "localhost":
		default:
			if bind.HostIP, err = netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("spec.docker.publish: %w", err)
			}
		}
	}
	args := []string{"runtime", "serve",
		"--data-dir", dataDir,
		"--listen", "0.0.0.0:" + strconv.Itoa(runtimePort),
		"--token-file", dataDir + "/token",
		"--name", p.fleet + "-" + name,
	}
	if idle := env.Spec.Runtime.IdleTimeout.Duration; idle > 0 {
		args = append(args, "--idle-timeout", idle.String())
	}
	if n := env.Spec.Runtime.MaxApps; n > 0 {
		args = append(args, "--max-apps", strconv.Itoa(n))
	}
	stop := stopTimeoutSeconds
	probe := "http://127.0.0.1:" + strconv.Itoa(runtimePort)
	cfg := &container.Config{
		Image:        ref,
		Entrypoint:   []string{binaryPath},
		Cmd:          args,
		Labels:       labels,
		ExposedPorts: network.PortSet{runtimePortKey: {}},
		StopTimeout:  &stop,
		Healthcheck: &container.HealthConfig{
			Test:        []string{"CMD", binaryPath, "runtime", "probe", "--url", probe},
			Interval:    10 * time.Second,
			Timeout:     5 * time.Second,
			StartPeriod: 10 * time.Second,
			Retries:     3,
		},
	}
	hc := &container.HostConfig{
		Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: p.volumeName(name), Target: dataDir}},
		PortBindings:  network.PortMap{runtimePortKey: {bind}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Resources:     limits,
		CapDrop:       []string{"ALL"},
		SecurityOpt:   []string{"no-new-privileges"},
	}
	res, err := h.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: p.containerName(name), Config: cfg, HostConfig: hc})
	if err != nil {
		return nil, err
	}
	c, err := p.inspectRef(ctx, h, res.ID, p.fleet, name)
	if err == nil && c == nil {
		err = errors.New("the container vanished right after it was created")
	}
	return c, err
}

// ensureToken writes the declared token, or keeps the one in the volume, or generates one, and returns
// it. It writes only into a container that is not running: the runtime reads its token when it starts.
func (p *Provider) ensureToken(ctx context.Context, h *host, env spec.Environment, c *current) (string, error) {
	have, err := p.tokens.read(ctx, h, c)
	if err != nil {
		return "", err
	}
	want := have
	if tok := env.Spec.Runtime.Token; tok != nil && tok.Value != "" {
		want = tok.Value
	}
	if want == "" {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		want = hex.EncodeToString(raw)
	}
	if want == have {
		return have, nil
	}
	if c.running() {
		return "", errors.New("the runtime runs with another token; apply again to replace its container")
	}
	p.tokens.forget(c.id)
	return want, writeToken(ctx, h, c, want)
}

// waitReady waits until the container's management API answers /readyz and accepts the token, and
// returns its URL. A container that stops meanwhile fails at once, with the end of its log.
func (p *Provider) waitReady(ctx context.Context, h *host, c *current, token, endpoint string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.readyTimeout)
	defer cancel()
	var last error
	for i := 0; ; i++ {
		cur, err := p.inspectRef(ctx, h, c.id, c.fleet, c.env)
		switch {
		case err != nil:
			last = err
		case cur == nil:
			return "", errors.New("the container was removed while it started")
		case !cur.running() && !cur.info.State.Restarting && i > 0:
			msg := fmt.Sprintf("the container stopped (%s, exit code %d)", cur.info.State.Status, cur.info.State.ExitCode)
			if tail := logTail(context.WithoutCancel(ctx), h, c.id, 20); tail != "" {
				msg += "; last lines of its log:\n" + tail
			}
			return "", errors.New(msg)
		case cur.running():
			url, _, err := p.endpointOf(h, cur, endpoint)
			if err != nil {
				return "", err
			}
			probe, cancelProbe := context.WithTimeout(ctx, 2*time.Second)
			c := api.NewClient(url, token)
			last = c.Ready(probe)
			if last == nil {
				_, last = c.Runtime(probe)
			}
			cancelProbe()
			if last == nil {
				// The runtime answers with this token: the next read of it need not copy it out.
				p.tokens.remember(tokenKey(cur), token)
				return url, nil
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return "", fmt.Errorf("the management API did not answer within %s (last: %v)", p.readyTimeout, last)
			}
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func sortStrings(s []string) { slices.Sort(s) }

// specHash is spec.Environment.SpecHash of a bare spec.
func specHash(s spec.EnvironmentSpec) string { return spec.Environment{Spec: s}.SpecHash() }

func dockerEndpoint(env spec.Environment) string {
	if env.Spec.Docker == nil {
		return ""
	}
	return env.Spec.Docker.Endpoint
}
