package engine_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/all"
	"github.com/appfleet/appfleet/spec"
)

// binary is the real appfleet command, built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &binary))
}

func localEnv(name string) spec.Environment {
	return spec.Environment{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindEnvironment,
		Metadata:   spec.Metadata{Name: name},
		Spec: spec.EnvironmentSpec{
			Provider: spec.ProviderLocal,
			Local:    &spec.LocalSpec{},
			Runtime:  spec.RuntimeSpec{IdleTimeout: spec.Duration{Duration: 10 * time.Minute}},
		},
	}
}

// applied starts env's runtime for cfg's fleet and destroys it when the test ends.
func applied(t *testing.T, reg providers.Registry, cfg providers.Config, env spec.Environment) (providers.Provider, providers.Endpoint) {
	t.Helper()
	p, err := reg.New(env.Spec.Provider, cfg)
	require.NoError(t, err)
	ep, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		assert.NoError(t, p.Destroy(ctx, env))
	})
	return p, ep
}

func putApp(t *testing.T, ep providers.Endpoint, name, env string) {
	t.Helper()
	_, err := api.NewClient(ep.URL, ep.Token).PutApp(t.Context(), name, api.PutAppRequest{Spec: spec.AppSpec{
		Environment: env,
		State:       spec.StateRunning,
		Database:    spec.Database{Driver: spec.DriverSQLite},
		Collections: []spec.Collection{{Name: "notes", Fields: []spec.Field{{Name: "title", Type: spec.TypeString}}}},
	}}, api.PutOptions{})
	require.NoError(t, err)
}

func pidOf(t *testing.T, p providers.Provider, env spec.Environment) int {
	t.Helper()
	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	pid, err := strconv.Atoi(obs.Detail["pid"])
	require.NoError(t, err)
	return pid
}

func TestObserveFleetAgainstRealRuntimes(t *testing.T) {
	reg := all.Registry()
	cfg := providers.Config{Fleet: "acme", StateDir: t.TempDir(), Binary: binary}
	up, crashed, hung, absent, old := localEnv("up"), localEnv("crashed"), localEnv("hung"), localEnv("absent"), localEnv("old")
	ship := spec.Environment{Metadata: spec.Metadata{Name: "ship"}, Spec: spec.EnvironmentSpec{Provider: "nowhere"}}

	_, upEP := applied(t, reg, cfg, up)
	putApp(t, upEP, "crm", "up")
	putApp(t, upEP, "billing", "up")
	pc, _ := applied(t, reg, cfg, crashed)
	ph, _ := applied(t, reg, cfg, hung)
	_, oldEP := applied(t, reg, cfg, old)
	putApp(t, oldEP, "legacy", "old")
	other := cfg
	other.Fleet = "other"
	applied(t, reg, other, localEnv("theirs"))

	require.NoError(t, syscall.Kill(pidOf(t, pc, crashed), syscall.SIGKILL))
	require.Eventually(t, func() bool {
		o, err := pc.Observe(t.Context(), crashed)
		return err == nil && !o.Running
	}, 5*time.Second, 20*time.Millisecond)
	hungPID := pidOf(t, ph, hung)
	require.NoError(t, syscall.Kill(hungPID, syscall.SIGSTOP))
	require.Eventually(t, func() bool { return procState(hungPID) == "T" }, 5*time.Second, 10*time.Millisecond,
		"a signal is delivered asynchronously; wait until the runtime has really stopped")
	t.Cleanup(func() { _ = syscall.Kill(hungPID, syscall.SIGCONT) }) // before its Destroy, which runs later

	start := time.Now()
	timeout := 500 * time.Millisecond
	o := engine.Observe(t.Context(), reg, cfg, []spec.Environment{up, crashed, hung, absent, ship}, timeout)
	snap, eps := o.Snapshot, o.Endpoints
	assert.Less(t, time.Since(start), 4*timeout, "a hung runtime costs one timeout, in parallel with the rest")

	assert.Equal(t, "acme", snap.Fleet)
	require.ElementsMatch(t, []string{"up", "crashed", "hung", "absent", "ship", "old"}, keys(snap.Environments),
		"every declared environment and every undeclared one the fleet owns; never another fleet's")

	s := snap.Environments["up"]
	assert.True(t, s.Exists && s.Running && s.Reachable, "%+v", s)
	assert.Empty(t, s.Error)
	assert.Equal(t, "local", s.Provider)
	assert.Equal(t, up.SpecHash(), s.SpecHash)
	assert.Equal(t, upEP.URL, s.Endpoint)
	require.Len(t, s.Apps, 2)
	assert.Equal(t, "billing", s.Apps[0].Name, "apps sorted by name")
	assert.Equal(t, "crm", s.Apps[1].Name)
	if diff := cmp.Diff(upEP, eps["up"]); diff != "" {
		t.Errorf("the executor gets the endpoint with its token (-want +got):\n%s", diff)
	}

	s = snap.Environments["crashed"]
	assert.True(t, s.Exists)
	assert.False(t, s.Running)
	assert.False(t, s.Reachable)
	assert.Empty(t, s.Error, "a stopped runtime is a state, not an observation error")
	assert.Contains(t, eps, "crashed")

	s = snap.Environments["hung"]
	assert.True(t, s.Exists && s.Running, "%+v", s)
	assert.False(t, s.Reachable)
	assert.Contains(t, s.Error, "unreachable")
	assert.Contains(t, s.Error, s.Endpoint)

	s = snap.Environments["absent"]
	assert.Equal(t, "absent", s.Name)
	assert.Equal(t, "local", s.Provider)
	assert.False(t, s.Exists)
	assert.Empty(t, s.Error)
	assert.NotContains(t, eps, "absent")

	s = snap.Environments["ship"]
	assert.False(t, s.Exists)
	assert.Contains(t, s.Error, `provider "nowhere" is not available`)

	s = snap.Environments["old"]
	assert.True(t, s.Exists && s.Running && s.Reachable, "%+v", s)
	require.Len(t, s.Apps, 1)
	assert.Equal(t, "legacy", s.Apps[0].Name)
	if diff := cmp.Diff(oldEP, eps["old"]); diff != "" {
		t.Errorf("endpoint of an undeclared environment (-want +got):\n%s", diff)
	}
}

