package apphost_test

import (
	"bytes"
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

func TestBulkheadAndSlowDatabase(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	limited := appSpec(customers())
	limited.Limits.MaxInFlight = 2
	put(t, p, "flooded", limited)
	put(t, p, "calm", appSpec(customers()))
	create(t, p, "calm", "customers", "", map[string]any{"name": "x"})

	// Two requests hold the flooded app's database, as a slow database would.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() { codes[i], _ = p.do(http.MethodGet, "/apps/flooded/api/_test/hold?ms=1500", "", nil) })
	}
	require.Eventually(t, func() bool {
		a, err := p.client.GetApp(t.Context(), "flooded")
		return err == nil && a.Stats.InFlight == 2
	}, 5*time.Second, 10*time.Millisecond)

	start := time.Now()
	code, body := p.do(http.MethodGet, "/apps/flooded/api/customers", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, string(body))
	assert.Equal(t, api.CodeLimitExceeded, errorCode(t, body).Code)
	assert.Less(t, time.Since(start), 500*time.Millisecond, "beyond the limit the answer is immediate")

	// The other app is not held up by the flooded one's slow database.
	start = time.Now()
	assert.Equal(t, 1, listOf(t, p, "/apps/calm/api/customers", "").Total)
	assert.Less(t, time.Since(start), 500*time.Millisecond)

	wg.Wait()
	assert.Equal(t, []int{http.StatusOK, http.StatusOK}, codes)
	a, err := p.client.GetApp(t.Context(), "flooded")
	require.NoError(t, err)
	assert.EqualValues(t, 1, a.Stats.Rejected)
	code, _ = p.do(http.MethodGet, "/apps/flooded/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code, "below the limit again, requests pass")
}

func TestPanicIsContained(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "fragile", appSpec(customers()))
	put(t, p, "sturdy", appSpec(customers()))
	code, body := p.do(http.MethodGet, "/apps/fragile/api/_test/panic", "", nil)
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Equal(t, api.CodeInternal, errorCode(t, body).Code)

	code, _ = p.do(http.MethodGet, "/apps/fragile/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code, "the app keeps serving after a panic")
	code, _ = p.do(http.MethodGet, "/apps/sturdy/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code)

	fragile, err := p.client.GetApp(t.Context(), "fragile")
	require.NoError(t, err)
	assert.EqualValues(t, 1, fragile.Stats.Panics)
	assert.EqualValues(t, 1, fragile.Stats.Errors)
	assert.Equal(t, api.StatusRunning, fragile.Status)
	sturdy, err := p.client.GetApp(t.Context(), "sturdy")
	require.NoError(t, err)
	assert.EqualValues(t, 0, sturdy.Stats.Panics)

	var metrics bytes.Buffer
	require.NoError(t, getMetrics(t, p, &metrics))
	assert.Contains(t, metrics.String(), `appfleet_app_panics_total{app="fragile"} 1`)
	assert.Contains(t, metrics.String(), `appfleet_app_panics_total{app="sturdy"} 0`)
	assert.Contains(t, metrics.String(), `appfleet_app_status{app="fragile",status="running"} 1`)
	assert.Contains(t, metrics.String(), `appfleet_app_request_duration_seconds_bucket{app="sturdy"`)
	assert.Contains(t, metrics.String(), "go_memstats_heap_alloc_bytes")
	assert.Contains(t, p.logText(), `"app":"fragile"`)
	assert.Contains(t, p.logText(), "panic in request")
}

func getMetrics(t *testing.T, p *runtimeProc, w *bytes.Buffer) error {
	code, body := p.do(http.MethodGet, "/metrics", p.token, nil)
	require.Equal(t, http.StatusOK, code)
	w.Write(body)
	code, _ = p.do(http.MethodGet, "/metrics", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	return nil
}

func TestHibernation(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--idle-timeout", "300ms")
	put(t, p, "sleepy", appSpec(customers()))
	a, err := p.client.GetApp(t.Context(), "sleepy")
	require.NoError(t, err)
	assert.True(t, a.Stats.Hibernating, "a new app does not open its database before its first request")

	create(t, p, "sleepy", "customers", "", map[string]any{"name": "x"})
	a, err = p.client.GetApp(t.Context(), "sleepy")
	require.NoError(t, err)
	assert.False(t, a.Stats.Hibernating)
	waitHibernating(t, p, "sleepy") // an idle app releases its database and stays running

	start := time.Now()
	assert.Equal(t, 1, listOf(t, p, "/apps/sleepy/api/customers", "").Total, "the next request wakes it, unseen")
	t.Logf("first request after hibernation took %s (with HTTP)", time.Since(start))
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "busy", appSpec(customers()))
	done := make(chan int, 1)
	go func() {
		code, _ := p.do(http.MethodGet, "/apps/busy/api/_test/hold?ms=700", "", nil)
		done <- code
	}()
	require.Eventually(t, func() bool {
		a, err := p.client.GetApp(t.Context(), "busy")
		return err == nil && a.Stats.InFlight == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, p.term(), "SIGTERM ends the runtime with status 0")
	assert.Equal(t, http.StatusOK, <-done, "the request in flight finished")
	assert.Contains(t, p.logText(), `"msg":"databases closed","leftOpen":0`)
	_, err := os.Stat(filepath.Join(p.dataDir, "apps", "busy", "app.db-wal"))
	assert.True(t, os.IsNotExist(err), "databases were closed cleanly (write-ahead log checkpointed away)")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	for _, path := range []string{"/healthz", "/readyz"} {
		code, body := p.do(http.MethodGet, path, "", nil)
		assert.Equal(t, http.StatusOK, code, path)
		assert.True(t, strings.Contains(string(body), "ok") || strings.Contains(string(body), "ready"))
	}
	code, body := p.do(http.MethodGet, "/v1/nothing", p.token, nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, api.CodeNotFound, errorCode(t, body).Code)
}

func TestLifecycleOfOneAppNeverBlocksAnother(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "slow", appSpec(customers()))
	put(t, p, "quick", appSpec(customers()))
	held := make(chan int, 1)
	go func() {
		code, _ := p.do(http.MethodGet, "/apps/slow/api/_test/hold?ms=2000", "", nil)
		held <- code
	}()
	require.Eventually(t, func() bool {
		a, err := p.client.GetApp(t.Context(), "slow")
		return err == nil && a.Stats.InFlight == 1
	}, 5*time.Second, 10*time.Millisecond)

	// Stopping the slow app waits for its request; meanwhile everything else goes on.
	stopped := make(chan error, 1)
	go func() {
		_, err := p.client.StopApp(t.Context(), "slow")
		stopped <- err
	}()
	require.Eventually(t, func() bool {
		a, err := p.client.GetApp(t.Context(), "slow")
		return err == nil && a.Status == api.StatusStopping
	}, 5*time.Second, 10*time.Millisecond)
	code, _ := p.do(http.MethodGet, "/apps/slow/api/customers", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, "a stopping app takes no new requests")

	start := time.Now()
	_, err := p.client.StopApp(t.Context(), "quick")
	require.NoError(t, err)
	_, err = p.client.StartApp(t.Context(), "quick")
	require.NoError(t, err)
	s := appSpec(customers(), orders())
	put(t, p, "quick", s)
	put(t, p, "another", s)
	create(t, p, "quick", "orders", "", map[string]any{"total": 1})
	_, err = p.client.ListApps(t.Context())
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "other apps' lifecycle is not held up")

	assert.Equal(t, http.StatusOK, <-held)
	require.NoError(t, <-stopped)
	a, err := p.client.GetApp(t.Context(), "slow")
	require.NoError(t, err)
	assert.Equal(t, api.StatusStopped, a.Status)
}

func TestWakeFailureHealsWhenTheDatabaseReturns(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--idle-timeout", "200ms")
	put(t, p, "fickle", appSpec(customers()))
	put(t, p, "steady", appSpec(customers()))
	create(t, p, "fickle", "customers", "", map[string]any{"name": "x"})
	waitHibernating(t, p, "fickle")
	db := filepath.Join(p.dataDir, "apps", "fickle", "app.db")
	require.NoError(t, os.Rename(db, db+".away"))

	code, body := p.do(http.MethodGet, "/apps/fickle/api/customers", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, string(body))
	a, err := p.client.GetApp(t.Context(), "fickle")
	require.NoError(t, err)
	assert.Equal(t, api.StatusError, a.Status)
	assert.Contains(t, a.Error, "open database")
	code, _ = p.do(http.MethodGet, "/apps/steady/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code)

	require.NoError(t, os.Rename(db+".away", db))
	assert.Equal(t, 1, listOf(t, p, "/apps/fickle/api/customers", "").Total)
	a, err = p.client.GetApp(t.Context(), "fickle")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, a.Status)
	assert.Empty(t, a.Error)
}
