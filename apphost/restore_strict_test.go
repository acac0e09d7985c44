package apphost_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRestoreTakesOnlyWhatTheRuntimeCouldHaveWritten: snapshots crafted with extra objects, changed
// columns or values the data API would refuse are refused with 400 naming the problem, and the app
// keeps its data; a body over --max-restore-size is refused while it streams.
func TestRestoreTakesOnlyWhatTheRuntimeCouldHaveWritten(t *testing.T) {
	t.Parallel()
	const maxRestore = 4 << 20
	p := startRuntime(t, "", "--max-restore-size", "4194304")
	put(t, p, "crm", appSpec(customers(), orders()))
	create(t, p, "crm", "customers", "", map[string]any{"name": "Ada", "email": "ada@x", "score": 1})
	create(t, p, "crm", "orders", "", map[string]any{"total": 2.5, "paid": true, "placedAt": "2026-01-02T03:04:05Z", "meta": map[string]any{"a": 1}})
	good := snapshotFile(t, p, "crm")
	create(t, p, "crm", "customers", "", map[string]any{"name": "Grace"}) // the app now differs from the snapshot

	cases := []struct {
		name  string
		edits []string
		want  string
	}{
		{"trigger", []string{`CREATE TRIGGER wipe AFTER INSERT ON customers BEGIN DELETE FROM customers; END`}, `trigger "wipe": the runtime makes no such object`},
		{"view", []string{`CREATE VIEW v AS SELECT name FROM customers`}, `view "v": the runtime makes no such object`},
		{"index", []string{`CREATE INDEX by_score ON customers (score)`}, `index "by_score": the runtime makes no such object`},
		{"table", []string{`CREATE TABLE extra (x)`}, `table "extra": the runtime makes no such object`},
		{"extra column", []string{`ALTER TABLE customers ADD COLUMN secret TEXT`}, `collections.customers: column "secret" is not a field of the collection`},
		{"column type", []string{`ALTER TABLE customers DROP COLUMN score`, `ALTER TABLE customers ADD COLUMN score BLOB`},
			`collections.customers.score: the column is declared BLOB, the runtime declares INTEGER`},
		{"missing column", []string{`ALTER TABLE orders DROP COLUMN meta`}, `collections.orders.meta: the column is missing`},
		{"text in an integer", []string{`UPDATE customers SET score = 'abc'`}, `collections.customers.score: 1 records hold a value that is not a whole number`},
		{"enum", []string{`UPDATE customers SET tier = 'gold'`}, `collections.customers.tier: 1 records hold a value that is not one of free, pro`},
		{"required", []string{`UPDATE customers SET name = NULL`}, `collections.customers.name: 1 records hold a value that is not text without NUL (the field is required)`},
		{"boolean", []string{`UPDATE orders SET paid = 7`}, `collections.orders.paid: 1 records hold a value that is not true or false`},
		{"json", []string{`UPDATE orders SET meta = '{broken'`}, `collections.orders.meta: 1 records hold a value that is not JSON`},
		{"datetime", []string{`UPDATE orders SET "placedAt" = 'yesterday'`}, `collections.orders.placedAt: 1 records hold a value that is not a UTC date and time`},
		{"record dates", []string{`UPDATE orders SET "createdAt" = 42`}, `collections.orders.createdAt: 1 records hold a value`},
		{"meta", []string{`INSERT INTO _appfleet_meta VALUES ('x', 'y')`}, `key "x" is not one the runtime writes`},
		{"recorded model", []string{`UPDATE _appfleet_meta SET value = '[{"name":"Bad Name"}]' WHERE key = 'collections'`}, `the data model it records is not valid`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "crafted.db")
			raw, err := os.ReadFile(good)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, raw, 0o600))
			editSnapshot(t, path, tc.edits...)
			err = restoreFile(t, p, "crm", path)
			var ae *api.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, http.StatusBadRequest, ae.Status)
			assert.Contains(t, ae.Message, "not one this runtime could have written", ae.Error())
			assert.Contains(t, strings.Join(ae.Details, "\n"), tc.want)
			assert.Equal(t, 2, listOf(t, p, "/apps/crm/api/customers", "").Total, "the app keeps its data")
		})
	}

	// Over the bound: refused with 413 while streaming, whatever the body claims to be.
	big := append([]byte("SQLite format 3\x00"), make([]byte, maxRestore+1)...)
	code, body := p.do(http.MethodPut, "/v1/apps/crm/restore", p.token, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code, string(body))
	assert.Contains(t, string(body), "--max-restore-size")
	entries, err := os.ReadDir(filepath.Join(p.dataDir, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing of the refused body is left behind")

	// The untouched snapshot restores.
	raw, err := os.ReadFile(good)
	require.NoError(t, err)
	require.NoError(t, p.client.Restore(t.Context(), "crm", bytes.NewReader(raw)))
	assert.Equal(t, 1, listOf(t, p, "/apps/crm/api/customers", "").Total)
	l := listOf(t, p, "/apps/crm/api/orders", "")
	require.Equal(t, 1, l.Total)
	assert.Equal(t, map[string]any{"a": float64(1)}, l.Items[0]["meta"])
	create(t, p, "crm", "customers", "", map[string]any{"name": "After", "email": "after@x"})
	code, body = p.do(http.MethodPost, "/apps/crm/api/customers", "", map[string]any{"name": "Dup", "email": "ada@x"})
	assert.Equal(t, http.StatusConflict, code, "the restored database has the unique index: %s", body)
}
