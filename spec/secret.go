package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// SecretRef points at a secret kept outside the manifests: an environment variable or a file.
//
// In memory it may also carry the resolved Value (only ever sent to a runtime's management API)
// or the SHA256 a runtime reports in its place. Its JSON form depends on which is set:
// a resolved value is a JSON string, a hash is {"sha256": "..."}, a reference is {"fromEnv": ...}.
// Renderers must call Redacted before printing anything that holds a SecretRef.
type SecretRef struct {
	FromEnv  string `yaml:"fromEnv,omitempty" json:"fromEnv,omitempty"`
	FromFile string `yaml:"fromFile,omitempty" json:"fromFile,omitempty"`
	// Value is the resolved secret. It never appears in YAML, plans, logs or errors.
	Value string `yaml:"-" json:"-"`
	// SHA256 stands for the value where it may not go: a DSN's SecretHash, an API key's fingerprint as
	// a runtime reports it (an HMAC of its SecretHash under the runtime's own secret).
	SHA256 string `yaml:"-" json:"-"`
}

// SecretHash is the salted hash that stands for a secret value wherever the value itself must not go.
// The salt is the name of the app that owns the secret, so equal secrets of two apps hash differently.
func SecretHash(salt, value string) string {
	sum := sha256.Sum256([]byte("appfleet:" + salt + "\x00" + value))
	return hex.EncodeToString(sum[:])
}

// Redacted returns the reference with its value replaced by its salted hash.
func (r SecretRef) Redacted(salt string) SecretRef {
	if r.Value != "" {
		r.SHA256 = SecretHash(salt, r.Value)
		r.Value = ""
	}
	return r
}

// String never shows the value.
func (r SecretRef) String() string {
	switch {
	case r.FromEnv != "":
		return "env:" + r.FromEnv
	case r.FromFile != "":
		return "file:" + r.FromFile
	default:
		return "(sensitive)"
	}
}

type secretRefJSON struct {
	FromEnv  string `json:"fromEnv,omitempty"`
	FromFile string `json:"fromFile,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// MarshalJSON writes the value as a string when resolved, else the hash, else the reference.
func (r SecretRef) MarshalJSON() ([]byte, error) {
	if r.Value != "" {
		return json.Marshal(r.Value)
	}
	return json.Marshal(secretRefJSON{FromEnv: r.FromEnv, FromFile: r.FromFile, SHA256: r.SHA256})
}

// UnmarshalJSON reads any of the three forms MarshalJSON writes.
func (r *SecretRef) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*r = SecretRef{Value: s}
		return nil
	}
	var o secretRefJSON
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("secret: want a string or an object with fromEnv, fromFile or sha256: %w", err)
	}
	*r = SecretRef{FromEnv: o.FromEnv, FromFile: o.FromFile, SHA256: o.SHA256}
	return nil
}

// Redacted returns a deep-enough copy of the spec whose secrets are hashes, safe to print or store.
func (s AppSpec) Redacted(appName string) AppSpec {
	if s.Database.DSN != nil {
		dsn := s.Database.DSN.Redacted(appName)
		s.Database.DSN = &dsn
	}
	if s.APIKeys != nil {
		keys := make([]APIKey, len(s.APIKeys))
		for i, k := range s.APIKeys {
			keys[i] = APIKey{Name: k.Name, Value: k.Value.Redacted(appName)}
		}
		s.APIKeys = keys
	}
	return s
}

// SpecHash is a stable digest of the environment's spec: a provider records it when it starts a runtime,
// and the planner compares it with the declared one to see that the runtime's settings changed.
//
// It hashes the Redacted spec: a declared token counts by where it comes from, not by its value, so the
// hash is the same whether or not secrets were resolved.
func (e Environment) SpecHash() string {
	b, _ := json.Marshal(e.Spec.Redacted()) // a redacted EnvironmentSpec holds no secret and always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Redacted returns a copy of the spec that holds no secret value: a declared runtime token keeps only its
// reference (fromEnv or fromFile). It is the form that is hashed, recorded by providers and shown in plans.
func (s EnvironmentSpec) Redacted() EnvironmentSpec {
	if s.Runtime.Token != nil {
		s.Runtime.Token = &SecretRef{FromEnv: s.Runtime.Token.FromEnv, FromFile: s.Runtime.Token.FromFile}
	}
	return s
}
