//go:build unix

package local_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
)

// imposter serves 200 to every request on a free loopback port, as another program that took a port
// would answer /readyz; it returns its address.
func imposter(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func stateFile(stateDir string) string {
	return filepath.Join(stateDir, "environments", "dev", "runtime.json")
}

// TestLostStateDoesNotHideRunningRuntime: runtime.json lost or damaged, the runtime that runs is still
// found through its data dir's lock, by Observe (status, plan) and by Destroy, which stops it before
// it archives its data dir, never under it.
func TestLostStateDoesNotHideRunningRuntime(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(path string) error
	}{
		{"deleted", os.Remove},
		{"corrupt", func(path string) error { return os.WriteFile(path, []byte("{not json"), 0o600) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			stateDir := t.TempDir()
			p, env, ep, obs := applied(t, stateDir)
			pid := pidOf(t, obs)
			require.NoError(t, damage.do(stateFile(stateDir)))

			got, err := p.Observe(t.Context(), env)
			require.NoError(t, err, "the runtime runs: it is found through its lock")
			assert.True(t, got.Running)
			assert.Equal(t, pid, pidOf(t, got))
			assert.Equal(t, ep.URL, got.Endpoint.URL)

			require.NoError(t, p.Destroy(t.Context(), env))
			assert.False(t, processExists(pid), "destroy stops the runtime it found through the lock")
			archived, err := filepath.Glob(filepath.Join(stateDir, "archive", "environments", "dev-*", "data"))
			require.NoError(t, err)
			assert.Len(t, archived, 1)
		})
	}
}

// TestStaleAddressIsNeverTrusted: runtime.json names an address where another program answers (the
// runtime was started again elsewhere since); apply and observe reach the runtime itself, whose lock
// says where it listens, and never report the other program as the environment's runtime.
func TestStaleAddressIsNeverTrusted(t *testing.T) {
	stateDir := t.TempDir()
	p, env, ep, _ := applied(t, stateDir)
	other := imposter(t)
	raw, err := os.ReadFile(stateFile(stateDir))
	require.NoError(t, err)
	real := strings.TrimPrefix(ep.URL, "http://")
	require.NoError(t, os.WriteFile(stateFile(stateDir), []byte(strings.ReplaceAll(string(raw), real, other)), 0o600))

	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, ep.URL, obs.Endpoint.URL)
	got, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	assert.Equal(t, ep.URL, got.URL, "the endpoint is the runtime's, not the other program's")
	_, err = api.NewClient(got.URL, got.Token).ListApps(t.Context())
	require.NoError(t, err)
}

// TestPortTakenIsAClearError: the declared address answers, but as another program: the apply fails,
// naming the address, and the failed creation leaves nothing in the state dir.
func TestPortTakenIsAClearError(t *testing.T) {
	stateDir := t.TempDir()
	p := newProvider(t, stateDir)
	env := newEnv("dev")
	env.Spec.Local.Listen = imposter(t)
	_, err := p.Apply(t.Context(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), env.Spec.Local.Listen)
	assert.NoDirExists(t, filepath.Join(stateDir, "environments"), "a failed creation leaves nothing behind")
}

// TestHungRuntimeIsRestarted: a runtime that is alive but does not answer (SIGSTOP) is killed and
// started again by the next apply, with its apps and data.
func TestHungRuntimeIsRestarted(t *testing.T) {
	p, env, ep, obs := applied(t, t.TempDir())
	pid := pidOf(t, obs)
	_, err := api.NewClient(ep.URL, ep.Token).PutApp(t.Context(), "notes", api.PutAppRequest{}, api.PutOptions{})
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// kill returns before the process stops: wait until the kernel says it is stopped.
	require.Eventually(t, func() bool { return processState(pid) == "T" }, 5*time.Second, 10*time.Millisecond)

	got, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !processExists(pid) }, 10*time.Second, 20*time.Millisecond, "the hung runtime is gone")
	after, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	assert.NotEqual(t, pid, pidOf(t, after))
	apps, err := api.NewClient(got.URL, got.Token).ListApps(t.Context())
	require.NoError(t, err)
	require.Len(t, apps, 1, "its apps come back")
}

// TestDeletedTokenConverges: the token file is lost while the runtime runs; the next apply makes a new
// one and restarts the runtime with it, so that the endpoint it returns works.
func TestDeletedTokenConverges(t *testing.T) {
	stateDir := t.TempDir()
	p, env, ep, obs := applied(t, stateDir)
	require.NoError(t, os.Remove(filepath.Join(stateDir, "environments", "dev", "token")))

	got, err := p.Apply(t.Context(), env)
	require.NoError(t, err)
	assert.NotEqual(t, ep.Token, got.Token)
	_, err = api.NewClient(got.URL, got.Token).ListApps(t.Context())
	require.NoError(t, err, "the runtime takes the new token")
	after, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	assert.NotEqual(t, pidOf(t, obs), pidOf(t, after))
}

// processState is the state letter of /proc/PID/stat ("R", "S", "T" stopped, "Z" zombie), or "".
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name is in parentheses and may hold spaces; the state follows the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return string(b[i+2])
	}
	return ""
}
