package apphost_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// What a runtime reports of an API key cannot be checked against a guessed key offline: it is not the
// key's salted hash (its salt, the app's name, is public) but an HMAC of it under a secret only the
// runtime holds. The fingerprints endpoint answers the same value for a hash the caller computes, so a
// control plane can tell whether its declared key matches without sending it.
func TestKeyFingerprints(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	s := appSpec(customers())
	s.APIKeys = []spec.APIKey{{Name: "frontend", Value: spec.SecretRef{Value: "key-1"}}}
	created := put(t, p, "crm", s)
	require.Len(t, created.Spec.APIKeys, 1)
	got := created.Spec.APIKeys[0].Value.SHA256
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), got)
	assert.NotEqual(t, spec.SecretHash("crm", "key-1"), got, "a key is not reported as its salted hash")
	code, body := p.do(http.MethodGet, "/v1/apps/crm", p.token, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	assert.NotContains(t, string(body), spec.SecretHash("crm", "key-1"))

	hashes := []string{spec.SecretHash("crm", "key-1"), spec.SecretHash("crm", "key-2")}
	fps, err := p.client.Fingerprints(ctx, "crm", hashes)
	require.NoError(t, err)
	require.Len(t, fps, 2)
	assert.Equal(t, got, fps[0], "the fingerprint of the declared key's hash is what GET reports")
	assert.NotEqual(t, got, fps[1], "another key has another fingerprint")
	again, err := p.client.Fingerprints(ctx, "crm", hashes[1:])
	require.NoError(t, err)
	assert.Equal(t, fps[1:], again, "fingerprints are stable")

	// The endpoint needs the token, and well-formed hashes.
	code, _ = p.do(http.MethodPost, "/v1/apps/crm/fingerprints", "", api.FingerprintsRequest{Hashes: hashes})
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = p.do(http.MethodPost, "/v1/apps/crm/fingerprints", "key-1", api.FingerprintsRequest{Hashes: hashes})
	assert.Equal(t, http.StatusUnauthorized, code, "an app's key is not the runtime's token")
	code, body = p.do(http.MethodPost, "/v1/apps/crm/fingerprints", p.token, api.FingerprintsRequest{Hashes: []string{"key-1"}})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(body), "hashes[0]")

	// The key still opens the app's data API; another does not.
	code, body = p.do(http.MethodGet, "/apps/crm/api/customers", "key-1", nil)
	assert.Equal(t, http.StatusOK, code, string(body))
	code, _ = p.do(http.MethodGet, "/apps/crm/api/customers", "key-2", nil)
	assert.Equal(t, http.StatusUnauthorized, code)

	// A spec read back from GET, its key as the fingerprint, can be PUT again and keeps the key.
	same := put(t, p, "crm", created.Spec)
	assert.Equal(t, created.Generation, same.Generation, "the fingerprint stands for the key the app has")
	code, _ = p.do(http.MethodGet, "/apps/crm/api/customers", "key-1", nil)
	assert.Equal(t, http.StatusOK, code)

	// The secret lives in the data dir: a restarted runtime reports the same fingerprint, another
	// runtime another one.
	p.stop()
	p.start()
	after, err := p.client.GetApp(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, got, after.Spec.APIKeys[0].Value.SHA256)
	other := startRuntime(t, "")
	ofps, err := other.client.Fingerprints(ctx, "crm", hashes[:1])
	require.NoError(t, err)
	assert.NotEqual(t, got, ofps[0])
}
