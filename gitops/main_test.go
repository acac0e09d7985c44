package gitops_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/gitops"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/stretchr/testify/require"
)

// binary is the appfleet executable: the daemon and the runtimes it starts.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &binary))
}

// waitLong bounds every wait for the daemon: generous, because the machine running the tests may be busy.
const waitLong = 2 * time.Minute

// gitRepo is a repository the test commits to; the daemon follows its main branch.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "ops@example.test")
	r.git("config", "user.name", "Ops")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	require.NoError(r.t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// commit writes files (a nil value removes the file) and commits them; it returns the commit's hash.
func (r *gitRepo) commit(msg string, files map[string]*string) string {
	r.t.Helper()
	for name, text := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if text == nil {
			require.NoError(r.t, os.Remove(p))
			continue
		}
		require.NoError(r.t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(r.t, os.WriteFile(p, []byte(*text), 0o644))
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func str(s string) *string { return &s }

func uniqueFleet(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "w" + hex.EncodeToString(b)
}

// fleetFiles are a fleet of one local environment and the given apps (name -> extra spec lines).
func fleetFiles(fleet, drift string, apps map[string]string) map[string]*string {
	files := map[string]*string{
		"fleet/fleet.yaml": str(fmt.Sprintf("apiVersion: appfleet.dev/v1alpha1\nkind: Fleet\nmetadata: {name: %s}\nspec: {drift: %s}\n", fleet, drift)),
		"fleet/env.yaml":   str("apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec: {provider: local}\n"),
	}
	for name, extra := range apps {
		files["fleet/apps/"+name+".yaml"] = str(appYAML(name, extra))
	}
	return files
}

func appYAML(name, extra string) string {
	return fmt.Sprintf(`apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: %s}
spec:
  environment: dev
  collections:
    - name: notes
      fields:
        - {name: title, type: string, required: true}
%s`, name, extra)
}

// watchProc is one `appfleet watch` process.
type watchProc struct {
	t        *testing.T
	stateDir string
	cmd      *exec.Cmd
	done     chan error
	log      *testbin.Output
	addr     string
}

// startWatch runs the daemon on stateDir (a new one when empty) and waits until it serves.
func startWatch(t *testing.T, stateDir string, env []string, args ...string) *watchProc {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	w := &watchProc{t: t, stateDir: stateDir, log: &testbin.Output{}, done: make(chan error, 1)}
	_ = os.Remove(filepath.Join(stateDir, "watch", gitops.AddrFile))
	all := append([]string{"watch", "--state-dir", stateDir, "--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)
	w.cmd = exec.Command(binary, all...)
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stderr = w.log
	require.NoError(t, w.cmd.Start())
	go func(cmd *exec.Cmd) { w.done <- cmd.Wait() }(w.cmd)
	t.Cleanup(func() {
		if w.cmd != nil {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.done:
			case <-time.After(waitLong):
				_ = w.cmd.Process.Kill()
			}
		}
		stopRuntimes(t, stateDir)
		if t.Failed() {
			t.Logf("daemon log:\n%s", w.log.String())
		}
	})
	deadline := time.Now().Add(waitLong)
	for {
		b, err := os.ReadFile(filepath.Join(stateDir, "watch", gitops.AddrFile))
		if err == nil && len(b) > 0 {
			w.addr = strings.TrimSpace(string(b))
			return w
		}
		select {
		case err := <-w.done:
			w.cmd = nil
			t.Fatalf("watch exited during start: %v\n%s", err, w.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch did not serve in time\n%s", w.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopRuntimes stops the runtimes the daemon's local provider started: they outlive the daemon.
func stopRuntimes(t *testing.T, stateDir string) {
	files, _ := filepath.Glob(filepath.Join(stateDir, "environments", "*", "runtime.json"))
	for _, f := range files {
		var st struct {
			PID int `json:"pid"`
		}
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &st) == nil && st.PID > 0 {
			_ = syscall.Kill(st.PID, syscall.SIGTERM)
		}
	}
}

// term stops the daemon with SIGTERM and returns how it exited.
func (w *watchProc) term() error {
	w.t.Helper()
	require.NoError(w.t, w.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-w.done:
		w.cmd = nil
		return err
	case <-time.After(waitLong):
		w.t.Fatalf("watch did not exit after SIGTERM\n%s", w.log.String())
		return nil
	}
}

func (w *watchProc) url(path string) string { return "http://" + w.addr + path }

func (w *watchProc) status() gitops.Status {
	w.t.Helper()
	resp, err := http.Get(w.url("/api/status"))
	require.NoError(w.t, err)
	defer resp.Body.Close()
	var st gitops.Status
	require.NoError(w.t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// waitFor polls the status until cond holds, failing the test after waitLong.
func (w *watchProc) waitFor(what string, cond func(gitops.Status) bool) gitops.Status {
	w.t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		st := w.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			w.t.Fatalf("timed out waiting for %s; status:\n%s\nlog:\n%s", what, b, w.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func appliedIs(hash string) func(gitops.Status) bool {
	return func(st gitops.Status) bool { return st.Applied != nil && st.Applied.Hash == hash }
}

func appOf(st gitops.Status, name string) *gitops.AppStatus {
	for i := range st.Apps {
		if st.Apps[i].Name == name {
			return &st.Apps[i]
		}
	}
	return nil
}

// runtimeClient is a client of environment env's runtime, as the local provider left its endpoint and token.
func runtimeClient(t *testing.T, stateDir string, st gitops.Status, env string) *api.Client {
	t.Helper()
	for _, e := range st.Environments {
		if e.Name == env {
			tok, err := os.ReadFile(filepath.Join(stateDir, "environments", env, "token"))
			require.NoError(t, err)
			return api.NewClient(e.Endpoint, strings.TrimSpace(string(tok)))
		}
	}
	t.Fatalf("environment %s not in status", env)
	return nil
}
