package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateCollections(t *testing.T) {
	probs := ValidateCollections([]spec.Collection{
		{Name: "ok", Fields: []spec.Field{
			{Name: "a", Type: spec.TypeString},
			{Name: "A", Type: spec.TypeString},
			{Name: "createdAt", Type: spec.TypeString},
			{Name: "n", Type: spec.TypeInteger, Default: "x"},
			{Name: "e", Type: spec.TypeEnum, Values: []string{"x", "x"}},
			{Name: "j", Type: spec.TypeJSON, Unique: true},
			{Name: "s", Type: spec.TypeString, Values: []string{"v"}},
		}},
		{Name: "ok"},
		{Name: "_hidden"},
		{Name: "sqlite_master"},
	})
	want := []string{
		`collections.ok.fields[1].name: field "A" is declared twice`,
		`collections.ok.fields[2].name: "createdAt" is reserved`,
		`collections.ok.n.default: want a whole number`,
		`collections.ok.e.values: "x" is listed twice`,
		`collections.ok.j.unique: a json field cannot be unique`,
		`collections.ok.s.values: only enum fields have values`,
		`collections[1].name: collection "ok" is declared twice`,
		`collections[2].name: "_hidden" must start with a lowercase letter`,
		`collections[3].name: "sqlite_master" is reserved`,
	}
	require.Len(t, probs, len(want), strings.Join(probs, "\n"))
	for i, w := range want {
		assert.True(t, strings.HasPrefix(probs[i], w), "got %q, want prefix %q", probs[i], w)
	}
	assert.Empty(t, ValidateCollections([]spec.Collection{{Name: "customers", Fields: []spec.Field{{Name: "tier", Type: spec.TypeEnum, Values: []string{"a"}, Default: "a"}}}}))
}

func TestPlanMigration(t *testing.T) {
	from := []spec.Collection{
		{Name: "keep", Fields: []spec.Field{
			{Name: "a", Type: spec.TypeString, Required: true},
			{Name: "b", Type: spec.TypeInteger},
			{Name: "c", Type: spec.TypeString},
			{Name: "d", Type: spec.TypeJSON},
			{Name: "e", Type: spec.TypeEnum, Values: []string{"x", "y"}},
		}},
		{Name: "gone"},
	}
	to := []spec.Collection{
		{Name: "keep", Fields: []spec.Field{
			{Name: "a", Type: spec.TypeText, Unique: true},
			{Name: "b", Type: spec.TypeNumber, Required: true},
			{Name: "d", Type: spec.TypeInteger},
			{Name: "e", Type: spec.TypeEnum, Values: []string{"x"}},
			{Name: "f", Type: spec.TypeBoolean},
		}},
		{Name: "fresh"},
	}
	var got []string
	for _, ch := range PlanMigration(SQLite, from, to) {
		loss := ""
		if ch.DataLoss {
			loss = " [data loss]"
		}
		got = append(got, ch.String()+loss)
	}
	assert.Equal(t, []string{
		"collections.keep.a: change type string -> text (values converted)",
		"collections.keep.b: change type integer -> number (values converted)",
		"collections.keep.d: change type json -> integer (stored values are lost) [data loss]",
		"collections.keep.e: narrow enum values to x",
		"collections.keep.f: add field (boolean)",
		"collections.keep.c: drop field (its values are lost) [data loss]",
		"collections.fresh: create collection (0 fields)",
		"collections.gone: drop collection (its records are lost) [data loss]",
	}, got)
	assert.Empty(t, PlanMigration(SQLite, to, to))
}

