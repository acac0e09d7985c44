package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a buffer the runtime's goroutines write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRuntimeServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	errOut := &syncBuffer{}
	opts := &runtimeServeOptions{
		IO:      &IOStreams{In: &bytes.Buffer{}, Out: &bytes.Buffer{}, ErrOut: errOut},
		DataDir: dir, Listen: "127.0.0.1:0", Name: "edge", IdleTimeout: time.Minute,
		ShutdownTimeout: 5 * time.Second, LogFormat: "json", LogLevel: "info",
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runRuntimeServe(ctx, opts) }()

	var addr string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "runtime.addr"))
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	}, 10*time.Second, 10*time.Millisecond)
	assert.NotContains(t, addr, ":0", "port 0 is replaced by the port really bound")
	// runtime.addr is written just before the line is printed: wait for it as well.
	assert.Eventually(t, func() bool { return strings.Contains(errOut.String(), "listening on "+addr) },
		5*time.Second, 10*time.Millisecond, "stderr: %s", errOut)

	fi, err := os.Stat(filepath.Join(dir, "token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a generated token is private")
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	tok, err := os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)

	c := api.NewClient(addr, strings.TrimSpace(string(tok)))
	require.NoError(t, c.Ready(t.Context()))
	info, err := c.Runtime(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "edge", info.Name)
	resp, err := http.Get("http://" + addr + "/v1/apps")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	probeOut := &bytes.Buffer{}
	probe := &runtimeProbeOptions{IO: &IOStreams{Out: probeOut, ErrOut: probeOut}, URL: "http://" + addr, Timeout: 5 * time.Second}
	require.NoError(t, runRuntimeProbe(t.Context(), probe), "the health check passes while the runtime serves")
	assert.Contains(t, probeOut.String(), "is ready")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a signal ends the runtime cleanly")
	case <-time.After(15 * time.Second):
		t.Fatal("runtime did not stop")
	}
	assert.ErrorContains(t, runRuntimeProbe(t.Context(), probe), "is not ready", "the health check fails once it stopped")

	// A second start keeps the token and takes a given token file.
	tokenFile := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(tokenFile, []byte("given-token\n"), 0o600))
	opts.TokenFile = tokenFile
	ctx2, cancel2 := context.WithCancel(t.Context())
	done2 := make(chan error, 1)
	_ = os.Remove(filepath.Join(dir, "runtime.addr"))
	go func() { done2 <- runRuntimeServe(ctx2, opts) }()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "runtime.addr"))
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	}, 10*time.Second, 10*time.Millisecond)
	_, err = api.NewClient(addr, "given-token").Runtime(t.Context())
	assert.NoError(t, err)
	cancel2()
	require.NoError(t, <-done2)
}

func TestRuntimeServeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no data dir", []string{"runtime", "serve"}, "data-dir"},
		{"bad log format", []string{"runtime", "serve", "--data-dir", t.TempDir(), "--log-format", "xml"}, "--log-format"},
		{"bad listen", []string{"runtime", "serve", "--data-dir", t.TempDir(), "--listen", "256.1.1.1:99999"}, "listen on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			io, _, _, errOut := TestIO(false)
			code := Run(t.Context(), &Factory{IO: io}, tc.args)
			assert.Equal(t, ExitError, code)
			assert.Contains(t, errOut.String(), tc.want)
		})
	}
}
