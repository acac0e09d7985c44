package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// current is an environment's container as inspect shows it.
type current struct {
	id, name string
	env      string
	fleet    string
	info     container.InspectResponse
	// spec is the spec the container was created with (its label), nil when unreadable.
	spec *spec.EnvironmentSpec
}

func (c *current) running() bool {
	s := c.info.State
	return s != nil && s.Running && !s.Restarting && !s.Paused
}

var runtimePortKey = network.MustParsePort(strconv.Itoa(runtimePort) + "/tcp")

// inspect returns the environment's container, nil when there is none, and an error when a container of
// that name exists but is not this fleet's environment: it is never adopted.
func (p *Provider) inspect(ctx context.Context, h *host, env string) (*current, error) {
	return p.inspectRef(ctx, h, p.containerName(env), p.fleet, env)
}

func (p *Provider) inspectRef(ctx context.Context, h *host, ref, fleet, env string) (*current, error) {
	res, err := h.cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %s on %s: %w", ref, h.display(), err)
	}
	info := res.Container
	name := strings.TrimPrefix(info.Name, "/")
	var labels map[string]string
	if info.Config != nil {
		labels = info.Config.Labels
	}
	if labels[spec.LabelFleet] != fleet || labels[spec.LabelEnvironment] != env || labels[labelRole] != "" {
		return nil, fmt.Errorf("a container named %s exists on %s and is not environment %q of fleet %q (its labels %s=%q, %s=%q); "+
			"appfleet never adopts or removes what it did not create: rename or remove that container, or rename the environment",
			name, h.display(), env, fleet, spec.LabelFleet, labels[spec.LabelFleet], spec.LabelEnvironment, labels[spec.LabelEnvironment])
	}
	c := &current{id: info.ID, name: name, env: env, fleet: fleet, info: info}
	if raw := labels[labelSpec]; raw != "" {
		var s spec.EnvironmentSpec
		if json.Unmarshal([]byte(raw), &s) == nil {
			c.spec = &s
		}
	}
	return c, nil
}

// observed is what Observe and List report of a container. declared, when given, is the environment as
// the manifests declare it now: limits the container has that equal the declared ones are reported in
// the declared spelling ("1024Mi" for "1Gi"), so that only a real difference shows as a change.
func (p *Provider) observed(ctx context.Context, h *host, c *current, declared *spec.Environment) providers.Observed {
	labels := c.info.Config.Labels
	obs := providers.Observed{
		Environment: c.env,
		Fleet:       c.fleet,
		Provider:    spec.ProviderDocker,
		Running:     c.running(),
		SpecHash:    labels[spec.LabelSpecHash],
		Detail: map[string]string{
			"host":      h.display(),
			"container": c.name,
			"id":        shortID(c.id),
			"image":     labels[labelImage],
			"imageID":   shortID(c.info.Image),
			"volume":    "appfleet-" + c.fleet + "-" + c.env + "-data",
		},
	}
	if s := c.observedSpec(declared); s != nil {
		obs.Spec = s
		obs.SpecHash = specHash(*s)
	}
	if c.running() {
		endpoint := ""
		if obs.Spec != nil && obs.Spec.Docker != nil {
			endpoint = obs.Spec.Docker.Endpoint
		}
		if url, addr, err := p.endpointOf(h, c, endpoint); err == nil {
			obs.Endpoint.URL = url
			obs.Detail["published"] = addr
		} else {
			obs.Detail["endpointError"] = err.Error()
		}
	}
	obs.Endpoint.Token, _ = p.tokens.read(ctx, h, c)
	return obs
}

// observedSpec is the container's spec label with the limits it really has: a limit changed in place
// since it was created, by appfleet or by hand, shows as what it is now.
func (c *current) observedSpec(declared *spec.Environment) *spec.EnvironmentSpec {
	if c.spec == nil {
		return nil
	}
	s := *c.spec
	d := spec.DockerSpec{}
	if s.Docker != nil {
		d = *s.Docker
	}
	hc := c.info.HostConfig
	if hc == nil {
		return &s
	}
	var want spec.DockerSpec
	if declared != nil && declared.Spec.Docker != nil {
		want = *declared.Spec.Docker
	}
	memory := func(s string) (int64, error) { return spec.DockerSpec{Memory: s}.MemoryBytes() }
	cpus := func(s string) (int64, error) { return spec.DockerSpec{CPUs: s}.NanoCPUs() }
	// The endpoint is how this machine reaches the container, nothing the container has: the declared one.
	if declared != nil {
		d.Endpoint = want.Endpoint
	}
	d.Memory = limitText(hc.Memory, d.Memory, want.Memory, memory, func(n int64) string { return strconv.FormatInt(n, 10) + "b" })
	d.CPUs = limitText(hc.NanoCPUs, d.CPUs, want.CPUs, cpus, func(n int64) string {
		return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
	})
	if d != (spec.DockerSpec{}) || s.Docker != nil {
		s.Docker = &d
	}
	return &s
}

