package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// capiConn is a connection to an SQLite database through SQLite's C API (modernc.org/sqlite/lib, the
// same SQLite the driver runs), opened without SQLite's mutex per connection. The driver opens every
// connection serialized (SQLITE_OPEN_FULLMUTEX) and offers no other way: SQLite then takes and
// releases that mutex on every call, twice for every column read, which was three fifths of the cost of
// reading a page of 20 records (BenchmarkSQLitePageRead). A capiConn, like every Conn, is used by one
// goroutine at a time (the app lets one request at a time use its connection), which is what SQLite
// asks of a connection without its mutex; SQLite's own global state keeps its mutexes.
type capiConn struct {
	tls *libc.TLS
	db  uintptr // sqlite3*
}

// Error is an error SQLite returned: its extended result code and message.
type Error struct {
	code int
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Code is SQLite's extended result code.
func (e *Error) Code() int { return e.code }

// sqliteCode is the extended result code of an error from SQLite, through this package's
// connections or the driver's.
func sqliteCode(err error) (int, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.code, true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}

// capiOpen opens the database file at path, creating it when create is true.
func capiOpen(path string, create bool) (*capiConn, error) {
	c := &capiConn{tls: libc.NewTLS()}
	if err := c.open(path, create); err != nil {
		_ = c.close()
		return nil, err
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	return c, nil
}

func (c *capiConn) open(path string, create bool) error {
	cpath, err := libc.CString(path)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, cpath)
	out := c.tls.Alloc(8)
	defer c.tls.Free(8)
	flags := int32(sqlite3.SQLITE_OPEN_READWRITE | sqlite3.SQLITE_OPEN_NOMUTEX)
	if create {
		flags |= sqlite3.SQLITE_OPEN_CREATE
	}
	rc := sqlite3.Xsqlite3_open_v2(c.tls, cpath, out, flags, 0)
	c.db = libc.AssignAddPtrUintptr(out, 0) // *out: SQLite may return a handle even on failure
	if rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// close closes the connection; its statements must have been finalized.
func (c *capiConn) close() error {
	var err error
	if c.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			err = c.err(rc)
		}
		c.db = 0
	}
	c.tls.Close()
	return err
}

// err is the error for result code rc of the connection's last call.
func (c *capiConn) err(rc int32) error {
	code := int(rc)
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		if ext := sqlite3.Xsqlite3_extended_errcode(c.tls, c.db); ext&0xff == rc&0xff {
			code = int(ext)
			msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
		}
	}
	msg = fmt.Sprintf("%s (%d)", msg, code)
	if name, ok := sqlite.ErrorCodeString[code]; ok && code&0xff == sqlite3.SQLITE_BUSY {
		msg += " (" + name + ")"
	}
	return &Error{code: code, msg: msg}
}

// interruptOnDone interrupts the connection's running statement when ctx ends before the returned
// function is called. A statement run with a context that cannot end is not watched.
func (c *capiConn) interruptOnDone(ctx context.Context) (stop func()) {
	done := ctx.Done()
	if done == nil {
		return func() {}
	}
	stopped := make(chan struct{})
	finished := make(chan struct{})
	db := c.db
	go func() {
		defer close(finished)
		select {
		case <-done:
			// A TLS of its own: the connection's is in use by the statement. SQLite forgets an
			// interruption that comes when no statement runs.
			tls := libc.NewTLS()
			sqlite3.Xsqlite3_interrupt(tls, db)
			tls.Close()
		case <-stopped:
		}
	}()
	return func() { close(stopped); <-finished }
}

// capiStmt is a prepared statement of a capiConn.
type capiStmt struct {
	c   *capiConn
	p   uintptr // sqlite3_stmt*
	row []any   // the row Query hands to its callback, reused
}

// prepare prepares the first statement of the C string sql and returns it with the rest of sql
// (tail). p is 0 when sql holds no statement (only spaces or comments).
func (c *capiConn) prepare(sql uintptr) (st *capiStmt, tail uintptr, err error) {
	out := c.tls.Alloc(16)
	defer c.tls.Free(16)
	rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, sql, -1, out, out+8)
	if rc != sqlite3.SQLITE_OK {
		return nil, 0, c.err(rc)
	}
	return &capiStmt{c: c, p: libc.AssignAddPtrUintptr(out, 0)}, libc.AssignAddPtrUintptr(out+8, 0), nil
}

