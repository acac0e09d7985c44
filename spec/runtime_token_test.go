package spec_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/spec"
)

// A declared runtime token is resolved with the other secrets, and its value stays out of the spec's
// hash and of its redacted form, the one that is recorded and shown.
func TestRuntimeToken_ResolvedButNeverHashedOrShown(t *testing.T) {
	dir := t.TempDir()
	manifest := `apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: staging}
spec:
  provider: docker
  runtime:
    token: {fromFile: token.txt}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "env.yaml"), []byte(manifest), 0o600))
	const secret = "s3cret-token-value-0123456789"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token.txt"), []byte(secret+"\n"), 0o600))

	m, diags := spec.Load([]string{dir}, nil)
	require.False(t, diags.HasErrors(), "%v", diags)
	r, err := m.ResolveSecrets()
	require.NoError(t, err)
	env, ok := r.Environment("staging")
	require.True(t, ok)
	require.NotNil(t, env.Spec.Runtime.Token)
	assert.Equal(t, secret, env.Spec.Runtime.Token.Value)
	assert.Equal(t, dir, env.Source.Dir, "the environment knows the directory its relative paths resolve against")

	unresolved, _ := m.Environment("staging")
	assert.Empty(t, unresolved.Spec.Runtime.Token.Value, "the loaded manifests are not changed")
	assert.Equal(t, unresolved.SpecHash(), env.SpecHash(), "the hash does not depend on whether secrets were resolved")

	b, err := json.Marshal(env.Spec.Redacted())
	require.NoError(t, err)
	assert.NotContains(t, string(b), secret)
	assert.Contains(t, string(b), `"token":{"fromFile":"token.txt"}`)
}
