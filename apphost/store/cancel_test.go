package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQueryStopsWhenContextEnds: a row iteration whose context ends stops at the next row.
func TestQueryStopsWhenContextEnds(t *testing.T) {
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "a.db"), OpenOrCreate)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Exec(t.Context(), `CREATE TABLE t AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) SELECT x FROM n`)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rows := 0
	err = c.Query(ctx, "SELECT x FROM t", nil, func([]any) error {
		rows++
		if rows == 10 {
			cancel() // the client went away
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 10, rows, "no row is read after the context ended")

	// The connection is fine afterwards.
	n := 0
	require.NoError(t, c.Query(t.Context(), "SELECT count(*) FROM t", nil, func(r []any) error { n = int(asInt(r[0])); return nil }))
	assert.Equal(t, 100000, n)
}

// A statement that runs long before its first row (a sort of every record) is interrupted when its
// context ends, and the connection works on.
func TestLongStatementIsInterrupted(t *testing.T) {
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "a.db"), OpenOrCreate)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Query(ctx, `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000000)
		SELECT x FROM n ORDER BY -x LIMIT 1`, nil, func([]any) error { return nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second, "interrupted, not run to its end")
	n := 0
	require.NoError(t, c.Query(t.Context(), "SELECT 41 + 1", nil, func(r []any) error { n = int(asInt(r[0])); return nil }))
	assert.Equal(t, 42, n)
}

// Values go into SQLite and come back as the store expects them: an empty string is text and an empty
// blob a blob, not NULL; booleans are integers.
func TestValuesRoundTrip(t *testing.T) {
	ctx := t.Context()
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "a.db"), OpenOrCreate)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Exec(ctx, `CREATE TABLE v (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT); CREATE TABLE w (x)`)
	require.NoError(t, err, "a script of two statements")
	for _, args := range [][]any{
		{int64(-7), 2.5, "héllo \"x\"", []byte{0, 1, 2}, nil},
		{true, float64(0), "", []byte{}, nil},
		{42, 1e300, "a\x00b", []byte("z"), nil},
	} {
		_, err = c.Exec(ctx, `INSERT INTO v VALUES (?, ?, ?, ?, ?)`, args...)
		require.NoError(t, err)
	}
	var got [][]any
	require.NoError(t, c.Query(ctx, `SELECT i, r, s, b, n, typeof(s), typeof(b) FROM v ORDER BY rowid`, nil, func(r []any) error {
		got = append(got, append([]any(nil), r...))
		return nil
	}))
	assert.Equal(t, [][]any{
		{int64(-7), 2.5, "héllo \"x\"", []byte{0, 1, 2}, nil, "text", "blob"},
		{int64(1), float64(0), "", []byte{}, nil, "text", "blob"},
		{int64(42), 1e300, "a\x00b", []byte("z"), nil, "text", "blob"},
	}, got)

	_, err = c.Exec(ctx, `INSERT INTO v (i) VALUES (?)`)
	require.ErrorContains(t, err, "takes 1 parameters, 0 given")
	_, err = c.Exec(ctx, `INSERT INTO v (i) VALUES (?)`, struct{}{})
	require.ErrorContains(t, err, "cannot store a struct {} in SQLite")
	_, err = c.Exec(ctx, `INSERT INTO nowhere VALUES (1)`)
	require.ErrorContains(t, err, "no such table: nowhere")
	code, ok := sqliteCode(err)
	assert.True(t, ok)
	assert.Equal(t, 1, code) // SQLITE_ERROR
}

// A database that cannot be opened is an error naming why, not a crash, and nothing is created.
func TestOpenFailures(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenSQLite(filepath.Join(dir, "no", "such", "dir", "a.db"), OpenOrCreate)
	require.ErrorContains(t, err, "unable to open database file")
	_, err = OpenSQLite(filepath.Join(dir, "missing.db"), OpenExisting)
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(dir, "missing.db"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.db"), []byte("not a database, not at all, but long enough to look"), 0o600))
	_, err = OpenSQLite(filepath.Join(dir, "junk.db"), OpenExisting)
	require.ErrorContains(t, err, "file is not a database")
}
