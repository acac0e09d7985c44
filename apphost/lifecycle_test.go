package apphost_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func customers() spec.Collection {
	return spec.Collection{Name: "customers", Fields: []spec.Field{
		{Name: "name", Type: spec.TypeString, Required: true},
		{Name: "email", Type: spec.TypeString, Unique: true},
		{Name: "tier", Type: spec.TypeEnum, Values: []string{"free", "pro"}, Default: "free"},
		{Name: "score", Type: spec.TypeInteger},
	}}
}

func orders() spec.Collection {
	return spec.Collection{Name: "orders", Fields: []spec.Field{
		{Name: "total", Type: spec.TypeNumber},
		{Name: "paid", Type: spec.TypeBoolean},
		{Name: "placedAt", Type: spec.TypeDatetime},
		{Name: "meta", Type: spec.TypeJSON},
	}}
}

func appSpec(cols ...spec.Collection) spec.AppSpec {
	return spec.AppSpec{Environment: "dev", Collections: cols}
}

func put(t *testing.T, p *runtimeProc, name string, s spec.AppSpec) api.App {
	t.Helper()
	a, err := p.client.PutApp(t.Context(), name, api.PutAppRequest{Spec: s}, api.PutOptions{})
	require.NoError(t, err)
	return a
}

func create(t *testing.T, p *runtimeProc, app, coll, key string, rec map[string]any) map[string]any {
	t.Helper()
	code, body := p.do(http.MethodPost, "/apps/"+app+"/api/"+coll, key, rec)
	require.Equal(t, http.StatusCreated, code, string(body))
	var out map[string]any
	require.NoError(t, json.Unmarshal(body, &out))
	return out
}

type list struct {
	Items []map[string]any `json:"items"`
	Total int              `json:"total"`
}

