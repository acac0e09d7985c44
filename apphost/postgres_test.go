package apphost_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/internal/pgtest"
	"github.com/appfleet/appfleet/spec"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	p := startRuntime(t, "")
	for _, isolation := range []string{spec.IsolationDatabase, spec.IsolationSchema} {
		t.Run(isolation, func(t *testing.T) {
			ctx := t.Context()
			name := "pg-" + isolation
			s := appSpec(customers(), orders())
			s.Database = spec.Database{Driver: spec.DriverPostgres, DSN: &spec.SecretRef{Value: dsn}, Isolation: isolation}
			a := put(t, p, name, s)
			assert.Equal(t, api.StatusRunning, a.Status)
			require.NotNil(t, a.Spec.Database.DSN)
			assert.Equal(t, spec.SecretHash(name, dsn), a.Spec.Database.DSN.SHA256, "the DSN is shown as its hash")
			code, body := p.do(http.MethodGet, "/v1/apps/"+name, p.token, nil)
			require.Equal(t, http.StatusOK, code)
			assert.NotContains(t, string(body), "postgres://", "the DSN never leaves the runtime")

			ann := create(t, p, name, "customers", "", map[string]any{"name": "Ann", "email": "ann@x", "score": 5})
			assert.Equal(t, "free", ann["tier"])
			create(t, p, name, "customers", "", map[string]any{"name": "Bob", "score": 7, "tier": "pro"})
			create(t, p, name, "orders", "", map[string]any{"total": 2.5, "paid": true, "placedAt": "2024-03-01T10:00:00+01:00", "meta": map[string]any{"k": []any{1.0, "x"}}})
			code, body = p.do(http.MethodPost, "/apps/"+name+"/api/customers", "", map[string]any{"name": "Dup", "email": "ann@x"})
			assert.Equal(t, http.StatusConflict, code, string(body))
			assert.Contains(t, string(body), `\"email\"`)
			code, body = p.do(http.MethodPost, "/apps/"+name+"/api/customers", "", map[string]any{"score": "x"})
			assert.Equal(t, http.StatusBadRequest, code, string(body))
			// PostgreSQL cannot store U+0000: the answer is a 400 naming the field, not a 500.
			for _, tc := range []struct{ coll, body, field string }{
				{"customers", `{"name":"a\u0000b"}`, "name"},
				{"orders", `{"meta":{"k":["x\u0000"]}}`, "meta"},
			} {
				code, body = p.do(http.MethodPost, "/apps/"+name+"/api/"+tc.coll, "", tc.body)
				assert.Equal(t, http.StatusBadRequest, code, string(body))
				assert.Contains(t, string(body), tc.field+": must not contain the NUL character")
			}
			code, body = p.do(http.MethodGet, "/apps/"+name+"/api/customers?name=a%00b", "", nil)
			assert.Equal(t, http.StatusBadRequest, code, string(body))
			l := listOf(t, p, "/apps/"+name+"/api/customers?sort=-score&limit=1", "")
			assert.Equal(t, 2, l.Total)
			assert.Equal(t, "Bob", l.Items[0]["name"])
			o := listOf(t, p, "/apps/"+name+"/api/orders?paid=true", "")
			require.Len(t, o.Items, 1)
			assert.Equal(t, "2024-03-01T09:00:00.000000Z", o.Items[0]["placedAt"])
			assert.Equal(t, map[string]any{"k": []any{1.0, "x"}}, o.Items[0]["meta"])

			// Migrations run in a transaction on PostgreSQL too; data loss is refused.
			s2 := appSpec(customers())
			s2.Database = s.Database
			s2.Collections[0].Fields = append(s2.Collections[0].Fields, spec.Field{Name: "country", Type: spec.TypeString, Default: "NL"})
			_, err := p.client.PutApp(ctx, name, api.PutAppRequest{Spec: s2}, api.PutOptions{})
			assert.True(t, api.IsConflict(err), "dropping orders loses data: %v", err)
			s2.Collections = append(s2.Collections, orders())
			s2.Collections[0].Fields[3].Type = spec.TypeNumber // score integer -> number keeps values
			put(t, p, name, s2)
			l = listOf(t, p, "/apps/"+name+"/api/customers?country=NL&sort=name", "")
			assert.Equal(t, 2, l.Total)
			assert.EqualValues(t, 5, l.Items[0]["score"])
			s3 := s2
			s3.Collections = []spec.Collection{s2.Collections[0], s2.Collections[1]}
			s3.Collections[0].Fields = append([]spec.Field{}, s2.Collections[0].Fields...)
			s3.Collections[0].Fields[0].Unique = true
			s3.Collections[0].Fields[1].Unique = false
			put(t, p, name, s3)

			// Backup from PostgreSQL, restore into a SQLite app (and back): one snapshot format.
			var snap bytes.Buffer
			require.NoError(t, p.client.Backup(ctx, name, &snap))
			lite := s3
			lite.Database = spec.Database{}
			put(t, p, name+"-lite", lite)
			require.NoError(t, p.client.Restore(ctx, name+"-lite", bytes.NewReader(snap.Bytes())))
			assert.Equal(t, 2, listOf(t, p, "/apps/"+name+"-lite/api/customers", "").Total)
			// Restoring a stopped app leaves it without a connection.
			_, err = p.client.StopApp(ctx, name)
			require.NoError(t, err)
			require.NoError(t, p.client.Restore(ctx, name, bytes.NewReader(snap.Bytes())))
			var metrics bytes.Buffer
			require.NoError(t, getMetrics(t, p, &metrics))
			assert.Contains(t, metrics.String(), `appfleet_app_database_open{app="`+name+`"} 0`)
			_, err = p.client.StartApp(ctx, name)
			require.NoError(t, err)
			create(t, p, name, "customers", "", map[string]any{"name": "Cid"})
			require.NoError(t, p.client.Restore(ctx, name, bytes.NewReader(snap.Bytes())))
			assert.Equal(t, 2, listOf(t, p, "/apps/"+name+"/api/customers", "").Total)
			rec := create(t, p, name, "customers", "", map[string]any{"name": "Dan"})
			assert.EqualValues(t, 3, rec["id"], "ids continue after a restore")

			// After kill -9 the app and its data are back.
			p.kill9()
			p.start()
			assert.Equal(t, 3, listOf(t, p, "/apps/"+name+"/api/customers", "").Total)

			// Delete archives by renaming the database or schema; purge drops it.
			require.NoError(t, p.client.DeleteApp(ctx, name, false))
			assert.Equal(t, 1, countStorage(t, dsn, isolation, "%_"+strings.ReplaceAll(name, "-", "_")+"_2%"), "the archived data is kept under a new name")
			put(t, p, name, s)
			assert.Equal(t, 0, listOf(t, p, "/apps/"+name+"/api/customers", "").Total)
			require.NoError(t, p.client.DeleteApp(ctx, name, true))
			assert.Equal(t, 0, countStorage(t, dsn, isolation, "%_"+strings.ReplaceAll(name, "-", "_")))
		})
	}
}

