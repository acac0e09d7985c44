package terraform_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/providertest"
	"github.com/appfleet/appfleet/providers/terraform"
	"github.com/appfleet/appfleet/spec"
)

// binary is the real appfleet command, built once for the package's tests.
var binary string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &binary)) }

const fleet = "acme"

// module is examples/terraform-local's module: the one users start from, applied for real.
var module, _ = filepath.Abs("../../examples/terraform-local/runtime")

func needTerraform(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Skip("terraform is not on the PATH; these tests apply real modules with it")
	}
}

func newEnv(name string, vars map[string]any) spec.Environment {
	return spec.Environment{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindEnvironment,
		Metadata:   spec.Metadata{Name: name},
		Spec: spec.EnvironmentSpec{
			Provider:  spec.ProviderTerraform,
			Terraform: &spec.TerraformSpec{Module: module, Variables: vars},
			Runtime:   spec.RuntimeSpec{MaxApps: 100, IdleTimeout: spec.Duration{Duration: 10 * time.Minute}},
		},
	}
}

func newProvider(t *testing.T, stateDir string) providers.Provider {
	t.Helper()
	p, err := terraform.New(providers.Config{Fleet: fleet, StateDir: stateDir, Binary: binary})
	require.NoError(t, err)
	return p
}

// pidOf is the pid of the runtime the example module started, from the pid file in its data dir.
func pidOf(t *testing.T, obs providers.Observed) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(obs.Detail["workingDir"], "runtime-data", "runtime.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// busyAddr returns a loopback address something listens on until the test ends.
func busyAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func TestConformance(t *testing.T) {
	needTerraform(t)
	providertest.Run(t, func(t *testing.T) providertest.Target {
		return providertest.Target{
			Provider: newProvider(t, t.TempDir()),
			Fleet:    fleet,
			Env:      newEnv("dev", nil),
			Crash: func(t *testing.T, obs providers.Observed) {
				require.NoError(t, syscall.Kill(pidOf(t, obs), syscall.SIGKILL))
			},
			Conflict: func(t *testing.T) (spec.Environment, string) {
				addr := busyAddr(t)
				return newEnv("dev", map[string]any{"listen": addr}), addr
			},
		}
	})
}

func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err != nil || len(b) == 0
}