func listOf(t *testing.T, p *runtimeProc, path, key string) list {
	t.Helper()
	code, body := p.do(http.MethodGet, path, key, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var l list
	require.NoError(t, json.Unmarshal(body, &l))
	return l
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	c := p.client

	s := appSpec(customers())
	s.APIKeys = []spec.APIKey{{Name: "frontend", Value: spec.SecretRef{Value: "key-1"}}}
	s.Settings = map[string]string{"currency": "EUR"}
	created := put(t, p, "crm", s)
	assert.Equal(t, int64(1), created.Generation)
	assert.Equal(t, api.StatusRunning, created.Status)
	require.Len(t, created.Spec.APIKeys, 1)
	fps, err := c.Fingerprints(ctx, "crm", []string{spec.SecretHash("crm", "key-1")})
	require.NoError(t, err)
	assert.Equal(t, fps[0], created.Spec.APIKeys[0].Value.SHA256, "keys are shown as the runtime's fingerprints")
	assert.Empty(t, created.Spec.APIKeys[0].Value.Value)

	// The secret value never appears on the wire.
	code, body := p.do(http.MethodGet, "/v1/apps/crm", p.token, nil)
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, string(body), "key-1")

	same := put(t, p, "crm", s)
	assert.Equal(t, int64(1), same.Generation, "an identical spec does not bump the generation")

	s.Settings["currency"] = "USD"
	updated := put(t, p, "crm", s)
	assert.Equal(t, int64(2), updated.Generation)

	_, err = c.PutApp(ctx, "crm", api.PutAppRequest{Spec: s}, api.PutOptions{IfMatch: 1})
	require.Error(t, err)
	assert.True(t, api.IsConflict(err), "a stale If-Match answers 409: %v", err)
	s.Settings["currency"] = "GBP"
	ok, err := c.PutApp(ctx, "crm", api.PutAppRequest{Spec: s}, api.PutOptions{IfMatch: 2})
	require.NoError(t, err)
	assert.Equal(t, int64(3), ok.Generation)

	code, body = p.do(http.MethodGet, "/apps/crm/api/_settings", "key-1", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	assert.JSONEq(t, `{"currency":"GBP"}`, string(body))
	create(t, p, "crm", "customers", "key-1", map[string]any{"name": "Ann"})

	stopped, err := c.StopApp(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusStopped, stopped.Status)
	assert.Equal(t, int64(3), stopped.Generation, "stop does not bump the generation")
	code, body = p.do(http.MethodGet, "/apps/crm/api/customers", "key-1", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, string(body))

	started, err := c.StartApp(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, started.Status)
	assert.Equal(t, int64(3), started.Generation)
	assert.Equal(t, 1, listOf(t, p, "/apps/crm/api/customers", "key-1").Total)

	code, _ = p.do(http.MethodGet, "/apps/nope/api/customers", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	_, err = c.GetApp(ctx, "nope")
	assert.True(t, api.IsNotFound(err))
	_, err = c.StartApp(ctx, "nope")
	assert.True(t, api.IsNotFound(err))

	code, body = p.do(http.MethodGet, "/v1/apps", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "the management API needs the token")
	assert.Equal(t, api.CodeUnauthorized, errorCode(t, body).Code)
	code, _ = p.do(http.MethodGet, "/v1/apps", "wrong", nil)
	assert.Equal(t, http.StatusUnauthorized, code)

	rtInfo, err := c.Runtime(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rtInfo.Apps["total"])
	assert.Equal(t, filepath.Base(p.dataDir), rtInfo.Name)
	assert.NotZero(t, rtInfo.MemoryBytes)

	// Delete archives; purge removes.
	require.NoError(t, c.DeleteApp(ctx, "crm", false))
	_, err = c.GetApp(ctx, "crm")
	assert.True(t, api.IsNotFound(err))
	archived, err := filepath.Glob(filepath.Join(p.dataDir, "archive", "crm-*", "app.db"))
	require.NoError(t, err)
	assert.Len(t, archived, 1, "the deleted app's database is archived")
	assert.True(t, api.IsNotFound(c.DeleteApp(ctx, "crm", false)))

	put(t, p, "tmp", appSpec(customers()))
	require.NoError(t, c.DeleteApp(ctx, "tmp", true))
	purged, _ := filepath.Glob(filepath.Join(p.dataDir, "archive", "tmp-*"))
	assert.Empty(t, purged)
	_, err = os.Stat(filepath.Join(p.dataDir, "apps", "tmp"))
	assert.True(t, os.IsNotExist(err))

	// A re-created app starts empty.
	put(t, p, "crm", appSpec(customers()))
	assert.Equal(t, 0, listOf(t, p, "/apps/crm/api/customers", "").Total)
}

func TestInvalidSpec(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	s := appSpec(spec.Collection{Name: "Bad Name", Fields: []spec.Field{{Name: "id", Type: "string"}}},
		spec.Collection{Name: "ok", Fields: []spec.Field{{Name: "x", Type: "float"}, {Name: "e", Type: spec.TypeEnum}}})
	_, err := p.client.PutApp(t.Context(), "crm", api.PutAppRequest{Spec: s}, api.PutOptions{})
	require.Error(t, err)
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusBadRequest, ae.Status)
	assert.Equal(t, api.CodeInvalid, ae.Code)
	joined := ae.Error()
	assert.Contains(t, joined, "collections[0].name")
	assert.Contains(t, joined, "collections.ok.x.type")
	assert.Contains(t, joined, "collections.ok.e.values")
	_, err = p.client.GetApp(t.Context(), "crm")
	assert.True(t, api.IsNotFound(err), "a refused create leaves no app behind")

	code, body := p.do(http.MethodPut, "/v1/apps/Not_A_Label", p.token, `{"spec":{"environment":"dev"}}`)
	assert.Equal(t, http.StatusBadRequest, code, string(body))
	code, body = p.do(http.MethodPut, "/v1/apps/crm", p.token, `{"spec":{"environment":"dev","bogus":1}}`)
	assert.Equal(t, http.StatusBadRequest, code, string(body))
	assert.Contains(t, string(body), "bogus")
}

func TestRestartAfterKill9(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	put(t, p, "alpha", appSpec(customers(), orders()))
	put(t, p, "beta", appSpec(customers()))
	sleeping := appSpec(customers())
	sleeping.State = spec.StateStopped
	put(t, p, "gamma", sleeping)
	for i := range 20 {
		create(t, p, "alpha", "customers", "", map[string]any{"name": "c", "score": i})
	}
	create(t, p, "alpha", "orders", "", map[string]any{"total": 9.5, "paid": true, "placedAt": "2024-05-01T10:00:00+02:00", "meta": map[string]any{"a": []int{1}}})
	create(t, p, "beta", "customers", "", map[string]any{"name": "b"})
	_, err := p.client.StopApp(ctx, "beta")
	require.NoError(t, err)

	p.kill9()
	p.start()

	apps, err := p.client.ListApps(ctx)
	require.NoError(t, err)
	status := map[string]string{}
	for _, a := range apps {
		status[a.Name] = a.Status
	}
	assert.Equal(t, map[string]string{"alpha": api.StatusRunning, "beta": api.StatusStopped, "gamma": api.StatusStopped}, status)
	assert.Equal(t, 20, listOf(t, p, "/apps/alpha/api/customers", "").Total, "every acknowledged write survives kill -9")
	o := listOf(t, p, "/apps/alpha/api/orders", "")
	require.Len(t, o.Items, 1)
	assert.Equal(t, "2024-05-01T08:00:00.000000Z", o.Items[0]["placedAt"])
	assert.Equal(t, true, o.Items[0]["paid"])
	assert.Equal(t, map[string]any{"a": []any{1.0}}, o.Items[0]["meta"])
	code, _ := p.do(http.MethodGet, "/apps/beta/api/customers", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, "a stopped app stays stopped after a restart")

	_, err = p.client.StartApp(ctx, "beta")
	require.NoError(t, err)
	assert.Equal(t, 1, listOf(t, p, "/apps/beta/api/customers", "").Total)
}

func TestKeysAndRouting(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	a := appSpec(customers())
	a.APIKeys = []spec.APIKey{{Name: "k", Value: spec.SecretRef{Value: "alpha-key"}}, {Name: "k2", Value: spec.SecretRef{Value: "alpha-key-2"}}}
	a.Hostnames = []string{"alpha.example.test"}
	put(t, p, "alpha", a)
	b := appSpec(customers())
	b.APIKeys = []spec.APIKey{{Name: "k", Value: spec.SecretRef{Value: "beta-key"}}}
	put(t, p, "beta", b)
	put(t, p, "open", appSpec(customers()))

	for _, tc := range []struct {
		name string
		path string
		key  string
		hdr  []string
		want int
	}{
		{"own key", "/apps/alpha/api/customers", "alpha-key", nil, http.StatusOK},
		{"second key", "/apps/alpha/api/customers", "alpha-key-2", nil, http.StatusOK},
		{"no key", "/apps/alpha/api/customers", "", nil, http.StatusUnauthorized},
		{"another app's key", "/apps/alpha/api/customers", "beta-key", nil, http.StatusUnauthorized},
		{"runtime token is not an app key", "/apps/alpha/api/customers", p.token, nil, http.StatusUnauthorized},
		{"beta own key", "/apps/beta/api/customers", "beta-key", nil, http.StatusOK},
		{"beta with alpha key", "/apps/beta/api/customers", "alpha-key", nil, http.StatusUnauthorized},
		{"app without keys is open", "/apps/open/api/customers", "", nil, http.StatusOK},
		{"X-App header", "/api/customers", "beta-key", []string{"X-App", "beta"}, http.StatusOK},
		{"X-App header wrong key", "/api/customers", "alpha-key", []string{"X-App", "beta"}, http.StatusUnauthorized},
		{"Host", "/api/customers", "alpha-key", []string{"Host", "alpha.example.test:8080"}, http.StatusOK},
		{"Host wrong key", "/api/customers", "beta-key", []string{"Host", "alpha.example.test"}, http.StatusUnauthorized},
		{"unknown host", "/api/customers", "", []string{"Host", "nobody.example.test"}, http.StatusNotFound},
		{"unknown collection", "/apps/open/api/nothing", "", nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := p.do(http.MethodGet, tc.path, tc.key, nil, tc.hdr...)
			assert.Equal(t, tc.want, code, string(body))
		})
	}

	// A hostname belongs to one app.
	b.Hostnames = []string{"alpha.example.test"}
	_, err := p.client.PutApp(t.Context(), "beta", api.PutAppRequest{Spec: b}, api.PutOptions{})
	assert.True(t, api.IsConflict(err), "%v", err)

	// Rotating a key: the old one stops working at once.
	a.APIKeys = []spec.APIKey{{Name: "k", Value: spec.SecretRef{Value: "alpha-key-new"}}}
	put(t, p, "alpha", a)
	code, _ := p.do(http.MethodGet, "/apps/alpha/api/customers", "alpha-key", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = p.do(http.MethodGet, "/apps/alpha/api/customers", "alpha-key-new", nil)
	assert.Equal(t, http.StatusOK, code)

	// Sending back the spec read from GET (keys as hashes) changes nothing.
	got, err := p.client.GetApp(t.Context(), "alpha")
	require.NoError(t, err)
	again, err := p.client.PutApp(t.Context(), "alpha", api.PutAppRequest{Spec: got.Spec}, api.PutOptions{})
	require.NoError(t, err)
	assert.Equal(t, got.Generation, again.Generation)
	code, _ = p.do(http.MethodGet, "/apps/alpha/api/customers", "alpha-key-new", nil)
	assert.Equal(t, http.StatusOK, code)
}

func TestMaxApps(t *testing.T) {
	p := startRuntime(t, "", "--max-apps", "2")
	put(t, p, "one", appSpec(customers()))
	put(t, p, "two", appSpec(customers()))

	_, err := p.client.PutApp(t.Context(), "three", api.PutAppRequest{Spec: appSpec(customers())}, api.PutOptions{})
	require.Error(t, err)
	require.Equal(t, http.StatusConflict, api.StatusOf(err))
	require.Contains(t, err.Error(), "maximum of 2 apps")

	// Updating an app that exists is not a new app, and a deleted app frees its place.
	put(t, p, "two", appSpec(customers(), orders()))
	require.NoError(t, p.client.DeleteApp(t.Context(), "one", false))
	put(t, p, "three", appSpec(customers()))
}