// limitText spells a live limit: as recorded, else as declared, when either means the same value;
// otherwise as the number it is. 0 means no limit.
func limitText(live int64, recorded, declared string, parse func(string) (int64, error), format func(int64) string) string {
	same := func(text string) bool {
		if text == "" {
			return live == 0
		}
		n, err := parse(text)
		return err == nil && n == live
	}
	switch {
	case same(recorded):
		return recorded
	case same(declared):
		return declared
	case live == 0:
		return ""
	default:
		return format(live)
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// endpointOf returns the base URL this machine reaches the container's management API at, and the
// address it is published on, as the host sees it.
//
// endpoint, when not empty, is the declared spec.docker.endpoint, which replaces the derived URL.
func (p *Provider) endpointOf(h *host, c *current, endpoint string) (url, published string, err error) {
	var bindings []network.PortBinding
	if c.info.NetworkSettings != nil {
		bindings = c.info.NetworkSettings.Ports[runtimePortKey]
	}
	var b *network.PortBinding
	for i := range bindings {
		if bindings[i].HostPort == "" {
			continue
		}
		if b == nil || (bindings[i].HostIP.Is4() && !b.HostIP.Is4()) {
			b = &bindings[i]
		}
	}
	if b == nil {
		return "", "", fmt.Errorf("container %s publishes no port for the management API", c.name)
	}
	ip := b.HostIP
	published = net.JoinHostPort(ipText(ip), b.HostPort)
	if endpoint != "" {
		return strings.TrimRight(endpoint, "/"), published, nil
	}
	switch h.scheme {
	case "ssh":
		target := "127.0.0.1"
		if ip.IsValid() && !ip.IsUnspecified() {
			target = ip.String()
		}
		url, err := h.tunnelTo(net.JoinHostPort(target, b.HostPort))
		return url, published, err
	case "tcp":
		if ip.IsValid() && ip.IsLoopback() {
			return "", published, fmt.Errorf("the management API is published on %s, the loopback of docker host %s, which this machine cannot reach: "+
				"set spec.docker.publish to an address of that host this machine reaches (for example 10.0.0.5:7410), or use an ssh:// host", published, h.display())
		}
		target := ipText(ip)
		if !ip.IsValid() || ip.IsUnspecified() {
			target = hostOfURL(h.url)
		}
		return "http://" + net.JoinHostPort(target, b.HostPort), published, nil
	default:
		target := "127.0.0.1"
		if ip.IsValid() && !ip.IsUnspecified() {
			target = ip.String()
		}
		return "http://" + net.JoinHostPort(target, b.HostPort), published, nil
	}
}

func ipText(ip netip.Addr) string {
	if !ip.IsValid() {
		return "0.0.0.0"
	}
	return ip.String()
}

func hostOfURL(raw string) string {
	rest := raw
	if _, after, ok := strings.Cut(raw, "://"); ok {
		rest = after
	}
	rest, _, _ = strings.Cut(rest, "/")
	if h, _, err := net.SplitHostPort(rest); err == nil {
		return h
	}
	return rest
}

// tokenCache keeps each container's token, because reading it back from the volume copies a file out of
// the container, which costs the engine (a mount of the container's file system) far more than an
// inspect, and a plan needs it for every environment, in Observe and in List. The token only changes
// when the provider writes it, before a start, so an entry is keyed by the container's id and start time,
// and a write forgets the container's entries.
//
// Entries live in memory and, when the provider has a state dir, in <state-dir>/docker/tokens.json
// (0600), so that the next command on this machine need not read them back either. That file is only a
// memo of what the host holds: without it (a fresh checkout, another machine) every token is read back
// from its volume, and the plan is the same.
type tokenCache struct {
	mu   sync.Mutex
	m    map[string]*tokenEntry
	file string // "" without a state dir
	disk map[string]string
	load sync.Once
}

type tokenEntry struct {
	once sync.Once
	tok  string
	err  error
}

func tokenKey(c *current) string {
	key := c.id + "|"
	if c.info.State != nil {
		key += c.info.State.StartedAt
	}
	return key
}

func (tc *tokenCache) read(ctx context.Context, h *host, c *current) (string, error) {
	key := tokenKey(c)
	tc.load.Do(tc.loadFile)
	tc.mu.Lock()
	if tc.m == nil {
		tc.m = map[string]*tokenEntry{}
	}
	e, ok := tc.m[key]
	if !ok {
		e = &tokenEntry{}
		if tok, ok := tc.disk[key]; ok && c.running() {
			e.once.Do(func() { e.tok = tok })
		}
		tc.m[key] = e
	}
	tc.mu.Unlock()
	e.once.Do(func() {
		e.tok, e.err = readToken(ctx, h, c.id)
		if e.err == nil && e.tok != "" && c.running() {
			tc.remember(key, e.tok)
		}
	})
	if e.err != nil {
		tc.forget(c.id) // try again next time
	}
	return e.tok, e.err
}

func (tc *tokenCache) loadFile() {
	tc.disk = map[string]string{}
	if tc.file == "" {
		return
	}
	if b, err := os.ReadFile(tc.file); err == nil {
		_ = json.Unmarshal(b, &tc.disk)
	}
}

// remember records a running container's token on disk; failing to is no error, only slower next time.
func (tc *tokenCache) remember(key, tok string) {
	if tc.file == "" {
		return
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.disk[key] == tok {
		return
	}
	tc.disk[key] = tok
	tc.saveLocked()
}

func (tc *tokenCache) saveLocked() {
	b, err := json.Marshal(tc.disk)
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(tc.file), 0o700) == nil {
		_ = providers.WriteFileAtomic(tc.file, b, 0o600)
	}
}

func (tc *tokenCache) forget(id string) {
	tc.load.Do(tc.loadFile)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	changed := false
	for k := range tc.m {
		if strings.HasPrefix(k, id+"|") {
			delete(tc.m, k)
		}
	}
	for k := range tc.disk {
		if strings.HasPrefix(k, id+"|") {
			delete(tc.disk, k)
			changed = true
		}
	}
	if changed {
		tc.saveLocked()
	}
}

// readToken reads the management token from the container's volume, "" when there is none yet.
func readToken(ctx context.Context, h *host, id string) (string, error) {
	res, err := h.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: dataDir + "/token"})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		hd, err := tr.Next()
		if err != nil {
			return "", nil
		}
		if hd.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(io.LimitReader(tr, 64<<10))
			if err != nil {
				return "", err
			}
			return strings.TrimSpace(string(b)), nil
		}
	}
}

