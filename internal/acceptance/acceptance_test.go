package acceptance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/appfleet/appfleet/internal/lock"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binary is the appfleet binary built for this test run; scripts find it first on their PATH.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &binary))
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
			env.Setenv("NO_COLOR", "1")
			env.Setenv("HOME", env.WorkDir)
			// One state dir per script, so the helper commands below know where runtimes keep their files.
			env.Setenv("APPFLEET_STATE_DIR", filepath.Join(env.WorkDir, ".appfleet"))
			// The examples are applied as a user would apply them, from a copy, each fixed listen address
			// moved to a free port: a user may run the same example on this machine meanwhile.
			if err := os.CopyFS(filepath.Join(env.WorkDir, "examples"), os.DirFS("../../examples")); err != nil {
				return err
			}
			if err := freeListenPorts(filepath.Join(env.WorkDir, "examples")); err != nil {
				return err
			}
			// Runtimes started by a script are detached; stop them whatever the script did.
			env.Defer(func() { stopRuntimes(filepath.Join(env.WorkDir, ".appfleet")) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"http":        cmdHTTP,
			"killenv":     cmdKillEnv,
			"gone":        cmdGone,
			"waitfile":    cmdWaitFile,
			"waitapps":    cmdWaitApps,
			"genapps":     cmdGenApps,
			"exitcode":    cmdExitCode,
			"holdlock":    cmdHoldLock,
			"holdport":    cmdHoldPort,
			"runtimeup":   cmdRuntimeUp,
			"releaselock": cmdReleaseLock,
		},
	})
}

// runtimeState is the part of the local provider's runtime.json the scripts need.
type runtimeState struct {
	PID    int    `json:"pid"`
	Listen string `json:"listen"`
}

