//go:build unix

package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Bounds of the runtime's lifecycle. A runtime answers /readyz as soon as it listens, so 15 s is ample;
// on SIGTERM it gives requests in flight up to 10 s (its --shutdown-timeout) and then closes every app's
// database, so the grace before SIGKILL is longer than that.
const (
	defaultReadyTimeout = 15 * time.Second
	defaultStopGrace    = 15 * time.Second
	logTailLines        = 20
	// addrWait is how long an address in use may take to be released by a runtime that is exiting.
	addrWait = 2 * time.Second
)

// Provider runs runtimes as detached processes on this machine.
type Provider struct {
	fleet    string
	stateDir string // absolute: the runtime runs in another directory and pid checks compare paths
	binary   string

	readyTimeout time.Duration
	stopGrace    time.Duration
}

var _ providers.Provider = (*Provider)(nil)

// New returns the local provider for cfg. cfg.Binary, when empty, is this process's own executable.
func New(cfg providers.Config) (providers.Provider, error) {
	if cfg.Fleet == "" {
		return nil, errors.New("local provider: no fleet name")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("local provider: no state dir")
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local provider: state dir: %w", err)
	}
	bin := cfg.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("local provider: find the appfleet executable: %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("local provider: binary: %w", err)
	}
	return &Provider{
		fleet:        cfg.Fleet,
		stateDir:     stateDir,
		binary:       bin,
		readyTimeout: defaultReadyTimeout,
		stopGrace:    defaultStopGrace,
	}, nil
}

// dirs returns the environment's paths, refusing a name that would escape the state dir (the manifest
// validator already requires DNS labels; this guards callers that skip it).
func (p *Provider) dirs(name string) (envDirs, error) {
	if _, err := providers.EnvDir(p.stateDir, name); err != nil {
		return envDirs{}, err
	}
	return newEnvDirs(p.stateDir, name), nil
}

// Observe reports the runtime of env as its state file, the data dir's lock and the process table show
// it. A runtime that runs is found through its lock even when runtime.json is lost or damaged.
func (p *Provider) Observe(_ context.Context, env spec.Environment) (providers.Observed, error) {
	d, err := p.dirs(env.Metadata.Name)
	if err != nil {
		return providers.Observed{}, err
	}
	st, running, ok, problem := current(p.fleet, env.Metadata.Name, d)
	if !ok {
		if problem != "" {
			return providers.Observed{}, fmt.Errorf("environment %q: %s", env.Metadata.Name, problem)
		}
		return providers.Observed{}, fmt.Errorf("environment %q: %w", env.Metadata.Name, providers.ErrNotFound)
	}
	obs := p.observed(env.Metadata.Name, d, st, running)
	if problem != "" {
		obs.Detail["stateProblem"] = problem
	}
	return obs, nil
}

