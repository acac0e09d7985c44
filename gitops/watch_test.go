package gitops_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/gitops"
	"github.com/appfleet/appfleet/gitops/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// notifications collects what the daemon posts to --notify.
type notifications struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (n *notifications) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	n.mu.Lock()
	n.msgs = append(n.msgs, m)
	n.mu.Unlock()
}

// texts returns the text of every notification of kind.
func (n *notifications) texts(kind string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, m := range n.msgs {
		if d, _ := m["appfleet"].(map[string]any); d["kind"] == kind {
			out = append(out, m["text"].(string))
		}
	}
	return out
}

func postHook(t *testing.T, w *watchProc, source string, hdr map[string]string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.url("/hooks/"+source), bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestWatch is the daemon's life with a real git repository, the real binary and a real runtime: commits
// applied and refused, webhooks, drift healed and reported, a killed runtime brought back, a second
// daemon refused and a clean stop.
func TestWatch(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	fleet := uniqueFleet(t)
	notes := &notifications{}
	hooks := httptest.NewServer(notes)
	defer hooks.Close()
	secret := "s3cret-hook"
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))

	files := fleetFiles(fleet, "heal", map[string]string{
		"crm":  "  settings: {currency: EUR}\n",
		"shop": "  drift: notify\n  settings: {currency: EUR}\n",
		"wiki": "",
	})
	c1 := repo.commit("three apps", files)
	stateDir := t.TempDir()
	w := startWatch(t, stateDir, nil, "--repo", "file://"+repo.dir, "--path", "fleet", "--interval", "1h",
		"--webhook-secret-file", secretFile, "--notify", hooks.URL)

	// A push is applied: every app runs and carries the commit.
	st := w.waitFor("the first commit applied", appliedIs(c1))
	require.Len(t, st.Apps, 3)
	for _, a := range st.Apps {
		assert.Equal(t, "running", a.Status, a.Name)
		assert.Equal(t, c1, a.Commit, a.Name)
	}
	assert.Equal(t, fleet, st.Fleet)
	assert.Equal(t, "heal", appOf(st, "crm").Policy)
	assert.Equal(t, "notify", appOf(st, "shop").Policy)
	rt := runtimeClient(t, stateDir, st, "dev")
	crm, err := rt.GetApp(t.Context(), "crm")
	require.NoError(t, err)
	assert.Equal(t, c1, crm.Labels[gitops.LabelCommit], "the commit is recorded on the app")
	require.Equal(t, int64(1), crm.Generation)

	// Health, readiness and metrics.
	assert.Contains(t, get(t, w.url("/healthz")), `"ok"`)
	assert.Contains(t, get(t, w.url("/readyz")), `"ready"`)
	metrics := get(t, w.url("/metrics"))
	assert.Contains(t, metrics, `appfleet_watch_syncs_total{result="ok"} 1`)
	assert.Contains(t, metrics, `appfleet_watch_app_status{app="crm",environment="dev",status="running"} 1`)
	assert.Contains(t, metrics, "appfleet_watch_sync_duration_seconds_count 1")
	assert.Contains(t, metrics, "appfleet_watch_last_success_timestamp_seconds")

	// A second daemon on the same state dir is refused, naming the holder.
	second := exec.Command(binary, "watch", "--state-dir", stateDir, "--listen", "127.0.0.1:0", "--repo", "file://"+repo.dir)
	out, err := second.CombinedOutput()
	require.Error(t, err, "a second daemon must not start: %s", out)
	assert.Contains(t, string(out), "locked by pid "+strconv.Itoa(w.cmd.Process.Pid))
	assert.Contains(t, string(out), "appfleet watch")

	// One field changes: a webhook with a wrong signature triggers nothing...
	files["fleet/apps/crm.yaml"] = str(appYAML("crm", "  settings: {currency: USD}\n"))
	c2 := repo.commit("crm in dollars", files)
	body := []byte(`{"ref":"refs/heads/main"}`)
	assert.Equal(t, http.StatusUnauthorized, postHook(t, w, "github", map[string]string{"X-Hub-Signature-256": webhook.Sign([]byte("wrong"), body)}, body))
	assert.Equal(t, http.StatusUnauthorized, postHook(t, w, "github", nil, body))
	assert.Equal(t, http.StatusUnauthorized, postHook(t, w, "gitlab", map[string]string{"X-Gitlab-Token": "nope"}, body))
	time.Sleep(1500 * time.Millisecond)
	assert.Equal(t, c1, w.status().Head.Hash, "a refused webhook fetches nothing")

	// ...a signed one applies the commit at once, and exactly that one change.
	start := time.Now()
	require.Equal(t, http.StatusAccepted, postHook(t, w, "github", map[string]string{"X-Hub-Signature-256": webhook.Sign([]byte(secret), body), "X-GitHub-Event": "push"}, body))
	st = w.waitFor("the one-field change applied", appliedIs(c2))
	t.Logf("webhook -> applied in %s", time.Since(start).Round(time.Millisecond))
	require.NotNil(t, st.LastPlan)
	assert.Equal(t, "Plan: 0 to create, 1 to update, 0 to delete.", st.LastPlan.Summary)
	assert.Contains(t, st.LastPlan.Text, `settings.currency`)
	assert.Contains(t, st.LastPlan.Text, `"EUR" -> "USD"`)
	crm, err = rt.GetApp(t.Context(), "crm")
	require.NoError(t, err)
	assert.Equal(t, "USD", crm.Spec.Settings["currency"])
	assert.Equal(t, int64(2), crm.Generation)
	assert.Equal(t, c2, crm.Labels[gitops.LabelCommit])
	for _, name := range []string{"shop", "wiki"} {
		a, err := rt.GetApp(t.Context(), name)
		require.NoError(t, err)
		assert.Equal(t, int64(1), a.Generation, "%s is not touched", name)
		assert.Equal(t, c1, a.Labels[gitops.LabelCommit], "%s keeps the commit that wrote it", name)
	}

	// An invalid manifest is refused with its diagnostics; the last good commit stays applied.
	files["fleet/apps/crm.yaml"] = str(appYAML("crm", "  settings: {currency: USD}\n  replicas: 3\n"))
	c3 := repo.commit("a field that does not exist", files)
	require.Equal(t, http.StatusAccepted, postHook(t, w, "gitlab", map[string]string{"X-Gitlab-Token": secret}, body))
	st = w.waitFor("the invalid commit refused", func(st gitops.Status) bool { return st.Refused != nil && st.Refused.Commit.Hash == c3 })
	assert.Equal(t, c2, st.Applied.Hash, "the last good commit stays applied")
	require.NotEmpty(t, st.Refused.Diagnostics)
	assert.Contains(t, st.Refused.Diagnostics[0], "fleet/apps/crm.yaml:11:3:")
	assert.Contains(t, st.Refused.Diagnostics[0], `unknown field "replicas"`)
	assert.Equal(t, gitops.HealthDegraded, st.Health)
	page := get(t, w.url("/"))
	assert.Contains(t, page, "refused")
	assert.Contains(t, page, "unknown field")

	// A fix is applied and the refusal cleared.
	files["fleet/apps/crm.yaml"] = str(appYAML("crm", "  settings: {currency: CHF}\n"))
	c4 := repo.commit("fix", files)
	giteaSig := strings.TrimPrefix(webhook.Sign([]byte(secret), body), "sha256=")
	require.Equal(t, http.StatusAccepted, postHook(t, w, "gitea", map[string]string{"X-Gitea-Signature": giteaSig}, body))
	st = w.waitFor("the fix applied", appliedIs(c4))
	assert.Nil(t, st.Refused)
	require.Eventually(t, func() bool { return len(notes.texts("sync_failed")) == 1 && len(notes.texts("recovered")) == 1 }, waitLong, 50*time.Millisecond,
		"one notification for the refused commit, one for the recovery")
	assert.Contains(t, notes.texts("sync_failed")[0], "refused")

	// Drift, heal: an app changed through the runtime's API is put back.
	crm, err = rt.GetApp(t.Context(), "crm")
	require.NoError(t, err)
	changed := crm.Spec
	changed.Settings = map[string]string{"currency": "GBP"}
	start = time.Now()
	_, err = rt.PutApp(t.Context(), "crm", api.PutAppRequest{Spec: changed, Labels: crm.Labels}, api.PutOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		a, err := rt.GetApp(t.Context(), "crm")
		return err == nil && a.Spec.Settings["currency"] == "CHF" && a.Generation > crm.Generation+1
	}, waitLong, 20*time.Millisecond, "the drifted app is healed")
	t.Logf("out-of-band change -> healed in %s", time.Since(start).Round(time.Millisecond))
	w.waitFor("a healed sync", func(st gitops.Status) bool { return len(st.Syncs) > 0 && st.Syncs[0].Result == gitops.ResultHealed })
	require.Eventually(t, func() bool { return len(notes.texts("healed")) == 1 }, waitLong, 50*time.Millisecond)

	// Drift, notify: reported, not changed.
	shop, err := rt.GetApp(t.Context(), "shop")
	require.NoError(t, err)
	changed = shop.Spec
	changed.Settings = map[string]string{"currency": "JPY"}
	_, err = rt.PutApp(t.Context(), "shop", api.PutAppRequest{Spec: changed, Labels: shop.Labels}, api.PutOptions{})
	require.NoError(t, err)
	st = w.waitFor("the drift of shop reported", func(st gitops.Status) bool {
		a := appOf(st, "shop")
		return a != nil && len(a.Drift) > 0
	})
	assert.Contains(t, strings.Join(appOf(st, "shop").Drift, "\n"), `settings.currency: "JPY" -> "EUR"`)
	require.Eventually(t, func() bool { return len(notes.texts("drift")) == 1 }, waitLong, 50*time.Millisecond)
	assert.Contains(t, notes.texts("drift")[0], "app.shop")
	time.Sleep(2 * time.Second)
	shop, err = rt.GetApp(t.Context(), "shop")
	require.NoError(t, err)
	assert.Equal(t, "JPY", shop.Spec.Settings["currency"], "notify reports only")

	// A runtime that dies is brought back.
	var rs struct {
		PID int `json:"pid"`
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "environments", "dev", "runtime.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rs))
	require.NoError(t, syscall.Kill(rs.PID, syscall.SIGKILL))
	start = time.Now()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(stateDir, "environments", "dev", "runtime.json"))
		var now struct {
			PID int `json:"pid"`
		}
		if err != nil || json.Unmarshal(b, &now) != nil || now.PID == rs.PID {
			return false
		}
		st := w.status()
		c := runtimeClient(t, stateDir, st, "dev")
		a, err := c.GetApp(t.Context(), "crm")
		return err == nil && a.Status == "running"
	}, waitLong, 100*time.Millisecond, "the killed runtime is started again")
	t.Logf("killed runtime -> back in %s", time.Since(start).Round(time.Millisecond))

	// SIGTERM stops the daemon cleanly.
	require.NoError(t, w.term(), "watch exits 0 on SIGTERM")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestWatchHealBacksOff: something that keeps undoing a heal does not get a heal per change; the heals