// TestWorkingDir checks the working dir's layout and that the token reaches Terraform only through the
// 0600 var file: never in the root module, a command line or a plan's nested changes.
func TestWorkingDir(t *testing.T) {
	needTerraform(t)
	stateDir := t.TempDir()
	p := newProvider(t, stateDir)
	env := newEnv("dev", map[string]any{"log_level": "info"})
	providertest.DestroyOnCleanup(t, p, env)
	ep, err := p.Apply(t.Context(), env)
	require.NoError(t, err)

	dir := filepath.Join(stateDir, "environments", "dev")
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "Terraform's state holds the token: the working dir is private")
	fi, err = os.Stat(filepath.Join(dir, "appfleet.tfvars.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	main, err := os.ReadFile(filepath.Join(dir, "main.tf.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(main), ep.Token)
	assert.Contains(t, string(main), `"appfleet_binary": "`+binary+`"`, "the module declares appfleet_binary: it is passed")
	assert.Contains(t, string(main), `"log_level": "info"`)

	// The runtime got the token from a file, not its command line or environment.
	obs, err := p.Observe(t.Context(), env)
	require.NoError(t, err)
	pid := pidOf(t, obs)
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	require.NoError(t, err)
	assert.NotContains(t, string(cmdline), ep.Token)
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	require.NoError(t, err)
	assert.NotContains(t, string(environ), ep.Token)
	assert.Empty(t, obs.Changes, "nothing to change right after apply")

	// A change of a module variable is a nested change, with its attribute, and no secret in it.
	changed := newEnv("dev", map[string]any{"log_level": "debug"})
	obs, err = p.Observe(t.Context(), changed)
	require.NoError(t, err)
	require.NotEmpty(t, obs.Changes)
	c := obs.Changes[0]
	assert.Equal(t, "module.runtime.terraform_data.server", c.Address)
	assert.Equal(t, "replace", c.Action)
	assert.Contains(t, c.Diffs, providers.FieldDiff{Path: "triggers_replace.log_level", Kind: "change", Before: `"info"`, After: `"debug"`})
	assert.NotContains(t, strings.Join(strings.Fields(strings.TrimSpace(jsonOf(t, obs.Changes))), ""), ep.Token)

	// Destroy stops the runtime and archives the working dir.
	require.NoError(t, p.Destroy(t.Context(), changed))
	assert.True(t, processGone(pid), "the runtime is gone after destroy")
	assert.NoDirExists(t, dir)
	archived, err := filepath.Glob(filepath.Join(stateDir, "archive", "environments", "dev-*", "runtime-data", "registry.db"))
	require.NoError(t, err)
	assert.Len(t, archived, 1, "the data is archived, not deleted")
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestBadModulesNameTheEnvironment applies three broken environments beside a good one, in parallel: each
// broken one fails with an error that names it and its cause, and the good one is applied regardless.
func TestBadModulesNameTheEnvironment(t *testing.T) {
	needTerraform(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "main.tf"), []byte(body), 0o644))
		return p
	}
	token := "variable \"token\" {\n  type      = string\n  sensitive = true\n}\n"
	noEndpoint := write("no-endpoint", token)
	broken := write("broken", token+"output \"endpoint\" {\n  value = var.nowhere\n}\n")

	p := newProvider(t, t.TempDir())
	envs := map[string]spec.Environment{
		"good":        newEnv("good", nil),
		"no-endpoint": newEnv("no-endpoint", nil),
		"missing":     newEnv("missing", nil),
		"broken":      newEnv("broken", nil),
	}
	envs["no-endpoint"].Spec.Terraform.Module = noEndpoint
	envs["missing"].Spec.Terraform.Module = filepath.Join(dir, "not-there")
	envs["broken"].Spec.Terraform.Module = broken
	providertest.DestroyOnCleanup(t, p, envs["good"])

	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, env := range envs {
		wg.Go(func() {
			_, err := p.Apply(t.Context(), env)
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	wg.Wait()

	require.NoError(t, errs["good"], "a good environment is applied whatever its neighbours do")
	for name, want := range map[string]string{
		"no-endpoint": `has no output "endpoint": the module must output the runtime's base URL`,
		"missing":     "does not exist",
		"broken":      "Reference to undeclared input variable",
	} {
		require.Error(t, errs[name], name)
		assert.Contains(t, errs[name].Error(), `environment "`+name+`"`)
		assert.Contains(t, errs[name].Error(), want)
	}
	obs, err := p.Observe(t.Context(), envs["good"])
	require.NoError(t, err)
	assert.True(t, obs.Running)
	_, err = p.Observe(t.Context(), envs["missing"])
	require.ErrorIs(t, err, providers.ErrNotFound, "nothing was made for a module that does not exist")
}

// TestMissingBinary names the binary and the fix.
func TestMissingBinary(t *testing.T) {
	env := newEnv("dev", nil)
	env.Spec.Terraform.Binary = "terraform-not-installed-here"
	_, err := newProvider(t, t.TempDir()).Apply(t.Context(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `environment "dev"`)
	assert.Contains(t, err.Error(), `terraform binary "terraform-not-installed-here" is not on the PATH`)
}

// TestApplyPlanIsExactOrRefused applies the Terraform plan an Observe made, and refuses one made before
// the state changed, or one this working dir does not hold.
func TestApplyPlanIsExactOrRefused(t *testing.T) {
	needTerraform(t)
	p := newProvider(t, t.TempDir())
	pa := p.(providers.PlanApplier)
	env := newEnv("dev", map[string]any{"log_level": "info"})
	providertest.DestroyOnCleanup(t, p, env)
	_, err := p.Apply(t.Context(), env)
	require.NoError(t, err)

	debug := newEnv("dev", map[string]any{"log_level": "debug"})
	obs, err := p.Observe(t.Context(), debug)
	require.NoError(t, err)
	require.NotEmpty(t, obs.Plan, "a plan that changes something is kept for apply")
	ep, err := pa.ApplyPlan(t.Context(), debug, obs.Plan)
	require.NoError(t, err)
	after, err := p.Observe(t.Context(), debug)
	require.NoError(t, err)
	assert.Empty(t, after.Changes, "the saved plan brought the module to the declared variables")
	assert.Empty(t, after.Plan, "a plan that changes nothing is not kept")
	assert.Equal(t, ep, after.Endpoint)

	warn := newEnv("dev", map[string]any{"log_level": "warn"})
	stale, err := p.Observe(t.Context(), warn)
	require.NoError(t, err)
	_, err = p.Apply(t.Context(), warn) // the state changes after the plan was made
	require.NoError(t, err)
	_, err = pa.ApplyPlan(t.Context(), warn, stale.Plan)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `environment "dev": apply the saved Terraform plan: it is stale`)

	_, err = pa.ApplyPlan(t.Context(), warn, "0123456789abcdef0123456789abcdef")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not in")
}

// TestFreshCheckoutWithSharedBackend applies from one state dir and observes from another, as a CI runner
// with the same manifests and a shared backend would: no change, the same endpoint, the token read back
// from Terraform's state. Init runs once per working dir, not on every plan.
func TestFreshCheckoutWithSharedBackend(t *testing.T) {
	needTerraform(t)
	shared := t.TempDir()
	env := newEnv("dev", map[string]any{"data_dir": filepath.Join(shared, "data")})
	env.Spec.Terraform.Backend = &spec.TerraformBackend{Type: "local", Config: map[string]any{"path": filepath.Join(shared, "dev.tfstate")}}

	first := newProvider(t, t.TempDir())
	providertest.DestroyOnCleanup(t, first, env)
	ep, err := first.Apply(t.Context(), env)
	require.NoError(t, err)

	freshDir := t.TempDir()
	fresh := newProvider(t, freshDir)
	obs, err := fresh.Observe(t.Context(), env)
	require.NoError(t, err)
	assert.True(t, obs.Running)
	assert.Empty(t, obs.Changes, "a fresh checkout plans no change")
	assert.Equal(t, ep, obs.Endpoint, "endpoint and token read back from the state")
	assert.Equal(t, env.SpecHash(), obs.SpecHash)

	initKey := filepath.Join(freshDir, "environments", "dev", ".terraform", "appfleet-init")
	before, err := os.Stat(initKey)
	require.NoError(t, err)
	_, err = fresh.Observe(t.Context(), env)
	require.NoError(t, err)
	after, err := os.Stat(initKey)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "no second init for an unchanged working dir")
}

// TestTooOldBinary names the version found and the one needed.
func TestTooOldBinary(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "terraform")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho '{\"terraform_version\": \"1.3.9\"}'\n"), 0o755))
	env := newEnv("dev", nil)
	env.Spec.Terraform.Binary = fake
	_, err := newProvider(t, t.TempDir()).Apply(t.Context(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `environment "dev"`)
	assert.Contains(t, err.Error(), "terraform 1.3.9 at "+fake+" is too old: appfleet needs 1.4.0 or newer")
}
