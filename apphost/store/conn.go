package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Conn is one open connection to an app's database. It is not safe for concurrent use: the app that
// owns it lets one request at a time use it.
type Conn interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query and calls fn for every row. row is reused between calls; fn must copy what it keeps.
	Query(ctx context.Context, query string, args []any, fn func(row []any) error) error
	// Dialect says how SQL for this connection is written.
	Dialect() Dialect
	// Close releases the connection. A SQLite connection checkpoints its write-ahead log first.
	Close() error
}

// ErrUnique is returned (wrapped in a *UniqueError) when a write would repeat a unique field's value.
var ErrUnique = errors.New("value already exists")

// UniqueError names the field whose uniqueness a write would break.
type UniqueError struct {
	Collection string
	Field      string
}

func (e *UniqueError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("collection %q: %v", e.Collection, ErrUnique)
	}
	return fmt.Sprintf("field %q: %v", e.Field, ErrUnique)
}

// Unwrap lets errors.Is(err, ErrUnique) match.
func (e *UniqueError) Unwrap() error { return ErrUnique }

// InTx runs fn inside one transaction on c: committed when fn returns nil, rolled back otherwise
// (also when fn panics).
func InTx(ctx context.Context, c Conn, fn func() error) (err error) {
	begin := "BEGIN"
	if c.Dialect() == SQLite {
		begin = "BEGIN IMMEDIATE" // take the write lock now, not halfway through
	}
	if _, err := c.Exec(ctx, begin); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// Use a fresh context: the caller's may be the reason we are rolling back.
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	if _, err := c.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	done = true
	return nil
}

// boundedCtx marks a query whose work is bounded whatever the data (a lookup by primary key, an early
// page in id order): a connection need not be ready to interrupt it while it runs (see sqliteConn.Query).
type boundedCtx struct{ context.Context }

// countCache is implemented by a connection that knows every write to its database, so that a count
// it remembers stays exact until its next write (sqliteConn).
type countCache interface {
	cachedCount(query string) (int64, bool)
	keepCount(query string, n int64)
}

// readCache is implemented by a connection that knows every write to its database, so that an answer
// it keeps stays exact until its next write (sqliteConn).
type readCache interface {
	keepsReads() bool // whether it keeps any answer at all (KeepAnswers)
	cachedRead(coll *Collection, key string) ([]byte, bool)
	keepRead(coll *Collection, key string, body []byte)
}

// ReadTx runs fn so that every query in it sees the same data: inside one REPEATABLE READ read-only
// transaction in PostgreSQL (READ COMMITTED would take a snapshot per statement), and as it is in
// SQLite, where the runtime's connection is its database's only writer and a request holds it for
// all its queries (app.acquire; the data dir's lock keeps other processes out), so nothing can change
// between them. There a BEGIN and a COMMIT would only cost two statements per read. fn must not write.
func ReadTx(ctx context.Context, c Conn, fn func() error) error {
	if c.Dialect() == SQLite {
		return fn()
	}
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	done = true
	if _, err := c.Exec(ctx, "COMMIT"); err != nil {
		_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsDiskFull reports whether err says that a disk is full: the runtime's (SQLite, files) or the
// database server's (PostgreSQL). Nothing was written then, and the same write can succeed later.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || sqliteFull(err) || pgFull(err)
}
