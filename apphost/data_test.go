package apphost_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDataAPI(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "shop", appSpec(customers(), orders()))

	ann := create(t, p, "shop", "customers", "", map[string]any{"name": "Ann", "email": "ann@x.test", "score": 7})
	assert.Equal(t, "free", ann["tier"], "a missing field takes its default")
	assert.EqualValues(t, 1, ann["id"])
	assert.NotEmpty(t, ann["createdAt"])
	for i := range 9 {
		create(t, p, "shop", "customers", "", map[string]any{"name": fmt.Sprintf("c%d", i), "score": i, "tier": []string{"free", "pro"}[i%2]})
	}

	for _, tc := range []struct {
		name  string
		body  string
		field string
	}{
		{"missing required", `{"email":"x@x"}`, "name"},
		{"wrong type", `{"name":"x","score":"high"}`, "score"},
		{"fraction for integer", `{"name":"x","score":1.5}`, "score"},
		{"not in enum", `{"name":"x","tier":"gold"}`, "tier"},
		{"unknown field", `{"name":"x","colour":"red"}`, "colour"},
		{"not an object", `[1,2]`, "body"},
		{"NUL character", `{"name":"a\u0000b"}`, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := p.do(http.MethodPost, "/apps/shop/api/customers", "", tc.body)
			require.Equal(t, http.StatusBadRequest, code, string(body))
			e := errorCode(t, body)
			assert.Equal(t, api.CodeInvalid, e.Code)
			require.NotEmpty(t, e.Details)
			assert.Contains(t, e.Details[0], tc.field+":", "the answer names the field")
		})
	}
	code, body := p.do(http.MethodPost, "/apps/shop/api/customers", "", `{"name":"one"} {"name":"two"}`)
	assert.Equal(t, http.StatusBadRequest, code, "a body is one object: %s", body)
	code, body = p.do(http.MethodPost, "/apps/shop/api/customers", "", `{"name":"`+strings.Repeat("x", 2<<20)+`"}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code, string(body))
	assert.Equal(t, api.CodeInvalid, errorCode(t, body).Code)
	code, body = p.do(http.MethodPatch, "/apps/shop/api/customers/1", "", `{"score":1}`+strings.Repeat(" ", 2<<20))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code, string(body))
	code, body = p.do(http.MethodPost, "/apps/shop/api/customers", "", `{"name":"dup","email":"ann@x.test"}`)
	assert.Equal(t, http.StatusConflict, code, string(body))
	assert.Contains(t, errorCode(t, body).Message, "email")

	l := listOf(t, p, "/apps/shop/api/customers?limit=3&offset=1&sort=-score", "")
	assert.Equal(t, 10, l.Total)
	require.Len(t, l.Items, 3)
	assert.EqualValues(t, []any{7.0, 7.0, 6.0}, []any{l.Items[0]["score"], l.Items[1]["score"], l.Items[2]["score"]})
	l = listOf(t, p, "/apps/shop/api/customers?tier=pro&sort=name", "")
	assert.Equal(t, 4, l.Total)
	assert.Equal(t, "c1", l.Items[0]["name"])
	l = listOf(t, p, "/apps/shop/api/customers?score=7&tier=free", "")
	assert.Equal(t, 1, l.Total)
	for _, bad := range []string{"?limit=-1", "?limit=x", "?sort=nope", "?nope=1", "?score=abc", "?offset=-2"} {
		code, body := p.do(http.MethodGet, "/apps/shop/api/customers"+bad, "", nil)
		assert.Equal(t, http.StatusBadRequest, code, bad+": "+string(body))
	}

	id := fmt.Sprint(ann["id"])
	code, body = p.do(http.MethodPatch, "/apps/shop/api/customers/"+id, "", `{"score":9,"email":null}`)
	require.Equal(t, http.StatusOK, code, string(body))
	var rec map[string]any
	require.NoError(t, json.Unmarshal(body, &rec))
	assert.EqualValues(t, 9, rec["score"])
	assert.Nil(t, rec["email"])
	assert.Equal(t, "Ann", rec["name"])
	code, body = p.do(http.MethodPatch, "/apps/shop/api/customers/"+id, "", `{"name":null}`)
	assert.Equal(t, http.StatusBadRequest, code, string(body))
	code, _ = p.do(http.MethodGet, "/apps/shop/api/customers/"+id, "", nil)
	assert.Equal(t, http.StatusOK, code)
	code, _ = p.do(http.MethodDelete, "/apps/shop/api/customers/"+id, "", nil)
	assert.Equal(t, http.StatusNoContent, code)
	code, _ = p.do(http.MethodGet, "/apps/shop/api/customers/"+id, "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = p.do(http.MethodDelete, "/apps/shop/api/customers/"+id, "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = p.do(http.MethodPut, "/apps/shop/api/customers/2", "", `{}`)
	assert.Equal(t, http.StatusMethodNotAllowed, code)

	o := create(t, p, "shop", "orders", "", map[string]any{"total": 12, "paid": false, "placedAt": "2024-01-02T03:04:05.123456789Z", "meta": []any{"x", 1}})
	assert.EqualValues(t, 12, o["total"])
	assert.Equal(t, "2024-01-02T03:04:05.123456Z", o["placedAt"])
	l = listOf(t, p, "/apps/shop/api/orders?paid=false&placedAt=2024-01-02T04:04:05.123456%2B01:00", "")
	assert.Equal(t, 1, l.Total, "datetime filters compare instants")

	code, body = p.do(http.MethodGet, "/apps/shop/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.Equal(t, "3.1.0", doc["openapi"])
	paths := doc["paths"].(map[string]any)
	for _, path := range []string{"/api/customers", "/api/customers/{id}", "/api/orders", "/api/orders/{id}", "/api/_settings"} {
		assert.Contains(t, paths, path)
	}
	validateOpenAPI(t, body)
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	c := p.client
	s := appSpec(customers())
	put(t, p, "crm", s)
	create(t, p, "crm", "customers", "", map[string]any{"name": "Ann", "email": "a@x", "score": 1})
	create(t, p, "crm", "customers", "", map[string]any{"name": "Bob", "email": "b@x", "score": 1})
	put(t, p, "bystander", appSpec(customers()))

	// Add a collection and a field with a default; relax required; drop a unique constraint.
	s2 := appSpec(customers(), orders())
	s2.Collections[0].Fields[0].Required = false
	s2.Collections[0].Fields[1].Unique = false
	s2.Collections[0].Fields = append(s2.Collections[0].Fields, spec.Field{Name: "country", Type: spec.TypeString, Default: "NL"})
	got := put(t, p, "crm", s2)
	assert.Equal(t, int64(2), got.Generation)
	l := listOf(t, p, "/apps/crm/api/customers", "")
	require.Len(t, l.Items, 2)
	assert.Equal(t, "NL", l.Items[0]["country"], "existing records get the new field's default")
	create(t, p, "crm", "customers", "", map[string]any{"email": "a@x"}) // neither required nor unique now
	create(t, p, "crm", "orders", "", map[string]any{"total": 1})

	// Adding a unique constraint that the data breaks fails and leaves the old schema: the app keeps
	// serving it, with the reason on the app and not in error.
	s3 := appSpec(customers(), orders())
	s3.Collections[0].Fields[0].Required = false
	s3.Collections[0].Fields[3].Unique = true // score: 1, 1
	s3.Collections[0].Fields[1].Unique = false
	s3.Collections[0].Fields = append(s3.Collections[0].Fields, spec.Field{Name: "country", Type: spec.TypeString, Default: "NL"})
	_, err := c.PutApp(ctx, "crm", api.PutAppRequest{Spec: s3}, api.PutOptions{})
	require.Error(t, err)
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusUnprocessableEntity, ae.Status)
	assert.Equal(t, api.CodeMigrationFailed, ae.Code)
	assert.Contains(t, ae.Message, "score")
	failed, err := c.GetApp(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, failed.Status)
	assert.Contains(t, failed.Error, "score")
	assert.Equal(t, int64(2), failed.Generation, "the failed spec was not accepted")
	assert.Equal(t, 3, listOf(t, p, "/apps/crm/api/customers", "").Total, "the old schema and data, untouched")
	code, _ := p.do(http.MethodGet, "/apps/bystander/api/customers", "", nil)
	assert.Equal(t, http.StatusOK, code, "other apps keep running")

	// Data loss is refused, with one line per change, and nothing changes.
	s4 := appSpec(customers())
	s4.Collections[0].Fields[0].Required = false
	s4.Collections[0].Fields[1].Unique = false
	s4.Collections[0].Fields[2] = spec.Field{Name: "tier", Type: spec.TypeInteger} // enum -> integer
	_, err = c.PutApp(ctx, "crm", api.PutAppRequest{Spec: s4}, api.PutOptions{})
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusConflict, ae.Status)
	assert.Equal(t, api.CodeDataLoss, ae.Code)
	assert.ElementsMatch(t, []string{
		"collections.customers.tier: change type enum -> integer (stored values are lost)",
		"collections.customers.country: drop field (its values are lost)",
		"collections.orders: drop collection (its records are lost)",
	}, ae.Details)
	assert.Equal(t, 1, listOf(t, p, "/apps/crm/api/orders", "").Total)
	now, err := c.GetApp(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, now.Status)
	assert.Equal(t, int64(2), now.Generation)

	allowed, err := c.PutApp(ctx, "crm", api.PutAppRequest{Spec: s4}, api.PutOptions{AllowDataLoss: true})
	require.NoError(t, err)
	assert.Equal(t, int64(3), allowed.Generation)
	code, _ = p.do(http.MethodGet, "/apps/crm/api/orders", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	l = listOf(t, p, "/apps/crm/api/customers", "")
	assert.Equal(t, 3, l.Total)
	assert.NotContains(t, l.Items[0], "country")

	// Type changes that keep every value are not data loss.
	s5 := s4
	s5.Collections = []spec.Collection{{Name: "customers", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeText}, {Name: "email", Type: spec.TypeString},
		{Name: "tier", Type: spec.TypeString}, {Name: "score", Type: spec.TypeNumber, Unique: false},
	}}}
	put(t, p, "crm", s5)
	l = listOf(t, p, "/apps/crm/api/customers?sort=name", "")
	assert.Equal(t, 3, l.Total)
	assert.Equal(t, "Ann", l.Items[1]["name"])
	assert.EqualValues(t, 1.0, l.Items[1]["score"])
}

func TestDatabaseDriverChangeIsDataLoss(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "crm", appSpec(customers()))
	s := appSpec(customers())
	s.Database = spec.Database{Driver: spec.DriverPostgres, DSN: &spec.SecretRef{Value: "postgres://nobody@127.0.0.1:1/x"}}
	_, err := p.client.PutApp(t.Context(), "crm", api.PutAppRequest{Spec: s}, api.PutOptions{})
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, api.CodeDataLoss, ae.Code)
	require.Len(t, ae.Details, 1)
	assert.Contains(t, ae.Details[0], "sqlite/database -> postgres/database")
	assert.NotContains(t, ae.Error(), "nobody", "the DSN never appears in errors")
}