// faulty is a provider that fails in every way a provider can, to show that observation contains it.
type faulty struct{}

func (faulty) Observe(_ context.Context, env spec.Environment) (providers.Observed, error) {
	if env.Metadata.Name == "boom" {
		panic("boom")
	}
	if env.Metadata.Name == "ghost" {
		// Claims a running runtime at an address where nothing listens.
		return providers.Observed{Environment: "ghost", Running: true, Endpoint: providers.Endpoint{URL: "http://127.0.0.1:1"}}, nil
	}
	return providers.Observed{}, errors.New("host unreachable")
}
func (faulty) Apply(context.Context, spec.Environment) (providers.Endpoint, error) {
	return providers.Endpoint{}, errors.New("not supported")
}
func (faulty) Destroy(context.Context, spec.Environment) error { return errors.New("not supported") }
func (faulty) List(context.Context, string) ([]providers.Observed, error) {
	return nil, errors.New("cannot list")
}

func TestObserveContainsFaultyProviders(t *testing.T) {
	reg := providers.Registry{"faulty": func(providers.Config) (providers.Provider, error) { return faulty{}, nil }}
	env := func(name string) spec.Environment {
		return spec.Environment{Metadata: spec.Metadata{Name: name}, Spec: spec.EnvironmentSpec{Provider: "faulty"}}
	}
	o := engine.Observe(t.Context(), reg, providers.Config{Fleet: "acme"},
		[]spec.Environment{env("boom"), env("down"), env("ghost")}, time.Second)

	assert.Contains(t, o.Snapshot.Environments["boom"].Error, "panicked: boom")
	assert.Equal(t, "observe faulty runtime: host unreachable", o.Snapshot.Environments["down"].Error)
	ghost := o.Snapshot.Environments["ghost"]
	assert.True(t, ghost.Exists && ghost.Running)
	assert.False(t, ghost.Reachable)
	assert.Contains(t, ghost.Error, "runtime at http://127.0.0.1:1 is unreachable")
	require.Len(t, o.Problems, 1)
	assert.EqualError(t, o.Problems[0], `list faulty environments of fleet "acme": cannot list`)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// procState is the one-letter state of a process as /proc/<pid>/stat gives it (R, S, T, Z, ...).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name in parentheses may hold spaces; the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}
