package spec_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/require"
)

func TestLoadWith_SecretsOptional(t *testing.T) {
	dir := t.TempDir()
	manifest := `apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: crm}
spec:
  environment: dev
  apiKeys:
    - {name: web, value: {fromEnv: APPFLEET_TEST_SURELY_UNSET}}
    - {name: ops, value: {fromFile: missing.key}}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(manifest), 0o600))

	_, diags := spec.Load([]string{dir}, nil)
	require.Len(t, diags.Errors(), 2, "by default an unreadable secret is an error: %v", diags)

	m, diags := spec.LoadWith([]string{dir}, nil, spec.LoadOptions{SecretsOptional: true})
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Len(t, diags.Warnings(), 2)
	require.Contains(t, diags.Warnings()[0].Summary, "APPFLEET_TEST_SURELY_UNSET")
	_, err := m.ResolveSecrets()
	require.Error(t, err, "resolving still needs the values")
}