// writeToken writes the token into the container's volume, private to the runtime's user.
func writeToken(ctx context.Context, h *host, c *current, token string) error {
	uid, gid := containerUser(c.info.Config)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(token + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "token", Mode: 0o600, Size: int64(len(body)), Uid: uid, Gid: gid,
		ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := h.cli.CopyToContainer(ctx, c.id, client.CopyToContainerOptions{DestinationPath: dataDir, Content: &buf})
	return err
}

// containerUser is the numeric user the container runs as: its configured "uid[:gid]", else the built
// image's; a named user (which a scratch image cannot resolve anyway) counts as the built image's too.
func containerUser(cfg *container.Config) (uid, gid int) {
	uid, gid = runtimeUID, runtimeUID
	if cfg == nil || cfg.User == "" {
		return uid, gid
	}
	u, g, hasGroup := strings.Cut(cfg.User, ":")
	n, err := strconv.Atoi(u)
	if err != nil {
		return uid, gid
	}
	uid, gid = n, n
	if hasGroup {
		if m, err := strconv.Atoi(g); err == nil {
			gid = m
		}
	}
	return uid, gid
}

// volume returns the environment's live volume, nil when there is none; one of that name that is not
// this fleet's environment's is refused.
func (p *Provider) volume(ctx context.Context, h *host, env string) (*volume.Volume, error) {
	name := p.volumeName(env)
	res, err := h.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect volume %s on %s: %w", name, h.display(), err)
	}
	v := res.Volume
	if v.Labels[spec.LabelFleet] != p.fleet || v.Labels[spec.LabelEnvironment] != env || v.Labels[labelArchived] != "" {
		return nil, fmt.Errorf("a volume named %s exists on %s and is not the data of environment %q of fleet %q; "+
			"appfleet never adopts or removes what it did not create: rename or remove that volume, or rename the environment", name, h.display(), env, p.fleet)
	}
	return &v, nil
}

func (p *Provider) labels(env string) map[string]string {
	return map[string]string{spec.LabelFleet: p.fleet, spec.LabelEnvironment: env}
}

// ensureVolume returns the environment's volume, creating it labelled when absent.
func (p *Provider) ensureVolume(ctx context.Context, h *host, env string) error {
	v, err := p.volume(ctx, h, env)
	if err != nil || v != nil {
		return err
	}
	_, err = h.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: p.volumeName(env), Labels: p.labels(env)})
	if err != nil {
		return fmt.Errorf("create volume %s on %s: %w", p.volumeName(env), h.display(), err)
	}
	return nil
}

