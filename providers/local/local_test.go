//go:build unix

package local_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/local"
	"github.com/appfleet/appfleet/providers/providertest"
	"github.com/appfleet/appfleet/spec"
)

// binary is the real appfleet command, built once for the package's tests.
var binary string

// applyHelperEnv, when set to a state dir, makes the test binary apply newEnv("dev") there and exit at
// once: the process that started the runtime is then gone, as after `appfleet apply`.
const (
	applyHelperEnv  = "APPFLEET_LOCAL_TEST_APPLY"
	binaryHelperEnv = "APPFLEET_LOCAL_TEST_BINARY"
)

func TestMain(m *testing.M) {
	if stateDir := os.Getenv(applyHelperEnv); stateDir != "" {
		os.Exit(applyAndExit(stateDir, os.Getenv(binaryHelperEnv)))
	}
	os.Exit(testbin.Main(m, &binary))
}

const fleet = "acme"

func newEnv(name string) spec.Environment {
	return spec.Environment{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindEnvironment,
		Metadata:   spec.Metadata{Name: name},
		Spec: spec.EnvironmentSpec{
			Provider: spec.ProviderLocal,
			Local:    &spec.LocalSpec{},
			Runtime:  spec.RuntimeSpec{MaxApps: 100, IdleTimeout: spec.Duration{Duration: 10 * time.Minute}},
		},
	}
}

func newProvider(t *testing.T, stateDir string) providers.Provider {
	t.Helper()
	p, err := local.New(providers.Config{Fleet: fleet, StateDir: stateDir, Binary: binary})
	require.NoError(t, err)
	return p
}

func pidOf(t *testing.T, obs providers.Observed) int {
	t.Helper()
	pid, err := strconv.Atoi(obs.Detail["pid"])
	require.NoError(t, err, "Detail has the pid of a running runtime: %v", obs.Detail)
	return pid
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Target {
		return providertest.Target{
			Provider: newProvider(t, t.TempDir()),
			Fleet:    fleet,
			Env:      newEnv("dev"),
			Crash: func(t *testing.T, obs providers.Observed) {
				require.NoError(t, syscall.Kill(pidOf(t, obs), syscall.SIGKILL))
			},
			Conflict: func(t *testing.T) (spec.Environment, string) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				t.Cleanup(func() { l.Close() })
				env := newEnv("dev")
				env.Spec.Local.Listen = l.Addr().String()
				return env, l.Addr().String()
			},
		}
	})
}

// applied starts environment "dev" with a provider on stateDir, destroyed when the test ends, and returns
// what Apply and then Observe answered.
func applied(t *testing.T, stateDir string) (providers.Provider, spec.Environment, providers.Endpoint, providers.Observed) {
	t.Helper()
	p := newProvider(t, stateDir)
	env := newEnv("dev")
	providertest.DestroyOnCleanup(t, p, env)
	ep, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	return p, env, ep, obs
}