func (p *Provider) observed(name string, d envDirs, st runtimeState, running bool) providers.Observed {
	detail := map[string]string{
		"dataDir": d.data,
		"log":     d.log,
		"listen":  st.Listen,
		"binary":  st.Binary,
	}
	if running {
		detail["pid"] = strconv.Itoa(st.PID)
		detail["startedAt"] = st.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	return providers.Observed{
		Environment: name,
		Fleet:       st.Fleet,
		Provider:    spec.ProviderLocal,
		Running:     running,
		Endpoint:    providers.Endpoint{URL: endpointURL(st.Listen), Token: readToken(d.token)},
		SpecHash:    st.SpecHash,
		Spec:        st.Spec,
		Detail:      detail,
	}
}

// Apply makes the runtime of env run with env's settings: it starts it when absent or dead, restarts it
// when the spec hash or its token changed or when it does not answer (hung), and does nothing when it
// already runs as declared and answers as this environment's runtime. Data is always kept. A first
// creation that fails leaves nothing behind in the state dir.
func (p *Provider) Apply(ctx context.Context, env spec.Environment) (ep providers.Endpoint, err error) {
	name := env.Metadata.Name
	d, err := p.dirs(name)
	if err != nil {
		return providers.Endpoint{}, err
	}
	fail := func(step string, err error) (providers.Endpoint, error) {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %s: %w", name, step, err)
	}
	if _, err := os.Stat(d.root); errors.Is(err, fs.ErrNotExist) {
		// Nothing of this environment exists yet: if creating it fails, take away what was made, so
		// that no directory is left that destroy would not see.
		defer func() {
			if err != nil {
				if _, running, _, _ := current(p.fleet, name, d); !running {
					_ = os.RemoveAll(d.root)
					_ = os.Remove(filepath.Dir(d.root)) // environments/, when it holds no other
				}
			}
		}()
	}
	if err := os.MkdirAll(d.data, 0o700); err != nil {
		return fail("create data dir", err)
	}
	token, tokenChanged, err := ensureToken(d.token, env.Spec.Runtime.Token)
	if err != nil {
		return fail("create token", err)
	}
	prev, running, _, _ := current(p.fleet, name, d)
	if running {
		if prev.SpecHash == env.SpecHash() && !tokenChanged {
			ep, kept, err := p.keep(ctx, prev, d, token)
			if err != nil {
				return fail("runtime (pid "+strconv.Itoa(prev.PID)+")", err)
			}
			if kept {
				return ep, nil
			}
			// It died, hangs or does not take the token: start it again, below.
		}
		if err := p.stopForChange(env, prev, d); err != nil {
			return fail("restart runtime", err)
		}
	}
	st, err := p.start(ctx, env, d, prev, token)
	if err != nil {
		return fail("start runtime", err)
	}
	return providers.Endpoint{URL: endpointURL(st.Listen), Token: token}, nil
}

// keep waits until the runtime that already runs with the declared settings answers as this
// environment's runtime: it may still be starting (another apply just launched it). kept is false, with
// no error, when it must start again: it died meanwhile, it does not answer (hung, or stopped with
// SIGSTOP), or it does not take the environment's token. It is an error when something else answers
// on its address.
func (p *Provider) keep(ctx context.Context, prev runtimeState, d envDirs, token string) (ep providers.Endpoint, kept bool, err error) {
	url := endpointURL(prev.Listen)
	gone := func() error {
		if !alive(prev.PID, d.data) {
			return providers.ErrExited
		}
		return nil
	}
	err = providers.WaitReady(ctx, url, token, gone, p.readyTimeout)
	switch {
	case errors.Is(err, providers.ErrExited):
		return providers.Endpoint{}, false, nil
	case ctx.Err() != nil:
		return providers.Endpoint{}, false, ctx.Err()
	case err != nil:
		// Alive but silent past the bound: hung. The plan said it restarts.
		return providers.Endpoint{}, false, nil
	}
	err = identify(ctx, url, token, d.data)
	var apiErr *api.Error
	switch {
	case err == nil:
		return providers.Endpoint{URL: url, Token: token}, true, nil
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		// It runs with a token the environment no longer has (the token file was lost): restart it.
		return providers.Endpoint{}, false, nil
	default:
		return providers.Endpoint{}, false, fmt.Errorf("%w; see %s", err, d.log)
	}
}

// stopForChange stops the runtime so that it can start with new settings, but first refuses when the
// address it would move to is taken: a working runtime is not stopped for a start bound to fail.
func (p *Provider) stopForChange(env spec.Environment, prev runtimeState, d envDirs) error {
	if env.Spec.Local != nil && env.Spec.Local.Listen != "" && env.Spec.Local.Listen != prev.Listen {
		if err := addrFree(env.Spec.Local.Listen); err != nil {
			return listenUnavailable(env.Spec.Local.Listen, err)
		}
	}
	return stopProcess(prev.PID, d.data, p.stopGrace)
}

func listenUnavailable(addr string, err error) error {
	return fmt.Errorf("listen address %s (spec.local.listen) is not available: %w; stop what uses it or declare another address", addr, err)
}

// listenAddr picks the address to start on: the declared one, else the one kept from an earlier start,
// else a free loopback port. A declared address in use is an error naming it; a kept one that something
// else took meanwhile is silently replaced, since nobody asked for it.
func (p *Provider) listenAddr(env spec.Environment, prev runtimeState) (string, error) {
	if env.Spec.Local != nil && env.Spec.Local.Listen != "" {
		addr := env.Spec.Local.Listen
		// Patience only for our own runtime's old address: it may still be exiting.
		wait := time.Duration(0)
		if addr == prev.Listen {
			wait = addrWait
		}
		if err := waitAddrFree(addr, wait); err != nil {
			return "", listenUnavailable(addr, err)
		}
		return addr, nil
	}
	if prev.Listen != "" && waitAddrFree(prev.Listen, addrWait) == nil {
		return prev.Listen, nil
	}
	return freeLoopbackAddr()
}

// start launches the runtime detached and waits until it is ready. On failure it leaves no process behind
// and the error carries the end of the runtime's log.
func (p *Provider) start(ctx context.Context, env spec.Environment, d envDirs, prev runtimeState, token string) (runtimeState, error) {
	addr, err := p.listenAddr(env, prev)
	if err != nil {
		return runtimeState{}, err
	}
	args := []string{"runtime", "serve",
		"--data-dir", d.data,
		"--listen", addr,
		"--token-file", d.token,
		"--name", p.fleet + "-" + env.Metadata.Name,
	}
	if idle := env.Spec.Runtime.IdleTimeout.Duration; idle > 0 {
		args = append(args, "--idle-timeout", idle.String())
	}
	if n := env.Spec.Runtime.MaxApps; n > 0 {
		args = append(args, "--max-apps", strconv.Itoa(n))
	}

	logf, err := os.OpenFile(d.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return runtimeState{}, err
	}
	defer logf.Close() // the runtime has its own descriptor once started
	offset, _ := logf.Seek(0, 2)
	fmt.Fprintf(logf, "--- %s appfleet starts: %s %s\n", time.Now().UTC().Format(time.RFC3339), p.binary, strings.Join(args, " "))

	// Not exec.CommandContext: the runtime must outlive this process and its context.
	cmd := exec.Command(p.binary, args...)
	cmd.Dir = d.root
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own session: no controlling terminal, so Ctrl-C on an apply and the end of the shell that ran it
	// never reach the runtime.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return runtimeState{}, fmt.Errorf("run %s: %w", p.binary, err)
	}
	// Reap the process if it ever exits while this process lives (a long-running watch daemon, tests), so
	// it does not linger as a zombie; and learn at once when it dies during start. Nothing ever blocks on
	// it: when this process exits first, init adopts the runtime.
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	exited := func() error {
		select {
		case err := <-waited:
			if err == nil {
				return providers.ErrExited
			}
			return fmt.Errorf("%w: %w", providers.ErrExited, err)
		default:
			return nil
		}
	}

	es := env.Spec.Redacted()
	st := runtimeState{
		Fleet:       p.fleet,
		Environment: env.Metadata.Name,
		PID:         cmd.Process.Pid,
		Listen:      addr,
		SpecHash:    env.SpecHash(),
		Spec:        &es,
		StartedAt:   time.Now().UTC(),
		Binary:      p.binary,
		DataDir:     d.data,
	}
	// Record the pid before waiting, so that a later apply finds this process even if this one is killed.
	if err := writeState(d.state, st); err != nil {
		_ = stopProcess(st.PID, d.data, p.stopGrace)
		return runtimeState{}, fmt.Errorf("write %s: %w", d.state, err)
	}
	err = providers.WaitReady(ctx, endpointURL(addr), token, exited, p.readyTimeout)
	if err == nil {
		// Something answered; make sure it is the process just started and not another program, or
		// another runtime, that holds the address.
		if err = identify(ctx, endpointURL(addr), token, d.data); err != nil {
			if e := exited(); e != nil {
				err = fmt.Errorf("%w; %w", e, err)
			}
			err = fmt.Errorf("something else answers on %s: %w", addr, err)
		}
	}
	if err != nil {
		_ = stopProcess(st.PID, d.data, p.stopGrace)
		msg := fmt.Sprintf("%v (listen %s, log %s)", err, addr, d.log)
		if tail := logTail(d.log, offset, logTailLines); tail != "" {
			msg += "; last lines of the log:\n" + tail
		}
		return runtimeState{}, errors.New(msg)
	}
	if info, held, _ := runtimelock.Read(d.data); held && info.PID == st.PID {
		st.Instance = info.Instance
		_ = writeState(d.state, st) // only adds the instance; the pid is recorded already
	}
	return st, nil
}

