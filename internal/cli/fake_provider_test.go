package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/engine/enginetest"
	"github.com/appfleet/appfleet/providers"
)

// runWith runs one command line with the fake provider and returns its exit code, stdout and stderr.
func runWith(t *testing.T, fake *enginetest.Provider, stateDir string, args ...string) (int, string, string) {
	t.Helper()
	io, _, out, errOut := TestIO(false)
	f := &Factory{IO: io, StateDir: stateDir, Registry: func() providers.Registry { return fake.Registry() }}
	code := Run(t.Context(), f, args)
	return code, out.String(), errOut.String()
}

// apply, plan, status and destroy run through the provider the factory hands in: the commands build the
// engine with it, and nothing reaches the real local provider (no process is started).
func TestCommandsThroughFakeProvider(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	state := filepath.Join(t.TempDir(), "state")
	fake := enginetest.NewProvider(t)

	code, out, errOut := runWith(t, fake, state, "apply", dir, "--yes")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "+ environment.dev")
	assert.Contains(t, out, "+ app.crm")
	assert.Contains(t, out, "Plan: 2 to create, 0 to update, 0 to delete.")
	assert.Contains(t, errOut, "environment.dev: Creation complete")
	assert.Contains(t, errOut, "app.crm: Creation complete")
	assert.Contains(t, errOut, "Apply finished in ")
	assert.Contains(t, errOut, ": 2 succeeded, 0 failed, 0 skipped.")
	assert.Equal(t, []string{"apply dev"}, fake.Calls())
	rt := fake.Runtime("dev")
	require.NotNil(t, rt, "the fake provider's runtime was started")
	assert.NoDirExists(t, filepath.Join(state, "environments"), "the local provider was never used")

	code, out, errOut = runWith(t, fake, state, "plan", dir, "--detailed-exitcode")
	assert.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "No changes.")

	code, out, errOut = runWith(t, fake, state, "status", dir, "-o", "json")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, `"status": "`+api.StatusRunning+`"`)

	code, out, errOut = runWith(t, fake, state, "destroy", dir, "--yes")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "- app.crm")
	assert.Contains(t, out, "- environment.dev")
	assert.Equal(t, []string{"apply dev", "destroy dev"}, fake.Calls())
	assert.Nil(t, fake.Runtime("dev"))
}

// An apply whose runtime does not answer at first plans the environment's update, brings it back, and
// plans and applies its apps in a second pass of the same command.
func TestApplyConvergesThroughFakeProvider(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	state := filepath.Join(t.TempDir(), "state")
	fake := enginetest.NewProvider(t)
	code, _, errOut := runWith(t, fake, state, "apply", dir, "--yes", "--target", "environment.dev")
	require.Equal(t, ExitOK, code, errOut)
	fake.Unreach("dev")

	code, out, errOut := runWith(t, fake, state, "apply", dir, "--yes")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "Runtimes that did not answer before answer now. Their apps need these changes too:")
	assert.Contains(t, out, "+ app.crm")
	assert.Equal(t, []string{"apply dev", "apply dev"}, fake.Calls(), "the unreachable runtime was converged")
}

// unavailableManifests add to enginetest.Manifests an environment whose provider this build does not
// hold (the test registry serves only local), with an app in it.
const unavailableManifests = enginetest.Manifests + `---
apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: edge}
spec: {provider: docker}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: kiosk}
spec: {environment: edge}
`

// A provider that is not available blocks the plan that needs it (the JSON plan is not applyable) and
// nothing else: --target applies only what the target needs.
func TestUnavailableProviderBlocksOnlyWhatNeedsIt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(unavailableManifests), 0o644))
	state := filepath.Join(t.TempDir(), "state")
	fake := enginetest.NewProvider(t)

	code, out, errOut := runWith(t, fake, state, "plan", dir, "-o", "json")
	assert.Equal(t, ExitError, code, errOut)
	assert.Contains(t, out, `"applyable": false`)
	assert.Contains(t, out, `"complete": false`)
	assert.Contains(t, out, `environment edge can be neither observed nor changed`)

	code, out, errOut = runWith(t, fake, state, "apply", dir, "--yes")
	assert.Equal(t, ExitError, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "blocked: environment edge can be neither observed nor changed")
	assert.Contains(t, errOut, "Nothing was changed")
	assert.Empty(t, fake.Calls(), "nothing was applied")

	code, out, errOut = runWith(t, fake, state, "apply", dir, "--yes", "--target", "app.crm")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "app.crm: Creation complete")
	assert.NotContains(t, out, "edge")
	assert.Equal(t, []string{"apply dev"}, fake.Calls())
}

