package gitops_test

import (
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/appfleet/appfleet/gitops"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smartHTTP serves the bare repositories under root over git's smart HTTP protocol through
// `git http-backend` (net/http/cgi), over TLS, for the basic-auth password token only. While down is
// set it answers 503, like a forge that is unreachable.
func smartHTTP(t *testing.T, root, token string, down *atomic.Bool) (*httptest.Server, string) {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	require.NoError(t, err)
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git-http-backend is not installed: %v", err)
	}
	cgiHandler := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if _, pw, ok := r.BasicAuth(); !ok || pw != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	return srv, ca
}

// TestWatchOverHTTPSWithAnUnreachableRemote follows a repository served over https:// with a token, and
// keeps the last good commit applied while the remote fails, backing off, until it answers again.
func TestWatchOverHTTPSWithAnUnreachableRemote(t *testing.T) {
	t.Parallel()
	src := newRepo(t)
	fleet := uniqueFleet(t)
	files := fleetFiles(fleet, "notify", map[string]string{"crm": ""})
	c1 := src.commit("one app", files)
	root := t.TempDir()
	bare := filepath.Join(root, "fleet.git")
	src.git("clone", "-q", "--bare", src.dir, bare)
	push := func() { src.git("push", "-q", "--force", bare, "main") }

	var down atomic.Bool
	token := "tok-" + fleet
	srv, ca := smartHTTP(t, root, token, &down)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))

	w := startWatch(t, "", nil, "--repo", srv.URL+"/fleet.git", "--path", "fleet", "--interval", "1s",
		"--git-token-file", tokenFile, "--git-ca-file", ca)
	st := w.waitFor("the commit fetched over https applied", appliedIs(c1))
	assert.True(t, st.Remote.OK)
	assert.NotContains(t, w.log.String(), token, "the token never shows in logs")

	// The forge goes down: fetches fail and back off; the last good commit stays applied.
	down.Store(true)
	st = w.waitFor("fetches failing twice", func(st gitops.Status) bool { return st.Remote.Failures >= 2 })
	assert.False(t, st.Remote.OK)
	assert.Contains(t, st.Remote.Error, "fetch")
	require.NotNil(t, st.Remote.NextFetch)
	assert.Equal(t, c1, st.Applied.Hash)
	assert.Equal(t, gitops.HealthDegraded, st.Health)
	assert.Contains(t, w.log.String(), "fetch failed; the last good commit stays applied")

	// It comes back with a new commit, force-pushed over the old history: the daemon follows.
	src.git("reset", "-q", "--hard", "HEAD")
	files["fleet/apps/crm.yaml"] = str(appYAML("crm", "  settings: {tier: gold}\n"))
	src.git("commit", "-q", "--amend", "-m", "rewritten")
	c2 := src.commit("rewritten history", files)
	push()
	down.Store(false)
	st = w.waitFor("the force-pushed commit applied after the remote recovered", appliedIs(c2))
	assert.True(t, st.Remote.OK)
	assert.Zero(t, st.Remote.Failures)
}
