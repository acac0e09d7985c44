package apphost

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newLimitedRuntime is an in-process runtime holding the running app "flooded" with
// limits.maxInFlight 2 and one collection, logging as JSON into the returned buffer.
func newLimitedRuntime(tb testing.TB) (*Runtime, *app, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	rt, err := New(tb.Context(), Config{DataDir: tb.TempDir(), Token: "token", Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = rt.Close(tb.Context()) })
	body, err := json.Marshal(api.PutAppRequest{Spec: spec.AppSpec{
		Environment: "dev",
		Limits:      spec.Limits{MaxInFlight: 2},
		Collections: []spec.Collection{{Name: "customers", Fields: []spec.Field{{Name: "name", Type: spec.TypeString}}}},
	}})
	require.NoError(tb, err)
	req := httptest.NewRequest(http.MethodPut, "/v1/apps/flooded", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer token")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	require.Equal(tb, http.StatusCreated, rec.Code, rec.Body.String())
	return rt, rt.lookup("flooded"), logs
}

// A request beyond the limit costs no encoding, but it is answered and counted exactly as before: the
// error document writeError would send, Retry-After, the app's stats and metrics; and however many
// there are, the log says so once per interval, not once per request.
func TestRejectionIsAnsweredCountedAndLoggedOnce(t *testing.T) {
	rt, a, logs := newLimitedRuntime(t)
	a.inFlight.Store(2) // two requests hold the app's slots

	want := httptest.NewRecorder()
	writeError(want, http.StatusServiceUnavailable, api.CodeLimitExceeded, `app "flooded" has 2 requests in flight, its limit`, nil)
	for range 5 {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/apps/flooded/api/customers", nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, want.Body.String(), rec.Body.String())
		assert.Equal(t, want.Header().Get("Content-Length"), rec.Header().Get("Content-Length"))
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	}
	assert.EqualValues(t, 2, a.inFlight.Load(), "a rejected request gives its slot back")
	v := a.view()
	assert.EqualValues(t, 5, v.Stats.Requests)
	assert.EqualValues(t, 5, v.Stats.Rejected)
	assert.NotNil(t, v.Stats.LastRequest)
	metrics := map[string]float64{}
	families, err := rt.metrics.Gather()
	require.NoError(t, err)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] == "flooded" && m.GetCounter() != nil {
				name := f.GetName()
				if c := labels["cause"]; c != "" {
					name += "{" + c + "}"
				}
				metrics[name] = m.GetCounter().GetValue()
			}
		}
	}
	assert.Equal(t, 5.0, metrics["appfleet_app_rejected_total{max_in_flight}"])
	assert.Equal(t, 0.0, metrics["appfleet_app_rejected_total{queue_full}"])
	assert.Equal(t, 5.0, metrics["appfleet_app_requests_total"])
	assert.Equal(t, 1, strings.Count(logs.String(), "requests beyond limits.maxInFlight answered 503"), logs.String())
	assert.Contains(t, logs.String(), `"app":"flooded"`)

	a.inFlight.Store(0)
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/apps/flooded/api/customers", nil))
	assert.Equal(t, http.StatusOK, rec.Code, "below the limit, requests pass")
}

// BenchmarkRejection is what a flood costs the runtime per request beyond an app's limit, past HTTP
// parsing: routing, the decision and the answer.
func BenchmarkRejection(b *testing.B) {
	rt, a, _ := newLimitedRuntime(b)
	a.inFlight.Store(2)
	serveAgain(b, rt, httptest.NewRequest(http.MethodGet, "/apps/flooded/api/customers?limit=20", nil), http.StatusServiceUnavailable)
}

// serveAgain has rt answer req for as long as the benchmark runs, allocations reported, and fails
// unless the answer is want.
func serveAgain(b *testing.B, rt *Runtime, req *http.Request, want int) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		rt.ServeHTTP(w, req)
	}
	if w.status != want {
		b.Fatalf("status %d, want %d", w.status, want)
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// syncBuffer is a bytes.Buffer that the runtime's goroutines may log into while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