// stopContainer stops a container gracefully: the runtime closes its databases on SIGTERM.
func stopContainer(ctx context.Context, h *host, id string) error {
	t := stopTimeoutSeconds
	_, err := h.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &t})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// logTail returns the last lines the container wrote, for an error message.
func logTail(ctx context.Context, h *host, id string, lines int) string {
	rc, err := h.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10)); err != nil && out.Len() == 0 {
		return ""
	}
	return strings.TrimRight(out.String(), "\n")
}

// archives returns the names of env's archived volumes, oldest first.
func (p *Provider) archives(ctx context.Context, h *host, env string) ([]string, error) {
	res, err := h.cli.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.
		Add("label", spec.LabelFleet+"="+p.fleet, spec.LabelEnvironment+"="+env, labelArchived)})
	if err != nil {
		return nil, fmt.Errorf("list volumes on %s: %w", h.display(), err)
	}
	var names []string
	for _, v := range res.Items {
		names = append(names, v.Name)
	}
	sortStrings(names)
	return names, nil
}

// archive copies the live volume's content into an archive volume named after the live volume's
// creation time, through a short-lived helper container that mounts the archive. The source is read
// from the environment's stopped container or, when it is gone, from a second helper that mounts it.
func (p *Provider) archive(ctx context.Context, h *host, env spec.Environment, cur *current, vol *volume.Volume) error {
	name := env.Metadata.Name
	stamp := time.Now().UTC()
	if t, err := time.Parse(time.RFC3339, vol.CreatedAt); err == nil {
		stamp = t.UTC()
	}
	archiveName := p.volumeName(name) + "-archived-" + stamp.Format("20060102T150405Z")
	labels := p.labels(name)
	labels[labelArchived] = time.Now().UTC().Format(time.RFC3339)
	if _, err := h.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: archiveName, Labels: labels}); err != nil {
		return fmt.Errorf("create archive volume %s: %w", archiveName, err)
	}
	image := ""
	if cur != nil {
		image = cur.info.Image
	} else {
		var err error
		if _, image, err = p.ensureImage(ctx, h, dockerImage(env)); err != nil {
			return err
		}
	}
	src := ""
	if cur != nil {
		src = cur.id
	} else {
		id, cleanup, err := p.helper(ctx, h, name, "reader", image, vol.Name)
		if err != nil {
			return err
		}
		defer cleanup()
		src = id
	}
	dst, cleanup, err := p.helper(ctx, h, name, "archiver", image, archiveName)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := h.cli.CopyFromContainer(ctx, src, client.CopyFromContainerOptions{SourcePath: dataDir})
	if err != nil {
		return fmt.Errorf("read %s: %w", vol.Name, err)
	}
	defer res.Content.Close()
	if _, err := h.cli.CopyToContainer(ctx, dst, client.CopyToContainerOptions{DestinationPath: "/", Content: res.Content}); err != nil {
		return fmt.Errorf("write %s: %w", archiveName, err)
	}
	return nil
}

// helper creates a container that is never started, only there to mount volume at /data for a copy.
// Leftovers of an interrupted run (same name, same labels) are replaced.
func (p *Provider) helper(ctx context.Context, h *host, env, role, image, vol string) (string, func(), error) {
	cname := p.containerName(env) + "-" + role
	labels := p.labels(env)
	labels[labelRole] = role
	if old, err := h.cli.ContainerInspect(ctx, cname, client.ContainerInspectOptions{}); err == nil {
		if old.Container.Config == nil || old.Container.Config.Labels[labelRole] != role || old.Container.Config.Labels[spec.LabelFleet] != p.fleet {
			return "", nil, fmt.Errorf("a container named %s exists and is not appfleet's; rename or remove it", cname)
		}
		_, _ = h.cli.ContainerRemove(ctx, old.Container.ID, client.ContainerRemoveOptions{Force: true})
	}
	res, err := h.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       cname,
		Config:     &container.Config{Image: image, Labels: labels, Entrypoint: []string{binaryPath}, Cmd: []string{"version"}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: dataDir}}},
	})
	if err != nil {
		return "", nil, fmt.Errorf("create helper container %s: %w", cname, err)
	}
	cleanup := func() {
		_, _ = h.cli.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	}
	return res.ID, cleanup, nil
}

func dockerImage(env spec.Environment) string {
	if env.Spec.Docker == nil {
		return ""
	}
	return env.Spec.Docker.Image
}
