package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PGTarget says where an app's data lives on a PostgreSQL server.
type PGTarget struct {
	// DSN is the server to use, as the app declared it. It is a secret: never printed.
	DSN string
	// Isolation is "database" (Name is a database of its own) or "schema" (Name is a schema in the DSN's database).
	Isolation string
	// Name is the app's database or schema.
	Name string
}

func (t PGTarget) config() (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(t.DSN)
	if err != nil {
		// pgx's parse errors may quote the connection string; never pass them on.
		return nil, errors.New("database.dsn is not a valid PostgreSQL connection string")
	}
	cfg.StatementCacheCapacity = 64
	cfg.DescriptionCacheCapacity = 64
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "appfleet"
	return cfg, nil
}

// OpenPostgres connects to the app's database or schema, creating it first when create is true.
func OpenPostgres(ctx context.Context, t PGTarget, create bool) (Conn, error) {
	cfg, err := t.config()
	if err != nil {
		return nil, err
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var exists bool
	switch t.Isolation {
	case "schema":
		err = admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", t.Name).Scan(&exists)
		if err == nil && !exists && create {
			_, err = admin.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+quote(t.Name))
			exists = err == nil
		}
		cfg.RuntimeParams["search_path"] = quote(t.Name)
	default:
		err = admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", t.Name).Scan(&exists)
		if err == nil && !exists && create {
			_, err = admin.Exec(ctx, "CREATE DATABASE "+quote(t.Name))
			exists = err == nil
		}
		cfg.Database = t.Name
	}
	if err != nil {
		return nil, fmt.Errorf("create %s %q: %w", isolationWord(t), t.Name, err)
	}
	if !exists {
		return nil, fmt.Errorf("%s %q does not exist on the PostgreSQL server", isolationWord(t), t.Name)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL %s %q: %w", isolationWord(t), t.Name, err)
	}
	return &pgConn{c: c}, nil
}

func isolationWord(t PGTarget) string {
	if t.Isolation == "schema" {
		return "schema"
	}
	return "database"
}

// ArchivePostgres renames the app's database or schema to archived, keeping its data, and returns the
// name it now has: archived itself, or archived with a "_2", "_3"... suffix when that name is taken
// (an earlier archive of the same app), so an archive never fails for its name nor replaces another.
// Names longer than PostgreSQL's 63 bytes lose their start. No connection of the app may be open.
func ArchivePostgres(ctx context.Context, t PGTarget, archived string) (string, error) {
	var final string
	err := pgAdmin(ctx, t, func(admin *pgx.Conn) error {
		for i := 1; ; i++ {
			name := archived
			if i > 1 {
				name = fmt.Sprintf("%s_%d", archived, i)
			}
			if len(name) > maxPGName {
				name = name[len(name)-maxPGName:]
			}
			taken, err := pgExists(ctx, admin, t.Isolation, name)
			if err != nil {
				return err
			}
			if taken {
				continue
			}
			q := "ALTER DATABASE " + quote(t.Name) + " RENAME TO " + quote(name)
			if t.Isolation == "schema" {
				q = "ALTER SCHEMA " + quote(t.Name) + " RENAME TO " + quote(name)
			}
			if _, err := admin.Exec(ctx, q); err != nil {
				return err
			}
			final = name
			return nil
		}
	})
	return final, err
}

// maxPGName is the longest identifier PostgreSQL keeps.
const maxPGName = 63

// PostgresExists reports whether the app's database or schema exists.
func PostgresExists(ctx context.Context, t PGTarget) (bool, error) {
	var exists bool
	err := pgAdmin(ctx, t, func(admin *pgx.Conn) (err error) {
		exists, err = pgExists(ctx, admin, t.Isolation, t.Name)
		return err
	})
	return exists, err
}

func pgExists(ctx context.Context, admin *pgx.Conn, isolation, name string) (bool, error) {
	q := "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)"
	if isolation == "schema" {
		q = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"
	}
	var exists bool
	err := admin.QueryRow(ctx, q, name).Scan(&exists)
	return exists, err
}

// PurgePostgres drops the app's database or schema and everything in it.
func PurgePostgres(ctx context.Context, t PGTarget) error {
	return pgAdmin(ctx, t, func(admin *pgx.Conn) error {
		q := "DROP DATABASE IF EXISTS " + quote(t.Name) + " WITH (FORCE)"
		if t.Isolation == "schema" {
			q = "DROP SCHEMA IF EXISTS " + quote(t.Name) + " CASCADE"
		}
		_, err := admin.Exec(ctx, q)
		return err
	})
}

func pgAdmin(ctx context.Context, t PGTarget, fn func(*pgx.Conn) error) error {
	cfg, err := t.config()
	if err != nil {
		return err
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	return fn(admin)
}

type pgConn struct {
	c *pgx.Conn
}

func (p *pgConn) Dialect() Dialect { return Postgres }

func (p *pgConn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	return p.c.Close(ctx)
}

func (p *pgConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.c.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	if changesSchema(query) {
		// pgx keeps a prepared statement per SQL text; the same text may now read columns of
		// another type, which the server refuses for a statement prepared before.
		if err := p.c.DeallocateAll(ctx); err != nil {
			return 0, fmt.Errorf("after a schema change: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}

func (p *pgConn) Query(ctx context.Context, query string, args []any, fn func(row []any) error) error {
	rows, err := p.c.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgFull recognises PostgreSQL's disk_full (53100).
func pgFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100"
}

// pgUnique recognises a unique violation; field is the constraint's (index's) name.
func pgUnique(err error) (collection, field string, ok bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.TableName, pe.ConstraintName, true
	}
	return "", "", false
}