func TestApplyLaysOutStateDir(t *testing.T) {
	stateDir := t.TempDir()
	_, env, ep, obs := applied(t, stateDir)
	pid := pidOf(t, obs)

	root := filepath.Join(stateDir, "environments", "dev")
	assert.DirExists(t, filepath.Join(root, "data"))
	assert.FileExists(t, filepath.Join(root, "runtime.log"))
	fi, err := os.Stat(filepath.Join(root, "token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the token is private")
	tok, err := os.ReadFile(filepath.Join(root, "token"))
	require.NoError(t, err)
	assert.Equal(t, ep.Token, strings.TrimSpace(string(tok)))

	raw, err := os.ReadFile(filepath.Join(root, "runtime.json"))
	require.NoError(t, err)
	js := string(raw)
	for _, want := range []string{`"fleet": "acme"`, `"pid": ` + strconv.Itoa(pid), `"specHash": "` + env.SpecHash() + `"`, binary} {
		assert.Contains(t, js, want)
	}
	assert.NotContains(t, js, ep.Token, "runtime.json never holds the token")

	// Detached: the runtime leads its own session, so no terminal signal of ours reaches it.
	sid, err := unix.Getsid(pid)
	require.NoError(t, err)
	assert.Equal(t, pid, sid)
	assert.Equal(t, filepath.Join(root, "data"), obs.Detail["dataDir"])
	assert.Equal(t, filepath.Join(root, "runtime.log"), obs.Detail["log"])
}

func TestSettingsChangeRestartsOnSameEndpoint(t *testing.T) {
	p, env, ep, before := applied(t, t.TempDir())

	env.Spec.Runtime.IdleTimeout.Duration = time.Minute
	ep2, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	after, err := p.Observe(t.Context(), env)
	require.NoError(t, err)

	assert.NotEqual(t, pidOf(t, before), pidOf(t, after), "a new process with the new settings")
	assert.False(t, processExists(pidOf(t, before)), "the old process is gone")
	assert.Equal(t, ep, ep2, "a port chosen at first start is kept across restarts")
	require.NotNil(t, after.Spec, "Observe reports the spec the runtime runs with, so a plan can show what changed")
	assert.Equal(t, time.Minute, after.Spec.Runtime.IdleTimeout.Duration)
}

func TestCrashedRuntimeKeepsItsPort(t *testing.T) {
	p, env, ep, obs := applied(t, t.TempDir())
	require.NoError(t, syscall.Kill(pidOf(t, obs), syscall.SIGKILL))
	require.Eventually(t, func() bool {
		o, err := p.Observe(t.Context(), env)
		return err == nil && !o.Running
	}, 5*time.Second, 20*time.Millisecond)

	ep2, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, ep, ep2)
}

func TestDestroyArchivesData(t *testing.T) {
	stateDir := t.TempDir()
	p, env, _, obs := applied(t, stateDir)
	pid := pidOf(t, obs)
	marker := filepath.Join(stateDir, "environments", "dev", "data", "marker")
	require.NoError(t, os.WriteFile(marker, []byte("kept"), 0o600))

	require.NoError(t, p.Destroy(t.Context(), env))
	assert.False(t, processExists(pid), "Destroy stops the runtime")
	assert.NoDirExists(t, filepath.Join(stateDir, "environments", "dev"))

	archived, err := filepath.Glob(filepath.Join(stateDir, "archive", "environments", "dev-*"))
	require.NoError(t, err)
	require.Len(t, archived, 1)
	assert.Regexp(t, `/dev-\d{8}T\d{6}Z$`, archived[0])
	b, err := os.ReadFile(filepath.Join(archived[0], "data", "marker"))
	require.NoError(t, err)
	assert.Equal(t, "kept", string(b))
	assert.FileExists(t, filepath.Join(archived[0], "token"))

	// A second life of the same environment archives beside the first, never over it.
	_, err = p.Apply(t.Context(), env)
	require.NoError(t, err)
	require.NoError(t, p.Destroy(t.Context(), env))
	archived, err = filepath.Glob(filepath.Join(stateDir, "archive", "environments", "dev-*"))
	require.NoError(t, err)
	assert.Len(t, archived, 2)
}

func TestListOnlyTheFleetsOwn(t *testing.T) {
	stateDir := t.TempDir()
	ours := newProvider(t, stateDir)
	theirs, err := local.New(providers.Config{Fleet: "other", StateDir: stateDir, Binary: binary})
	require.NoError(t, err)
	a, b := newEnv("a"), newEnv("b")
	providertest.DestroyOnCleanup(t, ours, a)
	providertest.DestroyOnCleanup(t, theirs, b)
	_, err = ours.Apply(t.Context(), a)
	require.NoError(t, err)
	_, err = theirs.Apply(t.Context(), b)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(stateDir, "environments", "stray"), 0o700))

	list, err := ours.List(t.Context(), fleet)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "a", list[0].Environment)
	assert.True(t, list[0].Running)
}

func TestStartFailureShowsLog(t *testing.T) {
	// A binary that fails the way a runtime fails to start: a message on stderr and a non-zero exit.
	dir := t.TempDir()
	bad := filepath.Join(dir, "appfleet")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho 'open data dir: disk on fire' >&2\nexit 3\n"), 0o755))
	p, err := local.New(providers.Config{Fleet: fleet, StateDir: filepath.Join(dir, "state"), Binary: bad})
	require.NoError(t, err)

	start := time.Now()
	_, err = p.Apply(t.Context(), newEnv("dev"))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "a runtime that exits is noticed at once, not after the ready timeout")
	msg := err.Error()
	assert.Contains(t, msg, `environment "dev": start runtime: runtime exited before it was ready`)
	assert.Contains(t, msg, "disk on fire", "the error carries the end of the log")
	assert.Contains(t, msg, "runtime.log")
}