// readRuntimeState reads where an environment's runtime listens and its pid: from the local provider's
// runtime.json, else from a terraform environment's record (environment.json) and the pid file that
// examples/terraform-local's module keeps in its data dir.
func readRuntimeState(stateDir, env string) (runtimeState, error) {
	var st runtimeState
	dir := filepath.Join(stateDir, "environments", env)
	b, err := os.ReadFile(filepath.Join(dir, "runtime.json"))
	if errors.Is(err, os.ErrNotExist) {
		return readTerraformState(dir)
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func readTerraformState(dir string) (runtimeState, error) {
	var st runtimeState
	var rec struct {
		Endpoint string `json:"endpoint"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "environment.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return st, err
	}
	st.Listen = strings.TrimPrefix(rec.Endpoint, "http://")
	if b, err := os.ReadFile(filepath.Join(dir, "runtime-data", "runtime.pid")); err == nil {
		_, _ = fmt.Sscan(string(b), &st.PID)
	}
	return st, nil
}

// envToken reads an environment's management token: the local provider's token file, else the one
// examples/terraform-local's module writes in its data dir.
func envToken(stateDir, env string) ([]byte, error) {
	dir := filepath.Join(stateDir, "environments", env)
	tok, err := os.ReadFile(filepath.Join(dir, "token"))
	if errors.Is(err, os.ErrNotExist) {
		return os.ReadFile(filepath.Join(dir, "runtime-data", "token"))
	}
	return tok, err
}

// cmdHTTP sends one request to an environment's runtime: http ENV METHOD PATH [BODY|@FILE]; a /v1/ path
// goes with the environment's management token. It prints the status code and the body to stdout, so scripts can match them with stdout.
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: http ENV METHOD PATH [BODY]")
	}
	st, err := readRuntimeState(ts.MkAbs(".appfleet"), args[0])
	ts.Check(err)
	var body io.Reader
	if len(args) == 4 {
		body = strings.NewReader(args[3])
		if file, ok := strings.CutPrefix(args[3], "@"); ok {
			// @GLOB sends the last file (in name order: the newest archive) the pattern names, as curl
			// --data-binary @FILE does.
			matches, err := filepath.Glob(ts.MkAbs(file))
			ts.Check(err)
			if len(matches) == 0 {
				ts.Fatalf("%s names no file", file)
			}
			b, err := os.ReadFile(matches[len(matches)-1])
			ts.Check(err)
			body = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(args[1], "http://"+st.Listen+args[2], body)
	ts.Check(err)
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(args[2], "/v1/") {
		// The management API: with the environment's token, as the control plane sends it.
		tok, err := envToken(ts.MkAbs(".appfleet"), args[0])
		ts.Check(err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d\n%s\n", resp.StatusCode, bytes.TrimSpace(b))
	failed := resp.StatusCode >= 400
	if failed != neg {
		ts.Fatalf("%s %s: %d %s", args[1], args[2], resp.StatusCode, b)
	}
}

// cmdKillEnv kills an environment's runtime with SIGKILL, as a crash would: killenv ENV.
func cmdKillEnv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: killenv ENV")
	}
	st, err := readRuntimeState(ts.MkAbs(".appfleet"), args[0])
	ts.Check(err)
	ts.Check(syscall.Kill(st.PID, syscall.SIGKILL))
	for i := 0; i < 100 && syscall.Kill(st.PID, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdGone checks that the process whose pid a file holds has exited (a zombie counts as exited):
// gone PIDFILE.
func cmdGone(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: gone PIDFILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var pid int
	_, err = fmt.Sscan(string(b), &pid)
	ts.Check(err)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	running := err == nil && len(cmdline) > 0
	if running != neg {
		ts.Fatalf("process %d: running %v", pid, running)
	}
}

// cmdWaitFile waits up to 30 s for a file to exist: waitfile PATH.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear within 30s", args[0])
}

// stopRuntimes kills every runtime a script left behind under stateDir.
func stopRuntimes(stateDir string) {
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "environments", "*"))
	for _, d := range dirs {
		if st, err := readRuntimeState(stateDir, filepath.Base(d)); err == nil && st.PID > 0 {
			_ = syscall.Kill(st.PID, syscall.SIGKILL)
		}
		// A script may have lost runtime.json on purpose: the data dir's lock still names the runtime.
		if info, held, err := runtimelock.Read(filepath.Join(d, "data")); err == nil && held && info.PID > 0 {
			_ = syscall.Kill(info.PID, syscall.SIGKILL)
		}
	}
}

// cmdWaitApps waits up to 30 s until an environment's runtime holds at least N apps: waitapps ENV N.
func cmdWaitApps(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitapps ENV N")
	}
	var want int
	_, err := fmt.Sscan(args[1], &want)
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := readRuntimeState(ts.MkAbs(".appfleet"), args[0])
		token, terr := os.ReadFile(ts.MkAbs(filepath.Join(".appfleet", "environments", args[0], "token")))
		if err == nil && terr == nil {
			apps, err := api.NewClient(st.Listen, strings.TrimSpace(string(token))).ListApps(context.Background())
			if err == nil && len(apps) >= want {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("environment %s did not reach %d apps within 30s", args[0], want)
}

// listenLine matches a local environment's fixed listen address in a manifest.
var listenLine = regexp.MustCompile(`(listen:\s*)(127\.0\.0\.1|localhost):\d+`)

// freeListenPorts rewrites every fixed loopback listen address in the manifests under dir to a free
// port, so that running an example in a test never collides with the same example a user runs.
func freeListenPorts(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var ferr error
		out := listenLine.ReplaceAllFunc(b, func(m []byte) []byte {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				ferr = err
				return m
			}
			defer l.Close()
			return append(bytes.Clone(listenLine.FindSubmatch(m)[1]), l.Addr().String()...)
		})
		if ferr != nil {
			return ferr
		}
		return os.WriteFile(path, out, 0o644)
	})
}

// cmdHoldPort listens on a free loopback port for the rest of the script, as another program would, and
// sets the variable VAR to its address: holdport VAR.
func cmdHoldPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: holdport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) })}
	go func() { _ = srv.Serve(l) }()
	ts.Defer(func() { _ = srv.Close() })
	ts.Setenv(args[0], l.Addr().String())
}

// cmdRuntimeUp succeeds when the process a runtime.json names (a copy kept by the script) still runs:
// runtimeup FILE.
func cmdRuntimeUp(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: runtimeup RUNTIME_JSON")
	}
	var st runtimeState
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(json.Unmarshal(b, &st))
	up := false
	for range 250 { // a runtime that is stopping may take a moment to go
		up = st.PID > 0 && syscall.Kill(st.PID, 0) == nil
		if up == !neg {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if up == neg {
		ts.Fatalf("runtime pid %d: running %v", st.PID, up)
	}
}

// heldLocks are the state-dir locks scripts hold, by script work dir.
var heldLocks sync.Map

// cmdHoldLock takes the state dir's apply lock in this process, as a running apply would: holdlock DIR.
func cmdHoldLock(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: holdlock STATEDIR")
	}
	l, err := lock.Acquire(ts.MkAbs(args[0]), "appfleet apply")
	ts.Check(err)
	heldLocks.Store(ts.MkAbs(args[0]), l)
}

// cmdReleaseLock releases a lock taken by holdlock: releaselock DIR.
func cmdReleaseLock(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: releaselock STATEDIR")
	}
	v, ok := heldLocks.LoadAndDelete(ts.MkAbs(args[0]))
	if !ok {
		ts.Fatalf("no lock held on %s", args[0])
	}
	ts.Check(v.(*lock.Lock).Release())
}

// cmdGenApps writes N app manifests into DIR, all in environment ENV: genapps DIR ENV N.
func cmdGenApps(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: genapps DIR ENV N")
	}
	var n int
	_, err := fmt.Sscan(args[2], &n)
	ts.Check(err)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: app-%03d}
spec:
  environment: %s
  collections:
    - name: items
      fields:
        - {name: title, type: string, required: true}
`, i, args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(filepath.Join(args[0], "apps.yaml")), []byte(b.String()), 0o644))
}

// cmdExitCode runs a command and checks its exit code: exitcode N COMMAND [ARGS...].
// Its stdout and stderr are kept for the stdout and stderr checks that follow.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N COMMAND [ARGS...]")
	}
	var want int
	_, err := fmt.Sscan(args[0], &want)
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// fixedPort matches a listen or publish address with a fixed, non-zero port in a manifest or a command.
var fixedPort = regexp.MustCompile(`(listen|publish)(:\s*|\s+|=)["']?[\w.\[\]:-]*:0*[1-9]\d*\b`)