func TestMigrateAndRecords(t *testing.T) {
	ctx := t.Context()
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "app.db"), CreateNew)
	require.NoError(t, err)
	defer c.Close()
	v1 := []spec.Collection{{Name: "t", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeString, Required: true},
		{Name: "flag", Type: spec.TypeBoolean},
		{Name: "tier", Type: spec.TypeEnum, Values: []string{"a", "b"}},
	}}}
	_, err = Migrate(ctx, c, v1, false)
	require.NoError(t, err)
	coll := Compile(SQLite, v1)["t"]
	for _, n := range []string{"x", "y", "y"} {
		_, err := coll.Create(ctx, c, map[string]any{"name": n, "flag": true, "tier": "b"})
		require.NoError(t, err)
	}

	// A failing migration (unique over duplicates) leaves everything as it was.
	v2 := []spec.Collection{{Name: "t", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeString, Required: true, Unique: true},
		{Name: "flag", Type: spec.TypeBoolean},
		{Name: "tier", Type: spec.TypeEnum, Values: []string{"a", "b"}},
		{Name: "extra", Type: spec.TypeInteger, Default: 3},
	}}}
	_, err = Migrate(ctx, c, v2, false)
	require.ErrorIs(t, err, ErrMigration)
	recorded, ok, err := RecordedCollections(ctx, c)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, v1, recorded)
	_, total, err := coll.List(ctx, c, ListQuery{Limit: 10})
	require.NoError(t, err)
	assert.EqualValues(t, 3, total)

	// Data loss is refused before anything happens.
	_, err = Migrate(ctx, c, []spec.Collection{{Name: "t", Fields: v1[0].Fields[:1]}}, false)
	var dl *DataLossError
	require.ErrorAs(t, err, &dl)
	assert.Equal(t, []string{"collections.t.flag: drop field (its values are lost)", "collections.t.tier: drop field (its values are lost)"}, dl.Details())

	// boolean -> string converts values; narrowing an enum checks them.
	v3 := []spec.Collection{{Name: "t", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeString, Required: true},
		{Name: "flag", Type: spec.TypeString},
		{Name: "tier", Type: spec.TypeEnum, Values: []string{"b"}},
	}}}
	_, err = Migrate(ctx, c, v3, false)
	require.NoError(t, err)
	items, _, err := Compile(SQLite, v3)["t"].List(ctx, c, ListQuery{Limit: 1})
	require.NoError(t, err)
	flag, _ := items[0].Get("flag")
	assert.Equal(t, "true", flag)
	_, err = Migrate(ctx, c, []spec.Collection{{Name: "t", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeString, Required: true},
		{Name: "flag", Type: spec.TypeString},
		{Name: "tier", Type: spec.TypeEnum, Values: []string{"a"}},
	}}}, false)
	require.ErrorIs(t, err, ErrMigration)
	assert.Contains(t, err.Error(), "not one of a")

	_, err = Compile(SQLite, v3)["t"].Get(ctx, c, 99)
	assert.True(t, errors.Is(err, ErrNotFound))
}

func TestParseList(t *testing.T) {
	coll := Compile(SQLite, []spec.Collection{{Name: "t", Fields: []spec.Field{
		{Name: "n", Type: spec.TypeInteger}, {Name: "b", Type: spec.TypeBoolean}, {Name: "j", Type: spec.TypeJSON},
	}}})["t"]
	q, err := coll.ParseList([]Param{{"n", "3"}, {"limit", "5"}, {"offset", "2"}, {"sort", "-n,id"}, {"b", "true"}})
	require.NoError(t, err)
	assert.Equal(t, ListQuery{Limit: 5, Offset: 2, Sort: []SortKey{{"n", true}, {"id", false}},
		Filters: []Filter{{"b", true}, {"n", int64(3)}}}, q)
	_, err = coll.ParseList([]Param{{"zz", "1"}, {"j", "{}"}, {"n", "1.5"}, {"limit", "5000"}, {"n", "2"}})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{
		"j: json fields cannot be filtered",
		"limit: want a whole number from 0 to 1000, got \"5000\"",
		"n: want a whole number, got the number 1.5",
		"n: give it once",
		"zz: unknown field (list takes limit, offset, sort and field=value filters)",
	}, ve.Details())
}

func TestUniqueIndexName(t *testing.T) {
	assert.Equal(t, "_af_uq_customers_email", uniqueIndexName("customers", "email"))
	assert.Equal(t, "uq_customers_email", legacyUniqueIndexName("customers", "email"))
	assert.NotEqual(t, uniqueIndexName("a_b", "c"), uniqueIndexName("a", "b_c"))
	long := uniqueIndexName(strings.Repeat("c", 40), strings.Repeat("f", 40))
	assert.LessOrEqual(t, len(long), 63)
}