// destroy warns, instead of "No changes", when an environment could not be observed, and exits 3; with
// --prune it also deletes what the fleet owns but no longer declares.
func TestDestroyUnobservedAndPrune(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(unavailableManifests), 0o644))
	state := filepath.Join(t.TempDir(), "state")
	fake := enginetest.NewProvider(t)
	code, out, errOut := runWith(t, fake, state, "apply", dir, "--yes", "--target", "app.crm")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	code, out, errOut = runWith(t, fake, state, "destroy", dir, "--yes")
	assert.Equal(t, ExitPartial, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "? environment.edge")
	assert.Contains(t, out, "nothing is destroyed there")
	assert.NotContains(t, out, "The fleet matches the manifests")
	assert.Contains(t, errOut, "Not destroyed: environment.edge could not be observed")
	assert.Nil(t, fake.Runtime("dev"), "what could be observed was destroyed")

	// An environment no longer declared: destroy keeps it, destroy --prune deletes it.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	code, _, errOut = runWith(t, fake, state, "apply", dir, "--yes")
	require.Equal(t, ExitOK, code, errOut)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte("apiVersion: appfleet.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\n"), 0o644))
	code, out, errOut = runWith(t, fake, state, "destroy", dir, "--yes")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.NotNil(t, fake.Runtime("dev"), "without --prune an undeclared environment is kept")
	code, out, errOut = runWith(t, fake, state, "destroy", dir, "--yes", "--prune")
	require.Equal(t, ExitOK, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "- environment.dev")
	assert.Contains(t, out, "- app.crm")
	assert.Nil(t, fake.Runtime("dev"), "destroy --prune deleted the undeclared environment")
}

// End of input at the confirmation prompt cancels the change, as any answer but "yes" does: exit 1,
// "cancelled; nothing was changed", and nothing was applied.
func TestConfirmEOFCancels(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	fake := enginetest.NewProvider(t)
	io, _, out, errOut := TestIO(true) // a terminal whose input is already at its end
	f := &Factory{IO: io, StateDir: filepath.Join(t.TempDir(), "state"), Registry: func() providers.Registry { return fake.Registry() }}
	code := Run(t.Context(), f, []string{"apply", dir})
	assert.Equal(t, ExitError, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut.String(), "apply cancelled; nothing was changed")
	assert.NotContains(t, errOut.String(), "EOF")
	assert.Empty(t, fake.Calls())
}

// On a terminal, apply's live status line fits the terminal's width.
func TestApplyProgressFitsTerminal(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(enginetest.Manifests), 0o644))
	fake := enginetest.NewProvider(t)
	io, _, out, errOut := TestIO(true)
	io.SetTerminalWidth(24)
	f := &Factory{IO: io, StateDir: filepath.Join(t.TempDir(), "state"), Registry: func() providers.Registry { return fake.Registry() }}
	require.Equal(t, ExitOK, Run(t.Context(), f, []string{"apply", dir, "--yes"}), "stdout:\n%s\nstderr:\n%s", out, errOut)
	drawn := 0
	for _, part := range strings.Split(errOut.String(), "\r\x1b[K") {
		if line := part[strings.LastIndexByte(part, '\n')+1:]; strings.HasPrefix(line, "Applying") {
			drawn++
			assert.LessOrEqual(t, utf8.RuneCountInString(line), 23, "%q is wider than the terminal", line)
		}
	}
	assert.Positive(t, drawn, "the live line was drawn: %q", errOut)
}
