package terraform

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/spec"
)

// TestCloudVMModuleFollowsTheContract checks examples/terraform-cloud-vm, which no test can apply (no
// cloud here): its module takes token, outputs endpoint and declares every variable its manifest sets.
func TestCloudVMModuleFollowsTheContract(t *testing.T) {
	ms, diags := spec.LoadWith([]string{"../../examples/terraform-cloud-vm"}, nil, spec.LoadOptions{SecretsOptional: true})
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Len(t, ms.Environments, 1)
	env := ms.Environments[0]
	dir, err := filepath.Abs("../../examples/terraform-cloud-vm/runtime")
	require.NoError(t, err)
	info, err := inspect(env, dir)
	require.NoError(t, err)
	for _, v := range []string{"environment", "fleet", "idle_timeout", "max_apps"} {
		require.True(t, info.variables[v], "the module takes %s from appfleet", v)
	}
}
