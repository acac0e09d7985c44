package apphost

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/registry"
	"github.com/appfleet/appfleet/spec"
)

// metaFingerprintKey is the registry's meta key of the runtime's fingerprint secret (hex of 32 random
// bytes). It never leaves the data dir: no answer holds it or anything it can be recovered from.
const metaFingerprintKey = "key_fingerprint_secret"

// maxFingerprintHashes bounds one fingerprints request.
const maxFingerprintHashes = 1024

// fingerprintSecret returns the data dir's fingerprint secret, creating it on first use.
func fingerprintSecret(ctx context.Context, reg *registry.Registry) ([]byte, error) {
	v, err := reg.Meta(ctx, metaFingerprintKey)
	if err != nil {
		return nil, err
	}
	if v == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		v = hex.EncodeToString(b)
		if err := reg.SetMeta(ctx, metaFingerprintKey, v); err != nil {
			return nil, err
		}
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("meta %s is not 32 bytes of hex", metaFingerprintKey)
	}
	return b, nil
}

// fingerprint is what the runtime reports for a secret whose salted hash (spec.SecretHash) is h:
// HMAC-SHA256 of h under the runtime's secret. The registry keeps h (beside the secret, in the data dir);
// what leaves the runtime is only the fingerprint, which cannot be checked against a guessed value
// without the secret.
func (rt *Runtime) fingerprint(h string) string {
	mac := hmac.New(sha256.New, rt.fpKey)
	mac.Write([]byte(h))
	return hex.EncodeToString(mac.Sum(nil))
}

// reported is the spec as it leaves the runtime: secrets as salted hashes (Redacted), API keys as their
// fingerprints.
func (rt *Runtime) reported(name string, s spec.AppSpec) spec.AppSpec {
	s = s.Redacted(name)
	for i, k := range s.APIKeys {
		s.APIKeys[i].Value = spec.SecretRef{SHA256: rt.fingerprint(k.Value.SHA256)}
	}
	return s
}

// keyHash is the salted hash the registry keeps for a key sent as a hash: the key of cur whose
// fingerprint it is (a spec read back from GET can be PUT again), else the hash itself.
func (rt *Runtime) keyHash(sent string, cur spec.AppSpec) string {
	for _, k := range cur.APIKeys {
		if hmac.Equal([]byte(rt.fingerprint(k.Value.SHA256)), []byte(sent)) {
			return k.Value.SHA256
		}
	}
	return sent
}

// handleFingerprints answers the fingerprints of the salted hashes the request lists, in order, so that
// the control plane can tell whether a declared key matches the one an app has without sending values.
func (rt *Runtime) handleFingerprints(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	b, err := readStrictJSON(w, r, maxSpecBytes)
	var req api.FingerprintsRequest
	if err == nil {
		err = decodeStrict(b, &req)
	}
	if err == nil && !nameRE.MatchString(name) {
		err = fmt.Errorf("%q is not an app name", name)
	}
	if err == nil && len(req.Hashes) > maxFingerprintHashes {
		err = fmt.Errorf("at most %d hashes per request, got %d", maxFingerprintHashes, len(req.Hashes))
	}
	for i, h := range req.Hashes {
		if err == nil && !hashRE.MatchString(h) {
			err = fmt.Errorf("hashes[%d]: want 64 lowercase hex digits (spec.SecretHash), got %q", i, h)
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeInvalid, fmt.Sprintf("app %q: the body is not a valid fingerprints request: %v", name, err), nil)
		return
	}
	out := api.Fingerprints{Fingerprints: make([]string, len(req.Hashes))}
	for i, h := range req.Hashes {
		out.Fingerprints[i] = rt.fingerprint(h)
	}
	writeJSON(w, http.StatusOK, out)
}
