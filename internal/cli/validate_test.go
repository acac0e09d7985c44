package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/appfleet/appfleet/spec"
	"github.com/rogpeppe/go-internal/txtar"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSecret is the value of APPFLEET_TEST_SET in these tests; no output may ever show it.
const testSecret = "s3cr3t-value-of-a-test"

// update rewrites the stdout/stderr sections of the txtar cases (go test ./internal/cli -update).
var update = flag.Bool("update", false, "rewrite the expected output of the txtar cases under testdata")

// runValidateCase extracts the manifests of a txtar archive into a new working directory, runs
// `appfleet validate <args>` there and returns exit code, stdout and stderr.
func runValidateCase(t *testing.T, ar *txtar.Archive, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("APPFLEET_TEST_SET", testSecret)
	t.Setenv("APPFLEET_TEST_UNSET_KEY", "")
	require.NoError(t, os.Unsetenv("APPFLEET_TEST_UNSET_KEY"))
	dir := t.TempDir()
	for _, f := range ar.Files {
		if f.Name == "stdout" || f.Name == "stderr" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, f.Data, 0o644))
	}
	t.Chdir(dir)
	io, _, out, errOut := TestIO(false)
	code := Run(t.Context(), &Factory{IO: io}, append([]string{"validate"}, args...))
	return code, out.String(), errOut.String()
}

func section(ar *txtar.Archive, name string) (string, int) {
	for i, f := range ar.Files {
		if f.Name == name {
			return string(f.Data), i
		}
	}
	return "", -1
}

var (
	diagLine = regexp.MustCompile(`^(warning: )?\S+:\d+:\d+: \S.*$`)
	hintLine = regexp.MustCompile(`^    hint: \S.*$`)
)

func TestValidate_Malformed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "validate", "invalid", "*.txtar"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 30, "at least 30 malformed manifests")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			require.NoError(t, err)

			code, stdout, stderr := runValidateCase(t, ar)
			assert.Equal(t, ExitError, code)
			assert.Empty(t, stdout, "diagnostics go to stderr")
			assert.NotContains(t, stderr, testSecret)

			want, i := section(ar, "stderr")
			require.GreaterOrEqual(t, i, 0, "the case has a stderr section")
			if *update {
				ar.Files[i].Data = []byte(stderr)
				require.NoError(t, os.WriteFile(filepath.Join(cwdAtStart, file), txtar.Format(ar), 0o644))
				return
			}
			assert.Equal(t, want, stderr)

			// Every diagnostic is "file:line:col: summary" and is followed by a one-line hint.
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			require.GreaterOrEqual(t, len(lines), 3)
			assert.Regexp(t, `^Invalid: \d+ errors?(, \d+ warnings?)?\.$`, lines[len(lines)-1])
			body := lines[:len(lines)-1]
			require.Zero(t, len(body)%2, "each diagnostic has exactly one hint line")
			for j := 0; j < len(body); j += 2 {
				assert.Regexp(t, diagLine, body[j])
				assert.Regexp(t, hintLine, body[j+1])
			}

			// -o json reports the same diagnostics on stdout, and nothing on stderr.
			code, stdout, stderr = runValidateCase(t, ar, "-o", "json")
			assert.Equal(t, ExitError, code)
			assert.Empty(t, stderr)
			assert.NotContains(t, stdout, testSecret)
			var res validateResult
			require.NoError(t, json.Unmarshal([]byte(stdout), &res))
			assert.False(t, res.Valid)
			assert.Equal(t, len(body)/2, len(res.Diagnostics))
			assert.Equal(t, res.ErrorCount+res.WarningCount, len(res.Diagnostics))
			var text []string
			for _, d := range res.Diagnostics {
				text = append(text, d.String(), "    hint: "+d.Detail)
				assert.Positive(t, d.Line)
				assert.Positive(t, d.Column)
			}
			assert.Equal(t, body, text)
		})
	}
}