func TestObserveIgnoresReusedPid(t *testing.T) {
	stateDir := t.TempDir()
	p := newProvider(t, stateDir)
	root := filepath.Join(stateDir, "environments", "dev")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "data"), 0o700))
	// This test's own pid is alive but is not the runtime: a pid reused after the runtime died.
	state := fmt.Sprintf(`{"fleet": %q, "environment": "dev", "pid": %d, "listen": "127.0.0.1:1", "specHash": "x"}`, fleet, os.Getpid())
	require.NoError(t, os.WriteFile(filepath.Join(root, "runtime.json"), []byte(state), 0o600))

	obs, err := p.Observe(t.Context(), newEnv("dev"))
	require.NoError(t, err)
	assert.False(t, obs.Running)
	assert.Equal(t, "http://127.0.0.1:1", obs.Endpoint.URL)

	// And Destroy must not signal it.
	require.NoError(t, p.Destroy(t.Context(), newEnv("dev")))
	assert.True(t, processExists(os.Getpid()))
}

func TestObserveAbsent(t *testing.T) {
	stateDir := t.TempDir()
	p := newProvider(t, stateDir)
	// A directory without runtime.json is no runtime (an apply that failed before starting one).
	require.NoError(t, os.MkdirAll(filepath.Join(stateDir, "environments", "dev", "data"), 0o700))
	_, err := p.Observe(t.Context(), newEnv("dev"))
	require.ErrorIs(t, err, providers.ErrNotFound)
	_, err = p.Observe(t.Context(), newEnv("prod"))
	require.ErrorIs(t, err, providers.ErrNotFound)
}

func TestRejectsPathNames(t *testing.T) {
	p := newProvider(t, t.TempDir())
	for _, name := range []string{"", "..", "a/b"} {
		_, err := p.Apply(t.Context(), newEnv(name))
		assert.ErrorContains(t, err, "not a valid environment name", "name %q", name)
	}
}

func TestNewNeedsFleetAndStateDir(t *testing.T) {
	_, err := local.New(providers.Config{StateDir: t.TempDir()})
	assert.ErrorContains(t, err, "no fleet name")
	_, err = local.New(providers.Config{Fleet: fleet})
	assert.ErrorContains(t, err, "no state dir")
}

func processExists(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && len(b) > 0
}

func applyAndExit(stateDir, bin string) int {
	p, err := local.New(providers.Config{Fleet: fleet, StateDir: stateDir, Binary: bin})
	if err == nil {
		_, err = p.Apply(context.Background(), newEnv("dev"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestRuntimeOutlivesApplyingProcess(t *testing.T) {
	stateDir := t.TempDir()
	p := newProvider(t, stateDir)
	env := newEnv("dev")
	t.Cleanup(func() { _ = p.Destroy(context.Background(), env) })

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), applyHelperEnv+"="+stateDir, binaryHelperEnv+"="+binary)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	require.True(t, obs.Running, "the runtime runs on after the process that started it exited")
	pid := pidOf(t, obs)

	// This process never started it, yet finds it, leaves it alone when nothing changed, and stops it.
	_, err = p.Apply(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, pid, pidOf(t, mustObserve(t, p, env)))
	require.NoError(t, p.Destroy(t.Context(), env))
	assert.False(t, processExists(pid))
}

func mustObserve(t *testing.T, p providers.Provider, env spec.Environment) providers.Observed {
	t.Helper()
	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	return obs
}

func TestApplyRightAfterKill(t *testing.T) {
	p := newProvider(t, t.TempDir())
	env := newEnv("dev")
	t.Cleanup(func() { _ = p.Destroy(context.Background(), env) })

	ep, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	pid := pidOf(t, mustObserve(t, p, env))

	// No pause: the process may still look alive while the kernel tears it down.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	ep2, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, ep, ep2)
	assert.NotEqual(t, pid, pidOf(t, mustObserve(t, p, env)))
}