// countStorage counts databases or schemas whose name is LIKE pattern.
func countStorage(t *testing.T, dsn, isolation, pattern string) int {
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	q := "SELECT count(*) FROM pg_database WHERE datname LIKE $1"
	if isolation == spec.IsolationSchema {
		q = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1"
	}
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), q, pattern).Scan(&n))
	return n
}

// A deleted app's PostgreSQL data is archived under a name of its own, even when an earlier archive
// took the obvious one, and a new app never adopts a database or schema it did not create.
func TestPostgresStorageIsNeverReused(t *testing.T) {
	dsn := pgtest.Start(t)
	p := startRuntime(t, "")
	admin, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer admin.Close(context.Background())
	for _, isolation := range []string{spec.IsolationDatabase, spec.IsolationSchema} {
		t.Run(isolation, func(t *testing.T) {
			ctx := t.Context()
			name := "reuse-" + isolation
			s := appSpec(customers())
			s.Database = spec.Database{Driver: spec.DriverPostgres, DSN: &spec.SecretRef{Value: dsn}, Isolation: isolation}
			put(t, p, name, s)
			create(t, p, name, "customers", "", map[string]any{"name": "Ann"})
			var storage string
			q := "SELECT datname FROM pg_database WHERE datname LIKE $1"
			if isolation == spec.IsolationSchema {
				q = "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1"
			}
			require.NoError(t, admin.QueryRow(ctx, q, "%\\_"+strings.ReplaceAll(name, "-", "\\_")).Scan(&storage))
			kind := "DATABASE"
			if isolation == spec.IsolationSchema {
				kind = "SCHEMA"
			}

			// Archives of an earlier app of the same name hold the names a delete in the next seconds would pick.
			now := time.Now().UTC()
			for i := range 4 {
				_, err := admin.Exec(ctx, "CREATE "+kind+" "+pgx.Identifier{storage + "_" + now.Add(time.Duration(i)*time.Second).Format("20060102150405")}.Sanitize())
				require.NoError(t, err)
			}
			assert.NoError(t, p.client.DeleteApp(ctx, name, false), "the archive finds a free name")
			assert.Equal(t, 5, countStorage(t, dsn, isolation, storage+"\\_%"))
			assert.Equal(t, 0, countStorage(t, dsn, isolation, storage), "nothing is left under the app's own name")

			// Data left under an app's name (a delete killed before its archive) is moved aside, not adopted.
			name = "left-" + isolation
			storage = strings.TrimSuffix(storage, "reuse_"+isolation) + "left_" + isolation
			_, err := admin.Exec(ctx, "CREATE "+kind+" "+pgx.Identifier{storage}.Sanitize())
			require.NoError(t, err)
			conn := admin
			if isolation == spec.IsolationDatabase {
				cfg, err := pgx.ParseConfig(dsn)
				require.NoError(t, err)
				cfg.Database = storage
				conn, err = pgx.ConnectConfig(ctx, cfg)
				require.NoError(t, err)
			}
			table := pgx.Identifier{"leftover"}
			if isolation == spec.IsolationSchema {
				table = pgx.Identifier{storage, "leftover"}
			}
			_, err = conn.Exec(ctx, "CREATE TABLE "+table.Sanitize()+" (x int)")
			require.NoError(t, err)
			if conn != admin {
				require.NoError(t, conn.Close(ctx))
			}

			put(t, p, name, s)
			assert.Equal(t, 0, listOf(t, p, "/apps/"+name+"/api/customers", "").Total)
			assert.Equal(t, 1, countStorage(t, dsn, isolation, storage+"\\_%"), "the leftover is archived")
			n := countIn(t, admin, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'leftover'", storage)
			if isolation == spec.IsolationDatabase {
				cfg, err := pgx.ParseConfig(dsn)
				require.NoError(t, err)
				cfg.Database = storage
				c, err := pgx.ConnectConfig(ctx, cfg)
				require.NoError(t, err)
				n = countIn(t, c, "SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'")
				require.NoError(t, c.Close(ctx))
			}
			assert.Equal(t, 0, n, "the new app's storage is new, not the leftover")
			require.NoError(t, p.client.DeleteApp(ctx, name, true))
		})
	}
}

func countIn(t *testing.T, c *pgx.Conn, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, c.QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}
