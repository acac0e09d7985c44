package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/engine/enginetest"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

// plan --out in a git work tree records the commit; applying that saved plan labels every app it writes
// with it. Uncommitted changes under the manifests are recorded as dirty, and then no app is labelled.
func TestSavedPlanRecordsTheGitCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("config", "user.email", "ci@example.test")
	git("config", "user.name", "CI")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "fleet"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet", "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	git("add", "-A")
	git("commit", "-q", "-m", "fleet")
	head := git("rev-parse", "HEAD")

	state := filepath.Join(t.TempDir(), "state")
	fake := enginetest.NewProvider(t)
	planFile := filepath.Join(t.TempDir(), "fleet.plan")
	code, out, errOut := runWith(t, fake, state, "plan", filepath.Join(dir, "fleet"), "--out", planFile)
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	f, err := os.Open(planFile)
	require.NoError(t, err)
	saved, err := plan.Load(f)
	f.Close()
	require.NoError(t, err)
	require.NotNil(t, saved.Git)
	assert.Equal(t, plan.GitSource{Commit: head, Branch: "main"}, *saved.Git)

	code, out, errOut = runWith(t, fake, state, "apply", planFile, "--yes")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/apps/crm", nil)
	req.Header.Set("Authorization", "Bearer enginetest-token") // the fake provider's runtimes' token
	fake.Runtime("dev").ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var app api.App
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &app))
	assert.Equal(t, head, app.Labels[spec.LabelCommit], "the app records the commit its plan was made from")

	// An uncommitted change under the manifests: the commit does not describe them, and says so.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet", "fleet.yaml"), []byte(strings.Replace(enginetest.Manifests, "{name: email, type: string}", "{name: email, type: text}", 1)), 0o644))
	code, out, errOut = runWith(t, fake, state, "plan", filepath.Join(dir, "fleet"), "--out", planFile)
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "uncommitted changes")
	f, err = os.Open(planFile)
	require.NoError(t, err)
	saved, err = plan.Load(f)
	f.Close()
	require.NoError(t, err)
	require.NotNil(t, saved.Git)
	assert.True(t, saved.Git.Dirty)

	// Outside a work tree nothing is recorded.
	other := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(other, "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	code, _, errOut = runWith(t, fake, filepath.Join(t.TempDir(), "state2"), "plan", other, "--out", planFile)
	require.Equal(t, ExitOK, code, errOut)
	f, err = os.Open(planFile)
	require.NoError(t, err)
	saved, err = plan.Load(f)
	f.Close()
	require.NoError(t, err)
	assert.Nil(t, saved.Git)
}
