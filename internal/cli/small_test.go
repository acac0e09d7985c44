package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run runs one command line in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	io, _, out, errOut := TestIO(false)
	code := Run(t.Context(), &Factory{IO: io}, args)
	return code, out.String(), errOut.String()
}

func TestVersionFlag(t *testing.T) {
	code, flag, _ := run(t, "--version")
	require.Equal(t, ExitOK, code)
	_, cmd, _ := run(t, "version")
	assert.Equal(t, cmd, flag, "--version prints what 'appfleet version' prints")
	assert.Contains(t, flag, "appfleet ")
}

func TestNoColorCountsOnlyWhenNonEmpty(t *testing.T) {
	assert.True(t, colorWanted(true, "", "xterm"), "NO_COLOR set but empty does not count")
	assert.False(t, colorWanted(true, "1", "xterm"))
	assert.False(t, colorWanted(false, "", "xterm"), "no colour without a terminal")
	assert.False(t, colorWanted(true, "", "dumb"))
}

func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(`apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: crm}
spec:
  environment: dev
  apiKeys: [{name: web, value: {fromEnv: APPFLEET_TEST_UNSET_KEY}}]
`), 0o644))
	for _, verb := range []string{"plan", "apply", "destroy"} {
		_, out, _ := run(t, "__complete", verb, dir, "--target", "")
		assert.Contains(t, out, "app.crm\nenvironment.dev\n", verb)
		_, out, _ = run(t, "__complete", verb, dir, "--target", "app.")
		assert.Contains(t, out, "app.crm\n", verb)
		assert.NotContains(t, out, "environment.dev", verb)
	}
	_, out, _ := run(t, "__complete", "plan", "-o", "")
	assert.Contains(t, out, "text\njson\nmarkdown\n")
	_, out, _ = run(t, "__complete", "status", "-o", "")
	assert.Contains(t, out, "table\njson\n")
}

func TestHelp(t *testing.T) {
	_, out, _ := run(t, "runtime", "serve", "--help")
	assert.Contains(t, out, "--data-dir")
	assert.NotContains(t, out, "--state-dir", "runtime serve lists only the flags that act on it")
	assert.NotContains(t, out, "--no-color")
	_, out, _ = run(t, "apply", "--help")
	assert.Contains(t, out, "--state-dir", "other commands keep the global flags")
	for _, verb := range []string{"plan", "apply", "destroy"} {
		_, out, _ = run(t, verb, "--help")
		assert.Contains(t, out, "--target ADDR", verb)
		assert.NotContains(t, out, "stringArray", verb)
	}
	_, out, _ = run(t, "status", "--help")
	assert.Contains(t, out, "Status observes every environment")
}
