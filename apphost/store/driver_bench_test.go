package store

import (
	"context"
	"path/filepath"
	"testing"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// pageSQL reads a page of 20 rows of 7 columns, as the data API's page of 20 customers does.
const pageSQL = `SELECT id, createdAt, updatedAt, name, email, tier, score FROM t ORDER BY id LIMIT 20 OFFSET 0`

// BenchmarkSQLitePageRead measures what reading one page costs through this package's connection
// (the driver, whose connections are serialized: SQLITE_OPEN_FULLMUTEX, with no way to open them
// otherwise) against SQLite's C API called directly on a connection opened with and without its
// mutex, reading the same columns into a buffer. It is the measure for deciding whether the app
// connections should use SQLite without the driver (docs/benchmarks.md, issue 13).
func BenchmarkSQLitePageRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "page.db")
	c, err := OpenSQLite(path, OpenOrCreate)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, createdAt TEXT, updatedAt TEXT, name TEXT, email TEXT, tier TEXT, score INTEGER)`,
		`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000)
		 INSERT INTO t SELECT x, '2026-11-30T21:29:35.824875Z', '2026-11-30T21:29:35.824875Z',
		 'Customer ' || x, 'customer' || x || '@example.test', 'free', x % 100 FROM n`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("store", func(b *testing.B) {
		if err := HoldLocks(ctx, c, true); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Query(ctx, pageSQL, nil, func([]any) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("C-API-fullmutex", func(b *testing.B) { readPageDirectly(b, path, sqlite3.SQLITE_OPEN_FULLMUTEX) })
	b.Run("C-API-nomutex", func(b *testing.B) { readPageDirectly(b, path, sqlite3.SQLITE_OPEN_NOMUTEX) })
}

// readPageDirectly reads pageSQL through SQLite's C API on a connection of its own, holding the
// file's locks like the runtime's, copying every value into one buffer.
func readPageDirectly(b *testing.B, path string, mutex int32) {
	tls := libc.NewTLS()
	defer tls.Close()
	cstr := func(s string) uintptr {
		p, err := libc.CString(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { libc.Xfree(tls, p) })
		return p
	}
	out := libc.Xmalloc(tls, 8)
	defer libc.Xfree(tls, out)
	if rc := sqlite3.Xsqlite3_open_v2(tls, cstr(path), out, sqlite3.SQLITE_OPEN_READWRITE|mutex, 0); rc != sqlite3.SQLITE_OK {
		b.Fatalf("open: %d", rc)
	}
	db := handle(out)
	defer sqlite3.Xsqlite3_close_v2(tls, db)
	for _, q := range []string{"PRAGMA locking_mode = EXCLUSIVE", "BEGIN IMMEDIATE", "COMMIT"} {
		if rc := sqlite3.Xsqlite3_exec(tls, db, cstr(q), 0, 0, 0); rc != sqlite3.SQLITE_OK {
			b.Fatalf("%s: %d", q, rc)
		}
	}
	if rc := sqlite3.Xsqlite3_prepare_v2(tls, db, cstr(pageSQL), -1, out, 0); rc != sqlite3.SQLITE_OK {
		b.Fatalf("prepare: %d", rc)
	}
	st := handle(out)
	defer sqlite3.Xsqlite3_finalize(tls, st)
	buf := make([]byte, 0, 8<<10)
	rows := 0
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for sqlite3.Xsqlite3_step(tls, st) == sqlite3.SQLITE_ROW {
			rows++
			for i := range int32(7) {
				switch sqlite3.Xsqlite3_column_type(tls, st, i) {
				case sqlite3.SQLITE_INTEGER:
					buf = append(buf, byte(sqlite3.Xsqlite3_column_int64(tls, st, i)))
				case sqlite3.SQLITE_TEXT:
					p := sqlite3.Xsqlite3_column_text(tls, st, i)
					buf = append(buf, libc.GoBytes(p, int(sqlite3.Xsqlite3_column_bytes(tls, st, i)))...)
				}
			}
		}
		sqlite3.Xsqlite3_reset(tls, st)
	}
	if rows != 20*b.N {
		b.Fatalf("read %d rows in %d pages", rows, b.N)
	}
}

// handle reads the pointer SQLite wrote at out (libc's "*out += 0").
func handle(out uintptr) uintptr { return libc.AssignAddPtrUintptr(out, 0) }