// TestScriptsUseFreePorts keeps the suite hermetic: no script binds a fixed port (a user may run an
// example on this machine meanwhile, or another test run may), and the examples the scripts apply move
// to free ports when copied.
func TestScriptsUseFreePorts(t *testing.T) {
	scripts, err := filepath.Glob("testdata/script/*.txtar")
	require.NoError(t, err)
	require.NotEmpty(t, scripts)
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		require.NoError(t, err)
		for i, line := range strings.Split(string(b), "\n") {
			if m := fixedPort.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d: fixed port %q; use holdport or leave the address out", s, i+1, m)
			}
		}
	}
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../examples")))
	require.NoError(t, freeListenPorts(dir))
	require.NoError(t, filepath.WalkDir("../../examples", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		orig, err := os.ReadFile(path)
		require.NoError(t, err)
		rel, err := filepath.Rel("../../examples", path)
		require.NoError(t, err)
		copied, err := os.ReadFile(filepath.Join(dir, rel))
		require.NoError(t, err)
		was, is := strings.Split(string(orig), "\n"), strings.Split(string(copied), "\n")
		for i, line := range was {
			if listenLine.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				assert.NotEqual(t, line, is[i], "%s:%d: the copy still listens on the example's fixed port", path, i+1)
			}
		}
		return nil
	}))
}