func TestSQLiteKeepsStatements(t *testing.T) {
	ctx := t.Context()
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "s.db"), OpenOrCreate)
	require.NoError(t, err)
	defer c.Close()
	sc := c.(*sqliteConn)
	_, err = c.Exec(ctx, "CREATE TABLE t (a INTEGER)")
	require.NoError(t, err)
	_, err = c.Exec(ctx, "INSERT INTO t (a) VALUES (?)", 1)
	require.NoError(t, err)
	read := func() (vals []any, err error) {
		err = c.Query(ctx, "SELECT * FROM t", nil, func(row []any) error {
			vals = append(vals, row...)
			return nil
		})
		return vals, err
	}
	vals, err := read()
	require.NoError(t, err)
	assert.Equal(t, []any{int64(1)}, vals)
	assert.Contains(t, sc.stmts, "SELECT * FROM t")

	// A schema change drops every kept statement: the same text then reads the new table.
	_, err = c.Exec(ctx, "DROP TABLE t")
	require.NoError(t, err)
	assert.Empty(t, sc.stmts)
	_, err = c.Exec(ctx, "CREATE TABLE t (a TEXT, b TEXT)")
	require.NoError(t, err)
	_, err = c.Exec(ctx, "INSERT INTO t (a, b) VALUES (?, ?)", "x", "y")
	require.NoError(t, err)
	vals, err = read()
	require.NoError(t, err)
	assert.Equal(t, []any{"x", "y"}, vals)

	// The cache stays bounded.
	for i := range 3 * maxStmts {
		require.NoError(t, c.Query(ctx, "SELECT "+strconv.Itoa(i), nil, func([]any) error { return nil }))
	}
	assert.LessOrEqual(t, len(sc.stmts), maxStmts)
}

func TestReadTxEndsItsTransaction(t *testing.T) {
	ctx := t.Context()
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "r.db"), OpenOrCreate)
	require.NoError(t, err)
	defer c.Close()
	boom := errors.New("boom")
	require.ErrorIs(t, ReadTx(ctx, c, func() error { return boom }), boom)
	require.NoError(t, ReadTx(ctx, c, func() error {
		return c.Query(ctx, "SELECT 1", nil, func([]any) error { return nil })
	}))
	// Neither left a transaction open: a write transaction can begin.
	require.NoError(t, InTx(ctx, c, func() error {
		_, err := c.Exec(ctx, "CREATE TABLE t (a INTEGER)")
		return err
	}))
}

// namesDB opens a new SQLite database at path with one collection t of one string field, name.
func namesDB(t *testing.T) (path string, c Conn, cols []spec.Collection, coll *Collection) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "app.db")
	c, err := OpenSQLite(path, CreateNew)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	cols = []spec.Collection{{Name: "t", Fields: []spec.Field{{Name: "name", Type: spec.TypeString}}}}
	_, err = Migrate(t.Context(), c, cols, false)
	require.NoError(t, err)
	return path, c, cols, Compile(SQLite, cols)["t"]
}

// The count of a whole collection is remembered by the runtime's SQLite connection and stays exact:
// every statement that may write through the connection (Exec, a query that is not a SELECT, such as
// an insert returning its row) forgets it. A row added behind the connection's back, which the
// runtime never does, shows that the remembered count is what a list reports.
func TestListTotalIsRememberedUntilAWrite(t *testing.T) {
	ctx := t.Context()
	path, c, _, coll := namesDB(t)
	total := func(lq ListQuery) int64 {
		t.Helper()
		lq.Limit = 10
		_, n, err := coll.List(ctx, c, lq)
		require.NoError(t, err)
		return n
	}
	var ids []int64
	for _, n := range []string{"a", "b", "c"} {
		r, err := coll.Create(ctx, c, map[string]any{"name": n})
		require.NoError(t, err)
		id, _ := r.Get("id")
		ids = append(ids, id.(int64))
	}
	assert.EqualValues(t, 3, total(ListQuery{}))

	other, err := OpenSQLite(path, OpenExisting)
	require.NoError(t, err)
	_, err = other.Exec(ctx, `INSERT INTO "t" ("name", "createdAt", "updatedAt") VALUES ('behind', '', '')`)
	require.NoError(t, err)
	require.NoError(t, other.Close())
	assert.EqualValues(t, 3, total(ListQuery{}), "remembered")
	assert.EqualValues(t, 1, total(ListQuery{Filters: []Filter{{Field: "name", Value: "behind"}}}), "a filtered count is never remembered")

	require.NoError(t, coll.Delete(ctx, c, ids[0]))
	assert.EqualValues(t, 3, total(ListQuery{}), "counted again after a delete: b, c and the row added behind")
	_, err = coll.Create(ctx, c, map[string]any{"name": "d"})
	require.NoError(t, err)
	assert.EqualValues(t, 4, total(ListQuery{}), "after an insert")
	_, err = c.Exec(ctx, `DELETE FROM "t"`)
	require.NoError(t, err)
	assert.EqualValues(t, 0, total(ListQuery{}), "after any statement that may write")
}

