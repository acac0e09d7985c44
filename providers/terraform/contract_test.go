package terraform

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/providers"
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

// TestStateFileReadsAsShow checks that reading the local state file gives what `terraform show -json`
// gives, for the parts Observe reads (a no-op plan reads the file instead of the plan).
func TestStateFileReadsAsShow(t *testing.T) {
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Skip("terraform is not on the PATH")
	}
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "main.tf"), []byte(`
variable "token" {
  type      = string
  sensitive = true
}
resource "terraform_data" "counted" {
  count = 2
  input = count.index
}
resource "terraform_data" "keyed" {
  for_each = toset(["a", "b"])
  input    = each.key
}
output "endpoint" {
  value = "http://127.0.0.1:1"
}
`), 0o644))
	pr, err := New(providers.Config{Fleet: "acme", StateDir: t.TempDir(), Binary: "/bin/true"})
	require.NoError(t, err)
	p := pr.(*Provider)
	env := spec.Environment{Metadata: spec.Metadata{Name: "dev"}, Spec: spec.EnvironmentSpec{
		Provider: spec.ProviderTerraform, Terraform: &spec.TerraformSpec{Module: mod},
		Runtime: spec.RuntimeSpec{MaxApps: 10, IdleTimeout: spec.Duration{Duration: time.Minute}}}}
	w, err := p.prepare(t.Context(), env)
	require.NoError(t, err)
	require.NoError(t, w.tf.Apply(t.Context(), tfexec.VarFile(w.vars)))

	shown, err := w.tf.Show(t.Context())
	require.NoError(t, err)
	read, ok := readStateFile(filepath.Join(w.dir, "terraform.tfstate"))
	require.True(t, ok)
	want, got := readState(shown.Values), readState(read)
	assert.Equal(t, want, got)
	assert.Len(t, got.module, 4, "every instance of the module's resources: %v", got.module)
	assert.Equal(t, w.token, got.token)
	assert.Equal(t, env.SpecHash(), got.specHash)
}
