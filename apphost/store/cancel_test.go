package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQueryStopsWhenContextEnds: a row iteration whose context ends stops at the next row, although
// the driver only interrupts a statement's first step.
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
