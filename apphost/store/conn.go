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

// ReadTx runs fn inside one read-only transaction on c, so that every query in it sees the same
// snapshot of the data: a deferred transaction in SQLite (WAL gives it one snapshot, taken with a
// single read lock instead of one per statement), REPEATABLE READ in PostgreSQL (READ COMMITTED would
// take a snapshot per statement). fn must not write.
func ReadTx(ctx context.Context, c Conn, fn func() error) error {
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
	txCtx := ctx
	if c.Dialect() == SQLite {
		begin = "BEGIN"
		// BEGIN and COMMIT of a read transaction never wait for a lock, so there is nothing for the
		// request's context to interrupt; without it the driver skips watching it.
		txCtx = context.WithoutCancel(ctx)
	}
	if _, err := c.Exec(txCtx, begin); err != nil {
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
	if _, err := c.Exec(txCtx, "COMMIT"); err != nil {
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