// back off, and the status and the log say so.
func TestWatchHealBacksOff(t *testing.T) {
	t.Parallel()
	repo := newRepo(t)
	c1 := repo.commit("one app", fleetFiles(uniqueFleet(t), "heal", map[string]string{"crm": "  settings: {currency: EUR}\n"}))
	stateDir := t.TempDir()
	w := startWatch(t, stateDir, nil, "--repo", repo.dir, "--path", "fleet", "--interval", "1h")
	st := w.waitFor("the commit applied", appliedIs(c1))
	rt := runtimeClient(t, stateDir, st, "dev")

	// A fighter sets the currency back to GBP every 100 ms for 8 seconds.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		a, err := rt.GetApp(t.Context(), "crm")
		require.NoError(t, err)
		if a.Spec.Settings["currency"] != "GBP" {
			s := a.Spec
			s.Settings = map[string]string{"currency": "GBP"}
			_, err = rt.PutApp(t.Context(), "crm", api.PutAppRequest{Spec: s, Labels: a.Labels}, api.PutOptions{})
			require.NoError(t, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st = w.status()
	crm := appOf(st, "crm")
	require.NotNil(t, crm)
	t.Logf("heals while fought for 8s: %d", crm.Heals)
	assert.GreaterOrEqual(t, crm.Heals, 2, "it was healed more than once")
	assert.LessOrEqual(t, crm.Heals, 7, "heals back off (1s, 2s, 4s, ...) instead of following every change")
	assert.Contains(t, w.log.String(), "drift keeps coming back; heals are backing off")
	page := get(t, w.url("/"))
	assert.Contains(t, page, "healed ")

	// Left alone, the next heal puts it back for good.
	require.Eventually(t, func() bool {
		a, err := rt.GetApp(t.Context(), "crm")
		return err == nil && a.Spec.Settings["currency"] == "EUR"
	}, waitLong, 50*time.Millisecond)
}
