package apphost_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validateOpenAPI checks the document's structure and compiles every schema it holds with an
// independent JSON Schema 2020-12 implementation (OpenAPI 3.1's schema dialect).
func validateOpenAPI(t *testing.T, raw []byte) {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.Equal(t, "3.1.0", doc["openapi"])
	info := doc["info"].(map[string]any)
	assert.NotEmpty(t, info["title"])
	assert.NotEmpty(t, info["version"])
	ops := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		assert.True(t, strings.HasPrefix(path, "/"), path)
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			o := op.(map[string]any)
			id, _ := o["operationId"].(string)
			require.NotEmpty(t, id, "%s %s has an operationId", method, path)
			assert.False(t, ops[id], "operationId %q is unique", id)
			ops[id] = true
			assert.NotEmpty(t, o["responses"])
		}
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	require.NoError(t, c.AddResource("mem://openapi.json", res))
	for name := range doc["components"].(map[string]any)["schemas"].(map[string]any) {
		_, err := c.Compile("mem://openapi.json#/components/schemas/" + name)
		assert.NoError(t, err, "schema %s", name)
	}
}

// TestOpenAPIDescribesAnswers validates real answers of the data API against the app's own document.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "shop", appSpec(customers(), orders()))
	create(t, p, "shop", "customers", "", map[string]any{"name": "Ann", "score": 3})
	create(t, p, "shop", "orders", "", map[string]any{"total": 3.5, "meta": map[string]any{"k": "v"}, "placedAt": "2024-01-01T00:00:00Z"})
	code, raw := p.do(http.MethodGet, "/apps/shop/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, code)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	require.NoError(t, c.AddResource("mem://openapi.json", res))
	for _, coll := range []string{"customers", "orders"} {
		sch, err := c.Compile("mem://openapi.json#/components/schemas/" + coll + "List")
		require.NoError(t, err)
		code, body := p.do(http.MethodGet, "/apps/shop/api/"+coll, "", nil)
		require.Equal(t, http.StatusOK, code)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		require.NoError(t, err)
		assert.NoError(t, sch.Validate(inst), "GET /api/%s answers what the document says", coll)
	}
	errSchema, err := c.Compile("mem://openapi.json#/components/schemas/Error")
	require.NoError(t, err)
	_, body := p.do(http.MethodPost, "/apps/shop/api/customers", "", `{"score":"x"}`)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	require.NoError(t, err)
	assert.NoError(t, errSchema.Validate(inst))
}
