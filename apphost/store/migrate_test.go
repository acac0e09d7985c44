package store

import (
	"path/filepath"
	"testing"

	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTemp(t *testing.T) Conn {
	t.Helper()
	c, err := OpenSQLite(filepath.Join(t.TempDir(), "a.db"), OpenOrCreate)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func count(t *testing.T, c Conn, q string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, c.Query(t.Context(), q, nil, func(r []any) error { n = asInt(r[0]); return nil }))
	return n
}

// TestCaseOnlyRenameKeepsValues: a field whose name changes only in case is renamed with its values
// and its unique index, not dropped and added (which SQLite could not even do: its column names have
// no case).
func TestCaseOnlyRenameKeepsValues(t *testing.T) {
	ctx := t.Context()
	c := openTemp(t)
	v1 := []spec.Collection{{Name: "people", Fields: []spec.Field{{Name: "Email", Type: spec.TypeString, Unique: true}}}}
	_, err := Migrate(ctx, c, v1, false)
	require.NoError(t, err)
	_, err = Compile(SQLite, v1)["people"].Create(ctx, c, map[string]any{"Email": "a@x"})
	require.NoError(t, err)

	v2 := []spec.Collection{{Name: "people", Fields: []spec.Field{{Name: "email", Type: spec.TypeText, Unique: true}}}}
	plan := PlanMigration(SQLite, v1, v2)
	require.Len(t, plan, 2)
	assert.Equal(t, "collections.people.email: rename field Email -> email (values kept)", plan[0].String())
	assert.False(t, plan[0].DataLoss)
	_, err = Migrate(ctx, c, v2, false)
	require.NoError(t, err, "no data loss to allow")
	people := Compile(SQLite, v2)["people"]
	rec, err := people.Get(ctx, c, 1)
	require.NoError(t, err)
	v, _ := rec.Get("email")
	assert.Equal(t, "a@x", v)
	_, err = people.Create(ctx, c, map[string]any{"email": "a@x"})
	var ue *UniqueError
	require.ErrorAs(t, err, &ue, "the unique index moved with the field")
	assert.Equal(t, "email", ue.Field)
}

// TestUserNamesNeverCollideWithInternalNames: a collection may be named like another collection's
// unique index was named before internal names had their own prefix, and an old database gets its
// indexes renamed by its next migration.
func TestUserNamesNeverCollideWithInternalNames(t *testing.T) {
	ctx := t.Context()
	c := openTemp(t)
	users := spec.Collection{Name: "users", Fields: []spec.Field{{Name: "email", Type: spec.TypeString, Unique: true}}}
	// A database of format 1, as an older runtime made it.
	for _, q := range []string{
		`CREATE TABLE users ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "createdAt" TEXT NOT NULL, "updatedAt" TEXT NOT NULL, "email" TEXT)`,
		`CREATE UNIQUE INDEX "uq_users_email" ON users ("email")`,
		`CREATE TABLE ` + metaTable + ` (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		`INSERT INTO ` + metaTable + ` VALUES ('collections', '[{"name":"users","fields":[{"name":"email","type":"string","unique":true}]}]')`,
	} {
		_, err := c.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	_, err := Migrate(ctx, c, []spec.Collection{users}, false)
	require.NoError(t, err, "opening an old database writes nothing")
	assert.EqualValues(t, 1, count(t, c, `SELECT count(*) FROM sqlite_master WHERE name = 'uq_users_email'`))

	clash := spec.Collection{Name: "uq_users_email", Fields: []spec.Field{{Name: "x", Type: spec.TypeString}}}
	_, err = Migrate(ctx, c, []spec.Collection{users, clash}, false)
	require.NoError(t, err)
	assert.EqualValues(t, 1, count(t, c, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'uq_users_email'`))
	assert.EqualValues(t, 1, count(t, c, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '_af_uq_users_email'`))
	_, err = Compile(SQLite, []spec.Collection{users})["users"].Create(ctx, c, map[string]any{"email": "a"})
	require.NoError(t, err)
	_, err = Compile(SQLite, []spec.Collection{users})["users"].Create(ctx, c, map[string]any{"email": "a"})
	require.ErrorIs(t, err, ErrUnique, "still unique after the rename")
}

// TestMigrateRecordsGeneration: the generation is written in the migration's transaction, also when
// the tables do not change, and a failed migration records nothing.
func TestMigrateRecordsGeneration(t *testing.T) {
	ctx := t.Context()
	c := openTemp(t)
	cols := []spec.Collection{{Name: "t", Fields: []spec.Field{{Name: "a", Type: spec.TypeString}}}}
	_, err := MigrateTo(ctx, c, cols, MigrateOptions{Generation: 1})
	require.NoError(t, err)
	_, err = MigrateTo(ctx, c, cols, MigrateOptions{Generation: 2})
	require.NoError(t, err)
	gen, err := RecordedGeneration(ctx, c)
	require.NoError(t, err)
	assert.EqualValues(t, 2, gen)

	_, err = Compile(SQLite, cols)["t"].Create(ctx, c, map[string]any{"a": "x"})
	require.NoError(t, err)
	bad := []spec.Collection{{Name: "t", Fields: []spec.Field{{Name: "a", Type: spec.TypeString}, {Name: "b", Type: spec.TypeString, Required: true}}}}
	_, err = MigrateTo(ctx, c, bad, MigrateOptions{Generation: 3})
	require.ErrorIs(t, err, ErrMigration)
	assert.Contains(t, err.Error(), "required and has no default, but the collection holds 1 records")
	gen, err = RecordedGeneration(ctx, c)
	require.NoError(t, err)
	assert.EqualValues(t, 2, gen, "the failed migration was rolled back whole")
}