func TestValidate_Valid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "validate", "valid", "*.txtar"))
	require.NoError(t, err)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			require.NoError(t, err)
			code, stdout, stderr := runValidateCase(t, ar)
			assert.Equal(t, ExitOK, code)
			wantOut, i := section(ar, "stdout")
			wantErr, j := section(ar, "stderr")
			if *update {
				ar.Files[i].Data, ar.Files[j].Data = []byte(stdout), []byte(stderr)
				require.NoError(t, os.WriteFile(filepath.Join(cwdAtStart, file), txtar.Format(ar), 0o644))
				return
			}
			assert.Equal(t, wantOut, stdout)
			assert.Equal(t, wantErr, stderr)

			code, stdout, _ = runValidateCase(t, ar, "-o", "json")
			assert.Equal(t, ExitOK, code)
			var res validateResult
			require.NoError(t, json.Unmarshal([]byte(stdout), &res))
			assert.True(t, res.Valid)
			assert.NotEmpty(t, res.Fleet)
		})
	}
}

// cwdAtStart lets golden updates write back after a test has changed directory.
var cwdAtStart, _ = os.Getwd()

func TestValidate_Examples(t *testing.T) {
	// terraform-cloud-vm declares its runtime token from this variable.
	t.Setenv("PROD_RUNTIME_TOKEN", "token-of-the-example")
	for _, ex := range []string{"single-app", "shared-memory", "hybrid", "saas-tenants", "terraform-local", "terraform-cloud-vm"} {
		t.Run(ex, func(t *testing.T) {
			io, _, out, errOut := TestIO(false)
			dir := filepath.Join(cwdAtStart, "..", "..", "examples", ex)
			code := Run(t.Context(), &Factory{IO: io}, []string{"validate", dir})
			assert.Equal(t, ExitOK, code, errOut.String())
			assert.Regexp(t, fmt.Sprintf(`^Valid: fleet %q, \d+ environments?, \d+ apps?\.\n$`, ex), out.String())
			assert.Empty(t, errOut.String())
		})
	}
}

func TestValidate_Stdin(t *testing.T) {
	t.Chdir(t.TempDir())
	io, in, out, errOut := TestIO(false)
	in.WriteString("apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec: {provider: local}\n")
	code := Run(t.Context(), &Factory{IO: io}, []string{"validate", "-"})
	assert.Equal(t, ExitOK, code, errOut.String())
	assert.Regexp(t, `^Valid: fleet "[a-z0-9-]+", 1 environment, 0 apps\.\n$`, out.String())

	io, in, _, errOut = TestIO(false)
	in.WriteString("kind: App\nmetadata: {name: crm}\nspec: {enviroment: dev}\n")
	code = Run(t.Context(), &Factory{IO: io}, []string{"validate", "-"})
	assert.Equal(t, ExitError, code)
	assert.Contains(t, errOut.String(), `<stdin>:3:8: unknown field "enviroment" in App "crm"; did you mean "environment"?`)
}

func TestValidate_Errors(t *testing.T) {
	t.Chdir(t.TempDir())
	io, _, _, errOut := TestIO(false)
	code := Run(t.Context(), &Factory{IO: io}, []string{"validate", "-o", "yaml"})
	assert.Equal(t, ExitError, code)
	assert.Equal(t, "Error: unknown output format \"yaml\" for validate; use text or json\n", errOut.String())

	io, _, out, errOut := TestIO(false)
	code = Run(t.Context(), &Factory{IO: io}, []string{"validate", "missing"})
	assert.Equal(t, ExitError, code)
	assert.Empty(t, out.String())
	assert.Equal(t, "missing: cannot read missing: no such file or directory\n"+
		"    hint: Check the path; appfleet reads manifest files and directories of them.\n"+
		"Invalid: 1 error.\n", errOut.String())
}

func TestValidate_ResultJSONMatchesDiagnostics(t *testing.T) {
	// The JSON field names of a diagnostic are part of the output contract.
	b, err := json.Marshal(spec.Diagnostic{Severity: "error", Summary: "s", Detail: "d", File: "f", Line: 1, Column: 2})
	require.NoError(t, err)
	assert.JSONEq(t, `{"severity":"error","summary":"s","detail":"d","file":"f","line":1,"column":2}`, string(b))
}

func TestValidate_CompletionCommand(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		io, _, out, errOut := TestIO(false)
		code := Run(t.Context(), &Factory{IO: io}, []string{"completion", shell})
		assert.Equal(t, ExitOK, code, errOut.String())
		assert.Contains(t, out.String(), "appfleet", shell)
	}

	io, _, out, _ := TestIO(false)
	code := Run(t.Context(), &Factory{IO: io}, []string{"__complete", "validate", "-o", ""})
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, out.String(), "text\njson\n")
}
