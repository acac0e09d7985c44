package apphost_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/appfleet/appfleet/apphost"
	"github.com/appfleet/appfleet/apphost/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInputsAreStrict: duplicate keys and invalid UTF-8 are refused by the data and management APIs
// alike; PATCH refuses unknown and read-only fields like POST; errors speak of fields, not Go types;
// a 500 carries a request id and never SQL.
func TestInputsAreStrict(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "crm", appSpec(customers(), orders()))
	rec := create(t, p, "crm", "customers", "", map[string]any{"name": "Ada"})
	one := "/apps/crm/api/customers/1"
	require.EqualValues(t, 1, rec["id"])

	bad := func(method, path, body, want string) {
		t.Helper()
		code, resp := p.do(method, path, "", body)
		assert.Equal(t, http.StatusBadRequest, code, "%s %s %q: %s", method, path, body, resp)
		e := errorCode(t, resp)
		all := e.Message + "\n" + strings.Join(e.Details, "\n")
		assert.Contains(t, all, want, "%s %s %q", method, path, body)
		assert.NotContains(t, all, "json:", "no Go error text")
		assert.NotContains(t, all, "interface", "no Go type names")
	}
	bad(http.MethodPost, "/apps/crm/api/customers", `{"name":"a","name":"b"}`, `the key "name" is given twice`)
	bad(http.MethodPatch, one, `{"name":"a","name":"b"}`, `the key "name" is given twice`)
	bad(http.MethodPost, "/apps/crm/api/orders", `{"meta":{"a":1,"a":2}}`, `the key "a" is given twice`)
	bad(http.MethodPost, "/apps/crm/api/customers", "{\"name\":\"\xff\"}", "not valid UTF-8 (at byte 9)")
	bad(http.MethodPatch, one, `{"nickname":"x"}`, "nickname: unknown field")
	bad(http.MethodPatch, one, `{"id":7}`, "id: is read-only: the runtime assigns it")
	bad(http.MethodPost, "/apps/crm/api/customers", `{"name":"x","createdAt":"2020-01-01T00:00:00Z"}`, "createdAt: is read-only")
	bad(http.MethodPost, "/apps/crm/api/customers", `{"name":"x","score":"abc"}`, `score: want a whole number, got "abc"`)
	bad(http.MethodPost, "/apps/crm/api/customers", `[1]`, "the body must be a JSON object, not an array")
	bad(http.MethodPost, "/apps/crm/api/customers", `{"name":`, "the body is not valid JSON")
	bad(http.MethodPost, "/apps/crm/api/customers", `{"name":"x"} {}`, "more follows it")
	code, body := p.do(http.MethodGet, one, "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"name":"Ada"`, "nothing refused was written")

	mgmt := func(body, want string) {
		t.Helper()
		code, resp := p.do(http.MethodPut, "/v1/apps/other", p.token, body)
		assert.Equal(t, http.StatusBadRequest, code, "%q: %s", body, resp)
		e := errorCode(t, resp)
		assert.Contains(t, e.Message, want, body)
		assert.NotContains(t, e.Message, "json:", body)
	}
	mgmt(`{"spec":{"environment":"dev"},"spec":{"environment":"prod"}}`, `the key "spec" is given twice`)
	mgmt("{\"spec\":{\"environment\":\"d\xffv\"}}", "not valid UTF-8")
	mgmt(`{"spec":{"limits":{"maxInFlight":"x"}}}`, "spec.limits.maxInFlight: want a whole number, got a string")
	mgmt(`{"spec":{},"bogus":1}`, `unknown field "bogus"`)
	_, err := p.client.GetApp(t.Context(), "other")
	assert.True(t, api.IsNotFound(err), "no refused request created anything")

	// An internal error: the answer names a request id, the log holds the SQL.
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+"/apps/crm/api/_test/sqlerror", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	id := resp.Header.Get(apphost.HeaderRequestID)
	require.Len(t, id, 16)
	var eb api.ErrorBody
	require.NoError(t, jsonDecode(resp.Body, &eb))
	assert.Contains(t, eb.Error.Message, id)
	assert.NotContains(t, eb.Error.Message, "no_such_table")
	require.Eventually(t, func() bool { return strings.Contains(p.logText(), id) }, 5e9, 1e7)
	for _, line := range strings.Split(p.logText(), "\n") {
		if strings.Contains(line, id) {
			assert.Contains(t, line, "no_such_table", "the log has what the answer does not")
		}
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
