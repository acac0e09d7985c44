package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

// Entry is one registered app.
type Entry struct {
	Name   string
	Labels map[string]string
	// Spec is the app's spec as last accepted: API keys hashed, a PostgreSQL DSN kept as its value.
	Spec       spec.AppSpec
	Generation int64
	// Storage names the app's PostgreSQL database or schema; empty for SQLite.
	Storage   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Registry is safe for concurrent use; each call holds its lock only for its own statements.
type Registry struct {
	mu sync.Mutex
	c  store.Conn
}

// Open opens (creating when absent) the registry file at path.
func Open(ctx context.Context, path string) (*Registry, error) {
	c, err := store.OpenSQLite(path, store.OpenOrCreate)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS apps (
			name TEXT PRIMARY KEY,
			labels TEXT NOT NULL,
			spec TEXT NOT NULL,
			generation INTEGER NOT NULL,
			storage TEXT NOT NULL,
			created_at TEXT NOT NULL,
			updated_at TEXT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		// An entry whose migration is under way: written before the app's database changes, removed
		// with the entry's own write (Put) or when the migration fails (DropPending).
		`CREATE TABLE IF NOT EXISTS pending (name TEXT PRIMARY KEY, entry TEXT NOT NULL)`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("open registry: %w", err)
		}
	}
	return &Registry{c: c}, nil
}

// Close closes the registry file.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c.Close()
}

// Load returns every registered app, sorted by name.
func (r *Registry) Load(ctx context.Context) ([]Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Entry
	err := r.c.Query(ctx, "SELECT name, labels, spec, generation, storage, created_at, updated_at FROM apps ORDER BY name", nil, func(row []any) error {
		e := Entry{Name: str(row[0]), Generation: row[3].(int64), Storage: str(row[4])}
		if err := json.Unmarshal([]byte(str(row[1])), &e.Labels); err != nil {
			return fmt.Errorf("app %q: labels: %w", e.Name, err)
		}
		if err := json.Unmarshal([]byte(str(row[2])), &e.Spec); err != nil {
			return fmt.Errorf("app %q: spec: %w", e.Name, err)
		}
		e.CreatedAt, _ = time.Parse(time.RFC3339Nano, str(row[5]))
		e.UpdatedAt, _ = time.Parse(time.RFC3339Nano, str(row[6]))
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load registry: %w", err)
	}
	return out, nil
}

// PutPending records that a migration to e is about to run. A crash before Put leaves it here, and
// the runtime's next start asks the app's database whether that migration committed.
func (r *Registry) PutPending(ctx context.Context, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.c.Exec(ctx, "INSERT INTO pending (name, entry) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET entry = excluded.entry", e.Name, string(b)); err != nil {
		return fmt.Errorf("record the migration of app %q in the registry: %w", e.Name, err)
	}
	return nil
}

// DropPending forgets the migration recorded by PutPending (it failed, or did not commit).
func (r *Registry) DropPending(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.c.Exec(ctx, "DELETE FROM pending WHERE name = ?", name); err != nil {
		return fmt.Errorf("remove the pending migration of app %q from the registry: %w", name, err)
	}
	return nil
}

// Pending returns the entries whose migrations were under way when the runtime stopped, sorted by name.
func (r *Registry) Pending(ctx context.Context) ([]Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Entry
	err := r.c.Query(ctx, "SELECT name, entry FROM pending ORDER BY name", nil, func(row []any) error {
		var e Entry
		if err := json.Unmarshal([]byte(str(row[1])), &e); err != nil {
			return fmt.Errorf("app %q: pending entry: %w", str(row[0]), err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load registry: %w", err)
	}
	return out, nil
}

// Put creates or replaces an entry, and forgets its pending migration in the same transaction.
func (r *Registry) Put(ctx context.Context, e Entry) error {
	labels, err := json.Marshal(e.Labels)
	if err != nil {
		return err
	}
	sp, err := json.Marshal(e.Spec)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err = store.InTx(ctx, r.c, func() error {
		_, err := r.c.Exec(ctx, `INSERT INTO apps (name, labels, spec, generation, storage, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, spec = excluded.spec, generation = excluded.generation,
			storage = excluded.storage, updated_at = excluded.updated_at`,
			e.Name, string(labels), string(sp), e.Generation, e.Storage,
			e.CreatedAt.UTC().Format(time.RFC3339Nano), e.UpdatedAt.UTC().Format(time.RFC3339Nano))
		if err == nil {
			_, err = r.c.Exec(ctx, "DELETE FROM pending WHERE name = ?", e.Name)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("save app %q in the registry: %w", e.Name, err)
	}
	return nil
}

// Delete removes an entry (and a pending migration of it); removing an absent one is not an error.
func (r *Registry) Delete(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := store.InTx(ctx, r.c, func() error {
		_, err := r.c.Exec(ctx, "DELETE FROM apps WHERE name = ?", name)
		if err == nil {
			_, err = r.c.Exec(ctx, "DELETE FROM pending WHERE name = ?", name)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("remove app %q from the registry: %w", name, err)
	}
	return nil
}

// Meta returns a runtime-wide value ("" when unset).
func (r *Registry) Meta(ctx context.Context, key string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v string
	err := r.c.Query(ctx, "SELECT value FROM meta WHERE key = ?", []any{key}, func(row []any) error {
		v = str(row[0])
		return nil
	})
	return v, err
}

// SetMeta stores a runtime-wide value.
func (r *Registry) SetMeta(ctx context.Context, key, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.c.Exec(ctx, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)
	return err
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}
