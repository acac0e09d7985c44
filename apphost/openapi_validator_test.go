package apphost_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIIndependentValidator has an independent OpenAPI 3.1 implementation check the app's document
// against the OpenAPI specification's own schema, then check real requests and answers against the document.
func TestOpenAPIIndependentValidator(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "shop", appSpec(customers(), orders()))
	code, raw := p.do(http.MethodGet, "/apps/shop/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, code, string(raw))

	doc, err := libopenapi.NewDocument(raw)
	require.NoError(t, err)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("document: %s: %s", e.Message, e.Reason)
	}
	require.True(t, ok)

	exchanges := []struct {
		name, method, path, body string
		want                     int
		badRequest               bool // the request breaks the document on purpose: check only the answer
	}{
		{"create", http.MethodPost, "/apps/shop/api/customers", `{"name":"Ann","email":"ann@example.test","score":3}`, http.StatusCreated, false},
		{"list", http.MethodGet, "/apps/shop/api/customers?limit=10&sort=-name", "", http.StatusOK, false},
		{"get", http.MethodGet, "/apps/shop/api/customers/1", "", http.StatusOK, false},
		{"patch", http.MethodPatch, "/apps/shop/api/customers/1", `{"score":4}`, http.StatusOK, false},
		{"invalid input", http.MethodPost, "/apps/shop/api/customers", `{"score":"many"}`, http.StatusBadRequest, true},
		{"missing record", http.MethodGet, "/apps/shop/api/customers/999", "", http.StatusNotFound, false},
		{"settings", http.MethodGet, "/apps/shop/api/_settings", "", http.StatusOK, false},
	}
	for _, x := range exchanges {
		req, err := http.NewRequest(x.method, "http://"+p.addr+x.path, strings.NewReader(x.body))
		require.NoError(t, err)
		if x.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, x.name)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, x.want, resp.StatusCode, "%s: %s", x.name, body)

		// The validator reads both bodies again.
		req.Body = io.NopCloser(strings.NewReader(x.body))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var ok bool
		if x.badRequest {
			ok, verrs = v.ValidateHttpResponse(req, resp)
		} else {
			ok, verrs = v.ValidateHttpRequestResponse(req, resp)
		}
		for _, e := range verrs {
			t.Errorf("%s %s: %s: %s", x.method, x.path, e.Message, e.Reason)
		}
		require.True(t, ok, x.name)
	}
}
