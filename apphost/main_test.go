package apphost_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/stretchr/testify/require"
)

// binary is the appfleet executable the tests run as real runtime processes.
var binary string

// TestMain builds the binary once; with APPFLEET_TEST_RACE=1 the runtime processes run under the race
// detector too (testbin.RaceEnv).
func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &binary))
}

// runtimeProc is one `appfleet runtime serve` process under test.
type runtimeProc struct {
	t       testing.TB
	dataDir string
	args    []string
	env     []string // added to the process's environment
	// maxFiles, when not 0, is the process's limit on open files (soft and hard).
	maxFiles int
	cmd      *exec.Cmd
	done     chan error
	log      *lockedWriter
	addr     string
	token    string
	client   *api.Client
}

// startRuntime runs a runtime on a fresh data dir (or dataDir when given) and waits until it is ready.
func startRuntime(t testing.TB, dataDir string, args ...string) *runtimeProc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	return startRuntimeEnv(t, dataDir, nil, args...)
}

// startRuntimeEnv is startRuntime with env added to the runtime's environment.
func startRuntimeEnv(t testing.TB, dataDir string, env []string, args ...string) *runtimeProc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	p := &runtimeProc{t: t, dataDir: dataDir, args: args, env: env}
	p.start()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *runtimeProc) start() {
	t := p.t
	t.Helper()
	args := append([]string{"runtime", "serve", "--data-dir", p.dataDir, "--listen", "127.0.0.1:0", "--log-level", "debug"}, p.args...)
	p.cmd = exec.Command(binary, args...)
	if p.maxFiles > 0 {
		p.cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, p.maxFiles), binary}, args...)...)
	}
	p.cmd.Env = append(os.Environ(), p.env...)
	p.log = &lockedWriter{}
	p.cmd.Stderr = p.log
	require.NoError(t, p.cmd.Start())
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The data dir's lock names the runtime holding it and its address (apphost/runtimelock).
		info, held, err := runtimelock.Read(p.dataDir)
		if err == nil && held && info.PID == p.cmd.Process.Pid && info.Address != "" {
			p.addr = info.Address
			break
		}
		select {
		case err := <-p.done:
			t.Fatalf("runtime exited during start: %v\n%s", err, p.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("runtime did not record its address in runtime.lock in time\n%s", p.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(p.dataDir, "token"))
	require.NoError(t, err)
	p.token = strings.TrimSpace(string(tok))
	p.client = api.NewClient(p.addr, p.token)
	require.NoError(t, p.client.Ready(t.Context()))
}

// kill9 kills the process the hard way and waits for it.
func (p *runtimeProc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// waitExit waits for a process that is ending by itself (a crash point) and forgets it.
func (p *runtimeProc) waitExit(bound time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
		p.cmd = nil
	case <-time.After(bound):
		p.t.Fatalf("runtime did not exit\n%s", p.logText())
	}
}

// term sends SIGTERM and returns the exit error.
func (p *runtimeProc) term() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.cmd = nil
		return err
	case <-time.After(30 * time.Second):
		p.t.Fatalf("runtime did not exit after SIGTERM\n%s", p.logText())
		return nil
	}
}

func (p *runtimeProc) stop() {
	if p.cmd == nil {
		return
	}
	if err := p.term(); err != nil {
		p.t.Errorf("runtime exited with %v\n%s", err, p.logText())
	}
}

func (p *runtimeProc) logText() string { return p.log.String() }

// lockedWriter collects a process's stderr while tests read it.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// do sends a request of app traffic or management and returns status and body.
func (p *runtimeProc) do(method, path, key string, body any, hdr ...string) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(p.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+p.addr+path, rd)
	require.NoError(p.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp.StatusCode, out
}

// errorCode decodes an error body's code.
func errorCode(t testing.TB, body []byte) api.ErrorDetail {
	t.Helper()
	var eb api.ErrorBody
	require.NoError(t, json.Unmarshal(body, &eb), string(body))
	return eb.Error
}