// prepareOne prepares query, which must be one statement.
func (c *capiConn) prepareOne(query string) (*capiStmt, error) {
	sql, err := libc.CString(query)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, sql)
	st, tail, err := c.prepare(sql)
	if err != nil {
		return nil, err
	}
	if st.p == 0 {
		return nil, fmt.Errorf("no statement in %q", query)
	}
	if rest := strings.TrimSpace(libc.GoString(tail)); rest != "" && rest != ";" {
		st.finalize()
		return nil, fmt.Errorf("more than one statement in %q", query)
	}
	return st, nil
}

// execScript runs every statement of query in turn, each with args bound when it takes parameters,
// and returns the rows the last one changed. Nothing of it is kept prepared.
func (c *capiConn) execScript(ctx context.Context, query string, args []any) (int64, error) {
	sql, err := libc.CString(query)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, sql)
	var n int64
	for next := sql; ; {
		st, tail, err := c.prepare(next)
		if err != nil {
			return 0, err
		}
		if st.p == 0 {
			return n, nil
		}
		a := args
		if sqlite3.Xsqlite3_bind_parameter_count(c.tls, st.p) == 0 {
			a = nil // a statement of the script that takes no parameters
		}
		n, err = st.exec(ctx, a)
		st.finalize()
		if err != nil {
			return 0, err
		}
		next = tail
	}
}

func (st *capiStmt) finalize() {
	if st.p != 0 {
		sqlite3.Xsqlite3_finalize(st.c.tls, st.p)
		st.p = 0
	}
}

// bind binds args to the statement's parameters, in order.
func (st *capiStmt) bind(args []any) error {
	tls := st.c.tls
	if n := int(sqlite3.Xsqlite3_bind_parameter_count(tls, st.p)); n != len(args) {
		return fmt.Errorf("statement takes %d parameters, %d given", n, len(args))
	}
	for i, a := range args {
		pos := int32(i + 1)
		var rc int32
		switch v := a.(type) {
		case nil:
			rc = sqlite3.Xsqlite3_bind_null(tls, st.p, pos)
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(tls, st.p, pos, v)
		case int:
			rc = sqlite3.Xsqlite3_bind_int64(tls, st.p, pos, int64(v))
		case int32:
			rc = sqlite3.Xsqlite3_bind_int64(tls, st.p, pos, int64(v))
		case bool:
			var b int64
			if v {
				b = 1
			}
			rc = sqlite3.Xsqlite3_bind_int64(tls, st.p, pos, b)
		case float64:
			rc = sqlite3.Xsqlite3_bind_double(tls, st.p, pos, v)
		case string:
			rc = bindBytes(st, pos, v, true)
		case []byte:
			rc = bindBytes(st, pos, v, false)
		default:
			return fmt.Errorf("cannot store a %T in SQLite", a)
		}
		if rc != sqlite3.SQLITE_OK {
			return st.c.err(rc)
		}
	}
	return nil
}

// bindBytes binds b as text or as a blob; SQLite copies it. b is copied once, into C memory: a string
// is not made a []byte first.
func bindBytes[T string | []byte](st *capiStmt, pos int32, b T, text bool) int32 {
	tls := st.c.tls
	if len(b) == 0 {
		if text {
			return sqlite3.Xsqlite3_bind_text64(tls, st.p, pos, emptyCString, 0, sqlite3.SQLITE_TRANSIENT, sqlite3.SQLITE_UTF8)
		}
		return sqlite3.Xsqlite3_bind_zeroblob(tls, st.p, pos, 0)
	}
	p := libc.Xmalloc(tls, uint64(len(b)))
	if p == 0 {
		return sqlite3.SQLITE_NOMEM
	}
	defer libc.Xfree(tls, p)
	copy(libc.GoBytes(p, len(b)), b)
	if text {
		return sqlite3.Xsqlite3_bind_text64(tls, st.p, pos, p, uint64(len(b)), sqlite3.SQLITE_TRANSIENT, sqlite3.SQLITE_UTF8)
	}
	return sqlite3.Xsqlite3_bind_blob64(tls, st.p, pos, p, uint64(len(b)), sqlite3.SQLITE_TRANSIENT)
}