// Destroy stops the runtime gracefully and archives the environment's directory, data included.
// An environment that does not exist is already destroyed.
func (p *Provider) Destroy(_ context.Context, env spec.Environment) error {
	name := env.Metadata.Name
	d, err := p.dirs(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(d.root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Through the lock too: a runtime.json that is lost or damaged must not let a running runtime's data
	// dir be moved away under it.
	st, running, _, _ := current(p.fleet, name, d)
	if running {
		if err := stopProcess(st.PID, d.data, p.stopGrace); err != nil {
			return fmt.Errorf("environment %q: %w", name, err)
		}
	}
	if info, held, err := runtimelock.Read(d.data); err != nil || held {
		if err == nil {
			err = fmt.Errorf("a runtime (pid %d) still runs on its data dir %s; stop it first, then destroy again", info.PID, d.data)
		}
		return fmt.Errorf("environment %q: not archived: %w", name, err)
	}
	if _, err := providers.ArchiveEnvDir(p.stateDir, name); err != nil {
		return fmt.Errorf("environment %q: %w", name, err)
	}
	return nil
}

// List returns every environment under the state dir that fleet owns, sorted by name.
func (p *Provider) List(_ context.Context, fleet string) ([]providers.Observed, error) {
	entries, err := os.ReadDir(filepath.Join(p.stateDir, providers.DirEnvironments))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list local environments: %w", err)
	}
	var out []providers.Observed
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d := newEnvDirs(p.stateDir, e.Name())
		st, running, ok, _ := current(p.fleet, e.Name(), d)
		if !ok || st.Fleet != fleet {
			continue // not a runtime this provider started for fleet
		}
		out = append(out, p.observed(e.Name(), d, st, running))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Environment < out[j].Environment })
	return out, nil
}

// Purge removes the archive directories that destroying env left under <state-dir>/archive/environments,
// and returns their paths. The environment's own directory, if it exists again, is not touched.
func (p *Provider) Purge(_ context.Context, env spec.Environment) ([]string, error) {
	removed, err := providers.PurgeArchivedEnvDirs(p.stateDir, env.Metadata.Name)
	if err != nil {
		return removed, fmt.Errorf("environment %q: %w", env.Metadata.Name, err)
	}
	return removed, nil
}
