package apphost_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigRows is how many records the long-query tests hold: sorting them by a text field takes the runtime
// a good fraction of a second even on a fast machine.
const bigRows = 1_200_000

// bigApp creates an app whose collection "items" holds bigRows records, written into its database
// file while the runtime is stopped (faster than any API on a busy machine).
func bigApp(t *testing.T, p *runtimeProc, name string) {
	t.Helper()
	put(t, p, name, appSpec(spec.Collection{Name: "items", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeString}, {Name: "score", Type: spec.TypeInteger},
	}}))
	create(t, p, name, "items", "", map[string]any{"name": "first", "score": 0}) // the database exists
	require.NoError(t, p.term())
	editSnapshot(t, filepath.Join(p.dataDir, "apps", name, "app.db"), fmt.Sprintf(`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %d)
		INSERT INTO items ("createdAt", "updatedAt", name, score) SELECT %s, %s, hex(randomblob(16)), x %% 1000 FROM n`, bigRows-1, nowSQL, nowSQL))
	p.start()
}

// longList is a list whose query sorts every record of bigApp. timedList is the same work with
// another page: it is run first to time the query, so that longList is not answered from what the
// runtime keeps of an earlier read.
const (
	longList  = "/apps/big/api/items?sort=-name,score&limit=5"
	timedList = "/apps/big/api/items?sort=-name,score&limit=5&offset=1"
)

// TestClientThatGoesAwayFreesItsApp: a list whose client disconnects stops at once, so the app's
// database is free for the next request long before the abandoned query would have finished. (The
// SQLite driver interrupts a statement's first step, where a sort does its work; the steps after it
// are checked by store's Query, see TestQueryStopsWhenContextEnds.)
func TestClientThatGoesAwayFreesItsApp(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	bigApp(t, p, "big")

	start := time.Now()
	listOf(t, p, timedList, "")
	full := time.Since(start)
	t.Logf("the long list takes %s", full)

	ctx, cancel := context.WithTimeout(t.Context(), full/8)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+longList, nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err, "the client gave up")

	start = time.Now()
	code, body := p.do(http.MethodGet, "/apps/big/api/items/1", "", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	waited := time.Since(start)
	assert.Less(t, waited, full/2, "the next request did not wait for the abandoned query (took %s, the query %s)", waited, full)
}

// TestShutdownCancelsRequestsBeforeClosingDatabases: SIGTERM during a long list cancels it, waits for
// its handler and only then closes the databases; apps that are merely open are closed without a word
// about being busy, and the data is whole after a restart.
func TestShutdownCancelsRequestsBeforeClosingDatabases(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--shutdown-timeout", "2m")
	bigApp(t, p, "big")
	for i := range 3 {
		name := fmt.Sprintf("idle-%d", i)
		put(t, p, name, appSpec(customers()))
		create(t, p, name, "customers", "", map[string]any{"name": "open"}) // its database is now open
	}
	start := time.Now()
	listOf(t, p, timedList, "")
	full := time.Since(start)
	t.Logf("the long list takes %s", full)

	answered := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + p.addr + longList)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	require.Eventually(t, func() bool {
		a, err := p.client.GetApp(t.Context(), "big")
		return err == nil && a.Stats.InFlight == 1
	}, 10*time.Second, 5*time.Millisecond)

	start = time.Now()
	require.NoError(t, p.term(), "SIGTERM ends the runtime with status 0\n%s", p.logText())
	took := time.Since(start)
	assert.Less(t, took, full/2, "shutdown cancelled the query rather than waiting it out (took %s, the query %s)", took, full)
	assert.Contains(t, []int{0, http.StatusServiceUnavailable}, <-answered, "the cancelled list was not answered as if complete")
	log := p.logText()
	assert.Contains(t, log, `"msg":"databases closed","leftOpen":0`)
	assert.NotContains(t, log, "still in use")
	assert.False(t, strings.Contains(log, "closing it anyway"), log)

	p.start()
	assert.Equal(t, bigRows, listOf(t, p, "/apps/big/api/items?limit=1", "").Total)
	for i := range 3 {
		assert.Equal(t, 1, listOf(t, p, fmt.Sprintf("/apps/idle-%d/api/customers", i), "").Total)
	}
}
