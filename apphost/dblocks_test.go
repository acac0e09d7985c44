package apphost_test

import (
	"bytes"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An open app's SQLite file is the runtime's alone: its connection holds the file's locks, so another
// program cannot read or write it (a backup is the way to a copy), the runtime's own backup shares
// it for as long as it reads, and the file is free again once the app hibernates.
func TestAppDatabaseIsTheRuntimesAlone(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--idle-timeout", "300ms")
	ctx := t.Context()
	put(t, p, "crm", appSpec(customers()))
	create(t, p, "crm", "customers", "", map[string]any{"name": "a"})

	outside, err := sql.Open("sqlite", filepath.Join(p.dataDir, "apps", "crm", "app.db"))
	require.NoError(t, err)
	defer outside.Close()
	outside.SetMaxIdleConns(0)
	count := func() (n int, err error) {
		err = outside.QueryRowContext(ctx, `SELECT count(*) FROM customers`).Scan(&n)
		return n, err
	}
	_, err = count()
	require.Error(t, err, "the runtime holds the file")
	assert.Contains(t, err.Error(), "database is locked")

	var snap bytes.Buffer
	require.NoError(t, p.client.Backup(ctx, "crm", &snap))
	assert.True(t, bytes.HasPrefix(snap.Bytes(), []byte("SQLite format 3\x00")))
	create(t, p, "crm", "customers", "", map[string]any{"name": "b"})
	_, err = count()
	require.Error(t, err, "held again after the backup")

	waitHibernating(t, p, "crm")
	n, err := count()
	require.NoError(t, err, "a hibernating app's file is free")
	assert.Equal(t, 2, n)

	// A program that keeps the file open when the app wakes keeps the runtime from holding its
	// locks: the app serves on, taking them statement by statement, and the log says why.
	held, err := outside.Conn(ctx)
	require.NoError(t, err)
	defer held.Close()
	require.NoError(t, held.QueryRowContext(ctx, `SELECT count(*) FROM customers`).Scan(&n))
	create(t, p, "crm", "customers", "", map[string]any{"name": "c"})
	assert.Equal(t, 3, listOf(t, p, "/apps/crm/api/customers", "").Total)
	assert.Contains(t, p.logText(), "another connection has the database open")
	require.NoError(t, held.QueryRowContext(ctx, `SELECT count(*) FROM customers`).Scan(&n))
	assert.Equal(t, 3, n)
	code, _ := p.do(http.MethodGet, "/apps/crm/api/customers/1", "", nil)
	assert.Equal(t, http.StatusOK, code)
}

// waitHibernating waits until the app has closed its database for being idle, and is still running.
func waitHibernating(t *testing.T, p *runtimeProc, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		a, err := p.client.GetApp(t.Context(), name)
		return err == nil && a.Stats.Hibernating && a.Status == api.StatusRunning
	}, 5*time.Second, 20*time.Millisecond)
}
