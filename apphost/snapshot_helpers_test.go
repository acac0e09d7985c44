package apphost_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver of database/sql, to craft snapshots
)

// snapshotFile backs an app up into a file of the test's own and returns its path.
func snapshotFile(t *testing.T, p *runtimeProc, app string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), app+".db")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, p.client.Backup(t.Context(), app, f))
	require.NoError(t, f.Close())
	return path
}

// editSnapshot runs statements on a snapshot file, as someone crafting one by hand would.
func editSnapshot(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, s := range stmts {
		_, err := db.Exec(s)
		require.NoError(t, err, s)
	}
}

// restoreFile restores an app from a snapshot file.
func restoreFile(t *testing.T, p *runtimeProc, app, path string) error {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	return p.client.Restore(t.Context(), app, f)
}

// nowSQL is the current time as the runtime stores datetimes in SQLite.
const nowSQL = `strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now')`
