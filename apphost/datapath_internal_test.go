package apphost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/require"
)

// newShopRuntime is an in-process runtime holding the app "shop" with n customers.
func newShopRuntime(tb testing.TB, n int, cfg Config) *Runtime {
	tb.Helper()
	cfg.DataDir, cfg.Token = tb.TempDir(), "token"
	rt, err := New(tb.Context(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = rt.Close(tb.Context()) })
	body, err := json.Marshal(api.PutAppRequest{Spec: spec.AppSpec{
		Environment: "dev",
		Collections: []spec.Collection{{Name: "customers", Fields: []spec.Field{
			{Name: "name", Type: spec.TypeString, Required: true},
			{Name: "email", Type: spec.TypeString, Unique: true},
			{Name: "tier", Type: spec.TypeEnum, Values: []string{"free", "pro"}, Default: "free"},
			{Name: "score", Type: spec.TypeInteger},
		}}},
	}})
	require.NoError(tb, err)
	req := httptest.NewRequest(http.MethodPut, "/v1/apps/shop", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer token")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	require.Equal(tb, http.StatusCreated, rec.Code, rec.Body.String())
	for i := 1; i <= n; i++ {
		b := fmt.Sprintf(`{"name":"Customer %d","email":"customer%d@example.test","score":%d}`, i, i, i%100)
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/apps/shop/api/customers", bytes.NewReader([]byte(b))))
		require.Equal(tb, http.StatusCreated, rec.Code, rec.Body.String())
	}
	return rt
}

// BenchmarkDataPath is the runtime's own cost of the data API's reads, past HTTP parsing: routing,
// admission, the database and the encoding, for the requests the throughput benchmarks send.
func BenchmarkDataPath(b *testing.B) {
	// With kept answers (the default) a URL asked for again is answered from what the app kept of
	// the last read; with Config.NoKeptAnswers every request reads the database.
	for _, v := range []struct {
		name   string
		noKept bool
	}{{"kept", false}, {"nothing-kept", true}} {
		rt := newShopRuntime(b, 1000, Config{NoKeptAnswers: v.noKept})
		for _, bc := range []struct{ name, url string }{
			{"page20", "/apps/shop/api/customers?limit=20"},
			{"byID", "/apps/shop/api/customers/500"},
		} {
			b.Run(bc.name+"-"+v.name, func(b *testing.B) {
				serveAgain(b, rt, httptest.NewRequest(http.MethodGet, bc.url, nil), http.StatusOK)
			})
		}
	}
}
