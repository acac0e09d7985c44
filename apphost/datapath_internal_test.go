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
func newShopRuntime(tb testing.TB, n int) *Runtime {
	tb.Helper()
	rt, err := New(tb.Context(), Config{DataDir: tb.TempDir(), Token: "token"})
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
	rt := newShopRuntime(b, 1000)
	// The runtime keeps the answer to a read asked for twice until the next write, so the same
	// URL again and again measures that; the "-each-different" ones ask for a different first page
	// (limits 1 to 39, 20 on average) or record (ids 1 to 1,000) every time and read the database
	// each time.
	for _, bc := range []struct {
		name string
		url  func(i int) string
	}{
		{"page20", func(int) string { return "/apps/shop/api/customers?limit=20" }},
		{"byID", func(int) string { return "/apps/shop/api/customers/500" }},
		{"page20-each-different", func(i int) string { return fmt.Sprintf("/apps/shop/api/customers?limit=%d", i%39+1) }},
		{"byID-each-different", func(i int) string { return fmt.Sprintf("/apps/shop/api/customers/%d", i%1000+1) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reqs := make([]*http.Request, 1000)
			for i := range reqs {
				reqs[i] = httptest.NewRequest(http.MethodGet, bc.url(i), nil)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				clear(w.h)
				rt.ServeHTTP(w, reqs[i%len(reqs)])
				i++
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