// emptyCString is a C string of no characters, for binding "" as text, not NULL.
var emptyCString = func() uintptr {
	p, err := libc.CString("")
	if err != nil {
		panic(err)
	}
	return p
}()

// exec runs the statement to its end with args and returns the rows it changed.
func (st *capiStmt) exec(ctx context.Context, args []any) (int64, error) {
	err := st.run(ctx, args, nil, nil)
	if err != nil {
		return 0, err
	}
	return sqlite3.Xsqlite3_changes64(st.c.tls, st.c.db), nil
}

// run binds args and steps the statement to its end, calling fn with each row (read into row, which
// is reused). The statement is reset afterwards, whatever happened. A goroutine interrupts the
// statement when ctx ends, unless ctx is marked bounded; ctx is looked at between rows too.
func (st *capiStmt) run(ctx context.Context, args []any, row []any, fn func([]any) error) (err error) {
	tls := st.c.tls
	// Reset, but the parameters stay bound (SQLite holds its own copies): clearing them would make
	// SQLite parse and plan a statement whose plan depends on a bound value again at its next run.
	defer sqlite3.Xsqlite3_reset(tls, st.p)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := st.bind(args); err != nil {
		return err
	}
	if _, bounded := ctx.(boundedCtx); !bounded {
		defer st.c.interruptOnDone(ctx)()
	}
	done := ctx.Done()
	for {
		switch rc := sqlite3.Xsqlite3_step(tls, st.p); rc {
		case sqlite3.SQLITE_DONE:
			return nil
		case sqlite3.SQLITE_ROW:
			if fn == nil {
				continue
			}
			if err := st.read(row); err != nil {
				return err
			}
			if err := fn(row); err != nil {
				return err
			}
			select {
			case <-done:
				return ctx.Err()
			default:
			}
		default:
			if rc&0xff == sqlite3.SQLITE_INTERRUPT && ctx.Err() != nil {
				return ctx.Err()
			}
			return st.c.err(rc)
		}
	}
}

// rowBuffer is a row of the statement's width, reused from one run to the next: a statement is never
// run again while it runs.
func (st *capiStmt) rowBuffer() []any {
	if st.row == nil {
		st.row = make([]any, sqlite3.Xsqlite3_column_count(st.c.tls, st.p))
	}
	return st.row
}

// read reads the current row into row: int64, float64, string, []byte or nil for each column.
func (st *capiStmt) read(row []any) error {
	tls := st.c.tls
	for i := range row {
		col := int32(i)
		switch sqlite3.Xsqlite3_column_type(tls, st.p, col) {
		case sqlite3.SQLITE_INTEGER:
			row[i] = sqlite3.Xsqlite3_column_int64(tls, st.p, col)
		case sqlite3.SQLITE_FLOAT:
			row[i] = sqlite3.Xsqlite3_column_double(tls, st.p, col)
		case sqlite3.SQLITE_TEXT:
			p := sqlite3.Xsqlite3_column_text(tls, st.p, col)
			n := int(sqlite3.Xsqlite3_column_bytes(tls, st.p, col))
			if p == 0 && n > 0 {
				return st.c.err(sqlite3.SQLITE_NOMEM)
			}
			row[i] = string(libc.GoBytes(p, n))
		case sqlite3.SQLITE_BLOB:
			p := sqlite3.Xsqlite3_column_blob(tls, st.p, col)
			n := int(sqlite3.Xsqlite3_column_bytes(tls, st.p, col))
			b := make([]byte, n)
			if n > 0 {
				if p == 0 {
					return st.c.err(sqlite3.SQLITE_NOMEM)
				}
				copy(b, libc.GoBytes(p, n))
			}
			row[i] = b
		default:
			row[i] = nil
		}
	}
	return nil
}