// A connection that holds its locks keeps every other connection out of its file, of this process
// or another, and takes them no more once it lets go; it reads and writes either way. It cannot take
// them while another connection has the file open, and then says so and works on without.
func TestHoldLocksKeepsOtherConnectionsOut(t *testing.T) {
	ctx := t.Context()
	path, c, _, coll := namesDB(t)
	other, err := sql.Open("sqlite", path) // no busy timeout: a locked file fails at once
	require.NoError(t, err)
	defer other.Close()
	other.SetMaxIdleConns(0) // an idle connection in WAL mode keeps the file open with a lock
	count := func() (n int, err error) {
		err = other.QueryRowContext(ctx, `SELECT count(*) FROM "t"`).Scan(&n)
		return n, err
	}
	insert := func() error {
		_, err := other.ExecContext(ctx, `INSERT INTO "t" ("name", "createdAt", "updatedAt") VALUES ('other', '', '')`)
		return err
	}
	named := func(name string) int64 {
		t.Helper()
		_, n, err := coll.List(ctx, c, ListQuery{Limit: 1, Filters: []Filter{{Field: "name", Value: name}}})
		require.NoError(t, err)
		return n
	}
	_, err = coll.Create(ctx, c, map[string]any{"name": "a"})
	require.NoError(t, err)
	n, err := count()
	require.NoError(t, err, "a connection opened by OpenSQLite takes its locks statement by statement")
	assert.Equal(t, 1, n)

	require.NoError(t, HoldLocks(ctx, c, true))
	_, err = count()
	require.Error(t, err, "the file is locked while c holds its locks")
	assert.Contains(t, err.Error(), "SQLITE_BUSY")
	require.Error(t, insert())
	_, err = coll.Create(ctx, c, map[string]any{"name": "b"})
	require.NoError(t, err)
	assert.EqualValues(t, 1, named("b"))

	require.NoError(t, HoldLocks(ctx, c, false))
	n, err = count()
	require.NoError(t, err, "let go")
	assert.Equal(t, 2, n)
	require.NoError(t, insert())
	assert.EqualValues(t, 1, named("other"), "c reads what another connection wrote")

	// A connection that stays open, as another program's would, keeps c from taking the locks.
	held, err := other.Conn(ctx)
	require.NoError(t, err)
	require.NoError(t, held.QueryRowContext(ctx, `SELECT count(*) FROM "t"`).Scan(&n))
	err = HoldLocks(ctx, c, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another connection has the database open")
	_, err = coll.Create(ctx, c, map[string]any{"name": "c"})
	require.NoError(t, err, "c works on without holding the locks")
	require.NoError(t, held.QueryRowContext(ctx, `SELECT count(*) FROM "t"`).Scan(&n))
	assert.Equal(t, 4, n)
	require.NoError(t, held.Close())

	require.NoError(t, HoldLocks(ctx, c, true), "once the other connection is gone")
	_, err = count()
	require.Error(t, err, "held again")
	assert.EqualValues(t, 1, named("a"))
}

// Apps with the same collections share one compiled model while one of them holds it; different
// collections or dialects get their own.
func TestCompileSharedSharesIdenticalModels(t *testing.T) {
	cols := func(field string) []spec.Collection {
		return []spec.Collection{{Name: "t", Fields: []spec.Field{{Name: field, Type: spec.TypeString}}}}
	}
	a := CompileShared(SQLite, cols("name"))
	b := CompileShared(SQLite, cols("name"))
	assert.Same(t, a, b)
	assert.NotSame(t, a, CompileShared(SQLite, cols("email")))
	assert.NotSame(t, a, CompileShared(Postgres, cols("name")))
	assert.Equal(t, []string{"id", "createdAt", "updatedAt", "name"}, a.Collections["t"].columns)
}

// A page or a record read through the runtime's SQLite connection is answered from what the
// connection kept until a statement that may write runs; a row changed behind the connection's back,
// which the runtime never does, shows that the kept answer is what is served. A different list, a
// different record or a new model of the collection is read afresh.
func TestReadsAreKeptUntilAWrite(t *testing.T) {
	ctx := t.Context()
	path, c, cols, coll := namesDB(t)
	KeepAnswers(c, DefaultKeptAnswers)
	for _, n := range []string{"a", "b"} {
		_, err := coll.Create(ctx, c, map[string]any{"name": n})
		require.NoError(t, err)
	}
	list := func(coll *Collection, lq ListQuery) string {
		t.Helper()
		b, err := coll.ListJSON(ctx, c, lq, []byte("prefix:"))
		require.NoError(t, err)
		return strings.TrimPrefix(string(b), "prefix:")
	}
	get := func(id int64) string {
		t.Helper()
		b, err := coll.GetJSON(ctx, c, id, nil)
		require.NoError(t, err)
		return string(b)
	}
	page := list(coll, ListQuery{Limit: 10})
	assert.Contains(t, page, `"name":"a"`)
	rec := get(1)
	assert.Contains(t, rec, `"name":"a"`)
	sc := c.(*sqliteConn)
	assert.Empty(t, sc.reads, "an answer asked for once is not kept")
	assert.Equal(t, page, list(coll, ListQuery{Limit: 10}))
	assert.Equal(t, rec, get(1))
	assert.Len(t, sc.reads, 2, "asked for twice: kept")

	other, err := OpenSQLite(path, OpenExisting)
	require.NoError(t, err)
	_, err = other.Exec(ctx, `UPDATE "t" SET "name" = 'behind'`)
	require.NoError(t, err)
	require.NoError(t, other.Close())
	assert.Equal(t, page, list(coll, ListQuery{Limit: 10}), "kept")
	assert.Equal(t, rec, get(1), "kept")
	assert.Contains(t, list(coll, ListQuery{Limit: 9}), `"behind"`, "another list is read")
	assert.Contains(t, list(coll, ListQuery{Limit: 10, Filters: []Filter{{Field: "name", Value: "behind"}}}), `"behind"`)
	assert.Contains(t, get(2), `"behind"`, "another record is read")
	assert.Contains(t, list(Compile(SQLite, cols)["t"], ListQuery{Limit: 10}), `"behind"`, "a new model reads afresh")

	_, err = coll.Create(ctx, c, map[string]any{"name": "c"})
	require.NoError(t, err)
	assert.Contains(t, list(coll, ListQuery{Limit: 10}), `"total":3`, "read afresh after a write")
	assert.Contains(t, get(1), `"behind"`)
	for key, k := range sc.reads {
		assert.Equal(t, sc.writes, k.writes, "%s is kept from after the write", key)
	}

	// Answers past the bounds are not kept, and the kept ones stay within them.
	for i := range 400 {
		list(coll, ListQuery{Limit: 10, Offset: i % 3, Filters: []Filter{{Field: "name", Value: strconv.Itoa(i / 2)}}})
	}
	assert.LessOrEqual(t, sc.readBytes, DefaultKeptAnswers)

	// A connection told to keep nothing keeps nothing.
	KeepAnswers(c, 0)
	list(coll, ListQuery{Limit: 7})
	list(coll, ListQuery{Limit: 7})
	assert.NotContains(t, sc.reads, ListQuery{Limit: 7}.key())
}
