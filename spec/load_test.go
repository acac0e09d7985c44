package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeTree writes files (slash-separated names relative to a new temp dir) and returns the dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

const envDev = `apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {provider: local}
`

func appDoc(name, env string) string {
	return "apiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata: {name: " + name + "}\nspec:\n  environment: " + env + "\n"
}

func summaries(d Diagnostics) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.String()
	}
	return out
}

func TestLoad_Examples(t *testing.T) {
	tests := []struct {
		dir        string
		name       string
		envs, apps []string
	}{
		{"single-app", "single-app", []string{"dev"}, []string{"notes"}},
		{"shared-memory", "shared-memory", []string{"office"}, []string{"crm", "shop", "wiki"}},
		{"hybrid", "hybrid", []string{"cloud", "edge", "staging"}, []string{"billing", "inventory", "portal", "reports"}},
		{"saas-tenants", "saas-tenants", []string{"ops", "pool-a", "pool-b", "pool-c"},
			[]string{"backoffice", "shop-acme", "shop-globex", "shop-hooli", "shop-initech", "shop-umbrella"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join("..", "examples", tt.dir)
			m, diags := Load([]string{dir}, nil)
			require.Empty(t, summaries(diags))
			assert.Equal(t, tt.name, m.Name)
			abs, _ := filepath.Abs(dir)
			assert.Equal(t, abs, m.Root)
			var envs, apps []string
			for _, e := range m.Environments {
				envs = append(envs, e.Metadata.Name)
			}
			for _, a := range m.Apps {
				apps = append(apps, a.Metadata.Name)
				assert.NotEmpty(t, a.Source.File)
				assert.Positive(t, a.Source.Line)
			}
			assert.Equal(t, tt.envs, envs)
			assert.Equal(t, tt.apps, apps)
			assert.Len(t, m.Digest, 64)
		})
	}
}

func TestLoad_Defaults(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.yaml": envDev + "---\n" + appDoc("crm", "dev") + `---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: pg}
spec:
  environment: dev
  database: {driver: postgres, dsn: {fromEnv: APPFLEET_TEST_DSN}}
---
apiVersion: appfleet.dev/v1alpha1
kind: Fleet
metadata: {name: acme}
`,
	})
	t.Setenv("APPFLEET_TEST_DSN", "postgres://user:hunter2@db/app")
	m, diags := Load([]string{dir}, nil)
	require.Empty(t, summaries(diags))

	assert.Equal(t, "acme", m.Name)
	assert.Equal(t, 10, m.Fleet.Spec.Parallelism)
	assert.Equal(t, 10, m.Parallelism())
	assert.False(t, m.Prune())
	env, ok := m.Environment("dev")
	require.True(t, ok)
	if diff := cmp.Diff(RuntimeSpec{MaxApps: 1000, IdleTimeout: Duration{10 * time.Minute}}, env.Spec.Runtime); diff != "" {
		t.Errorf("runtime defaults (-want +got):\n%s", diff)
	}
	crm, _ := m.App("crm")
	assert.Equal(t, StateRunning, crm.Spec.State)
	if diff := cmp.Diff(Database{Driver: DriverSQLite}, crm.Spec.Database); diff != "" {
		t.Errorf("database defaults (-want +got):\n%s", diff)
	}
	pg, _ := m.App("pg")
	assert.Equal(t, IsolationDatabase, pg.Spec.Database.Isolation)
	assert.Len(t, m.AppsIn("dev"), 2)
	assert.Empty(t, m.AppsIn("prod"))

	// Defaults are applied once, in one place: applying them again changes nothing.
	before := *m.Fleet
	apps := append([]App(nil), m.Apps...)
	applyDefaults(m)
	assert.Equal(t, before, *m.Fleet)
	assert.Empty(t, cmp.Diff(apps, m.Apps))
}

func TestLoad_NoFleetDocument(t *testing.T) {
	dir := writeTree(t, map[string]string{"My Fleet_2/a.yaml": envDev})
	m, diags := Load([]string{filepath.Join(dir, "My Fleet_2")}, nil)
	require.Empty(t, summaries(diags))
	assert.Nil(t, m.Fleet)
	assert.Equal(t, "my-fleet-2", m.Name)
	assert.Equal(t, DefaultParallelism, m.Parallelism())
	assert.False(t, m.Prune())
}

func TestLoad_Paths(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"b.yaml":             appDoc("b", "dev"),
		"a/env.yml":          envDev,
		"a/c.yaml":           appDoc("c", "dev"),
		".hidden/x.yaml":     "this would not parse: [",
		"a/.state/y.yaml":    "nor this: [",
		"notes.txt":          "not a manifest",
		"z/explicit.conf":    appDoc("z", "dev"),
		"empty/nothing.json": "{}",
	})
	t.Chdir(dir)

	m, diags := Load(nil, nil)
	require.Empty(t, summaries(diags))
	assert.Equal(t, dir, m.Root)
	assert.Len(t, m.Apps, 2)

	// Files come in sorted order; a file named twice is read once; an explicit file is read whatever its name.
	m2, diags := Load([]string{".", "b.yaml", "z/explicit.conf"}, nil)
	require.Empty(t, summaries(diags))
	assert.Len(t, m2.Apps, 3)
	assert.NotEqual(t, m.Digest, m2.Digest)

	m3, _ := Load([]string{"."}, nil)
	assert.Equal(t, m.Digest, m3.Digest, "the digest is stable")

	_, diags = Load([]string{"missing", "empty"}, nil)
	assert.Equal(t, []string{
		"empty: no manifest files in empty",
		"missing: cannot read missing: no such file or directory",
	}, summaries(diags))
}

func TestLoad_Stdin(t *testing.T) {
	t.Chdir(t.TempDir())
	m, diags := Load([]string{"-"}, strings.NewReader(envDev+"---\n"+appDoc("crm", "dev")))
	require.Empty(t, summaries(diags))
	assert.Equal(t, StdinName, m.Apps[0].Source.File)
	cwd, _ := os.Getwd()
	assert.Equal(t, cwd, m.Root)

	_, diags = Load([]string{"-", "-"}, strings.NewReader(envDev))
	assert.Equal(t, []string{"<stdin>: standard input given twice"}, summaries(diags))
}

func TestLoad_Diagnostics(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "typo with suggestion",
			yaml: envDev + "---\napiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata: {name: crm}\nspec:\n  enviroment: dev\n",
			want: []string{`m.yaml:10:3: unknown field "enviroment" in App "crm"; did you mean "environment"?`},
		},
		{
			name: "nested typo",
			yaml: envDev + "---\n" + appDoc("crm", "dev") + "  collections:\n    - name: c\n      fields:\n        - {name: a, tpye: string}\n",
			want: []string{
				`m.yaml:14:21: unknown field "tpye" in App "crm"; did you mean "type"?`,
			},
		},
		{
			name: "unknown kind",
			yaml: "apiVersion: appfleet.dev/v1alpha1\nkind: app\nmetadata: {name: x}\n",
			want: []string{`m.yaml:2:7: unknown kind "app"; did you mean "App"?`},
		},
		{
			name: "wrong types",
			yaml: envDev + "---\n" + appDoc("crm", "dev") + "  protect: maybe\n  limits: {maxInFlight: many}\n  hostnames: a.test\n",
			want: []string{
				`m.yaml:11:12: invalid spec.protect in App "crm": want true or false, found "maybe"`,
				`m.yaml:12:25: invalid spec.limits.maxInFlight in App "crm": want a whole number, found "many"`,
				`m.yaml:13:14: invalid spec.hostnames in App "crm": want a list, found "a.test"`,
			},
		},
		{
			name: "rate limits",
			yaml: envDev + "---\n" + appDoc("crm", "dev") + "  limits: {requestsPerSecond: -1}\n---\n" + appDoc("erp", "dev") + "  limits: {burst: 10}\n",
			want: []string{
				`m.yaml:11:31: invalid spec.limits.requestsPerSecond -1 in App "crm"`,
				`m.yaml:18:19: spec.limits.burst is set without spec.limits.requestsPerSecond in App "erp"`,
			},
		},
		{
			name: "duplicates across documents and keys",
			yaml: envDev + "---\n" + appDoc("crm", "dev") + "---\n" + appDoc("crm", "dev") + "---\napiVersion: appfleet.dev/v1alpha1\napiVersion: x\nkind: Fleet\nmetadata: {name: a}\n",
			want: []string{
				`m.yaml:14:18: duplicate App "crm"`,
				`m.yaml:19:1: duplicate key "apiVersion" in Fleet "a"`,
			},
		},
		{
			name: "inline secret",
			yaml: envDev + "---\n" + appDoc("crm", "dev") + "  apiKeys: [{name: k, value: hunter2}]\n",
			want: []string{`m.yaml:11:30: invalid spec.apiKeys[0].value in App "crm": secrets are never written inline`},
		},
		{
			name: "provider blocks",
			yaml: "apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec:\n  provider: local\n  docker: {image: x}\n",
			want: []string{`m.yaml:6:3: spec.docker is set but Environment "dev" uses provider "local"`},
		},
		{
			// A problem with a field being there points at its key, not at the value lines below.
			name: "provider block written as a block",
			yaml: "apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec:\n  provider: docker\n  local:\n    listen: 127.0.0.1:7000\n",
			want: []string{`m.yaml:6:3: spec.local is set but Environment "dev" uses provider "docker"`},
		},
		{
			name: "sqlite with a dsn block",
			yaml: envDev + "---\n" + appDoc("crm", "dev") + "  database:\n    driver: sqlite\n    dsn:\n      fromEnv: X\n",
			want: []string{`m.yaml:13:5: spec.database.dsn is set but App "crm" uses sqlite`},
		},
		{
			name: "merge keys and anchors",
			yaml: envDev + "---\napiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata: {name: crm}\nspec:\n  <<: &base {environment: dev, state: stopped}\n  state: running\n",
			want: nil,
		},
		{
			name: "alias cycle",
			yaml: "apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec:\n  provider: terraform\n  terraform: {module: mod, variables: &v {x: *v}}\n",
			want: []string{`m.yaml:6:46: alias *v refers to a node that contains it`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(writeTree(t, map[string]string{"m.yaml": tt.yaml}))
			_, diags := Load([]string{"m.yaml"}, nil)
			assert.Equal(t, tt.want, nilIfEmpty(summaries(diags)))
			for _, d := range diags {
				assert.NotEmpty(t, d.Detail, "every diagnostic hints at the fix: %s", d)
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestLoad_MergeKeys(t *testing.T) {
	t.Chdir(writeTree(t, map[string]string{"m.yaml": envDev + `---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: crm}
spec:
  <<: [{environment: dev, state: stopped, protect: true}, {protect: false, limits: {maxInFlight: 3}}]
  state: running
`}))
	m, diags := Load(nil, nil)
	require.Empty(t, summaries(diags))
	s := m.Apps[0].Spec
	assert.Equal(t, "dev", s.Environment)
	assert.Equal(t, StateRunning, s.State, "explicit keys win over merged ones")
	assert.True(t, s.Protect, "earlier merged mappings win over later ones")
	assert.Equal(t, 3, s.Limits.MaxInFlight)
}

// An unquoted date-time is a YAML timestamp; a default keeps it as the text written, so that it validates
// as RFC 3339 and compares equal with what a runtime echoes back.
func TestLoad_TimestampDefaultsStayText(t *testing.T) {
	t.Chdir(writeTree(t, map[string]string{"m.yaml": envDev + `---
apiVersion: appfleet.dev/v1alpha1
kind: App
metadata: {name: crm}
spec:
  environment: dev
  collections:
    - name: events
      fields:
        - {name: at, type: datetime, default: 2024-01-31T12:00:00Z}
        - {name: day, type: string, default: 2024-01-31}
        - {name: meta, type: json, default: {since: 2024-01-31T12:00:00+02:00}}
`}))
	m, diags := Load(nil, nil)
	require.Empty(t, summaries(diags))
	f := m.Apps[0].Spec.Collections[0].Fields
	assert.Equal(t, "2024-01-31T12:00:00Z", f[0].Default)
	assert.Equal(t, "2024-01-31", f[1].Default)
	assert.Equal(t, map[string]any{"since": "2024-01-31T12:00:00+02:00"}, f[2].Default)
}

func TestLoad_Secrets(t *testing.T) {
	const value = "s3cr3t-value-never-shown"
	dir := writeTree(t, map[string]string{
		"apps/crm.yaml": envDev + "---\n" + appDoc("crm", "dev") + `  apiKeys:
    - {name: env, value: {fromEnv: APPFLEET_TEST_KEY}}
    - {name: file, value: {fromFile: ../keys/file.key}}
`,
		"keys/file.key": value + "-file\n",
	})
	t.Setenv("APPFLEET_TEST_KEY", value)
	m, diags := Load([]string{dir}, nil)
	require.Empty(t, summaries(diags))
	assert.Empty(t, m.Apps[0].Spec.APIKeys[0].Value.Value, "Load keeps no secret value")

	t.Chdir(t.TempDir()) // fromFile is relative to the manifest, not to the working directory
	r, err := m.ResolveSecrets()
	require.NoError(t, err)
	assert.Equal(t, value, r.Apps[0].Spec.APIKeys[0].Value.Value)
	assert.Equal(t, value+"-file", r.Apps[0].Spec.APIKeys[1].Value.Value)
	assert.Empty(t, m.Apps[0].Spec.APIKeys[0].Value.Value, "ResolveSecrets leaves m alone")

	require.NoError(t, os.Unsetenv("APPFLEET_TEST_KEY"))
	require.NoError(t, os.Remove(filepath.Join(dir, "keys", "file.key")))
	_, err = m.ResolveSecrets()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `app "crm": apiKeys "env": environment variable APPFLEET_TEST_KEY is not set`)
	assert.Contains(t, err.Error(), `app "crm": apiKeys "file": cannot read secret file ../keys/file.key`)

	_, diags = Load([]string{dir}, nil)
	assert.Equal(t, []string{
		filepath.Join(dir, "apps/crm.yaml") + `:12:36: environment variable APPFLEET_TEST_KEY is not set (secret API key "env" of App "crm")`,
		filepath.Join(dir, "apps/crm.yaml") + `:13:38: cannot read secret file ../keys/file.key (secret API key "file" of App "crm"): no such file or directory`,
	}, summaries(diags))
}

func TestLoad_SecretValuesNeverShown(t *testing.T) {
	const value = "hunter2-very-secret"
	t.Setenv("APPFLEET_TEST_KEY", value)
	dir := writeTree(t, map[string]string{
		"crm.yaml": envDev + "---\n" + appDoc("crm", "dev") + `  database: {driver: sqlite, dsn: {fromEnv: APPFLEET_TEST_KEY}}
  apiKeys:
    - {name: a, value: {fromEnv: APPFLEET_TEST_KEY, fromFile: x}}
    - {name: a, value: {fromFile: secret}}
`,
		"secret": value,
	})
	_, diags := Load([]string{dir}, nil)
	require.True(t, diags.HasErrors())
	var all bytes.Buffer
	for _, d := range diags {
		all.WriteString(d.String() + "\n" + d.Detail + "\n")
	}
	assert.NotContains(t, all.String(), value)
	assert.NotContains(t, diags.Err().Error(), value)
}

func TestDiagnostics_Err(t *testing.T) {
	var none Diagnostics
	require.NoError(t, none.Err())
	warn := Diagnostics{{Severity: SeverityWarning, Summary: "w", File: "f", Line: 1, Column: 2}}
	require.NoError(t, warn.Err())
	both := append(warn, Diagnostic{Severity: SeverityError, Summary: "e", File: "f", Line: 3, Column: 4})
	err := both.Err()
	require.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, "invalid manifests: 1 error\nf:3:4: e", err.Error())
	assert.Equal(t, "f:1:2: warning: w", warn[0].String())
}

func TestSuggest(t *testing.T) {
	fields := []string{"environment", "state", "protect", "database", "hostnames", "apiKeys"}
	tests := map[string]string{
		"enviroment":  "environment",
		"environmnet": "environment",
		"stat":        "state",
		"apikeys":     "apiKeys",
		"hostname":    "hostnames",
		"colour":      "",
		"x":           "",
	}
	for got, want := range tests {
		assert.Equal(t, want, suggest(got, fields), got)
	}
	assert.Equal(t, 3, levenshtein("kitten", "sitting"))
}

func TestDockerSpec(t *testing.T) {
	mem := map[string]int64{"512Mi": 512 << 20, "1g": 1 << 30, "768m": 768 << 20, "2GiB": 2 << 30, "10485760": 10 << 20}
	for s, want := range mem {
		got, err := DockerSpec{Memory: s}.MemoryBytes()
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"lots", "5Xi", "1k", "-1m"} {
		_, err := DockerSpec{Memory: s}.MemoryBytes()
		assert.Error(t, err, s)
	}
	n, err := DockerSpec{CPUs: "0.5"}.NanoCPUs()
	require.NoError(t, err)
	assert.Equal(t, int64(5e8), n)
	_, err = DockerSpec{CPUs: "0"}.NanoCPUs()
	assert.Error(t, err)
	host, port, err := DockerSpec{Publish: "127.0.0.1:7410"}.PublishAddr()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.Equal(t, 7410, port)
	_, port, err = DockerSpec{Publish: "8080"}.PublishAddr()
	require.NoError(t, err)
	assert.Equal(t, 8080, port)
	_, _, err = DockerSpec{Publish: "host:99999"}.PublishAddr()
	assert.Error(t, err)
}

func TestLabelFrom(t *testing.T) {
	for in, want := range map[string]string{"acme": "acme", "My Fleet": "my-fleet", "/": "fleet", "2024-ops": "ops", "ÜBER": "ber"} {
		assert.Equal(t, want, labelFrom(in), in)
		assert.True(t, IsDNSLabel(labelFrom(in)), in)
	}
}

func TestLoad_SyntaxErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"bad indentation", "kind: Environment\nmetadata:\n  name: dev\n bad: x\n", "<stdin>:4:2: invalid YAML: did not find expected key"},
		{"unclosed flow mapping", "kind: Environment\nmetadata: {name: dev\nspec:\n  provider: local\n", "<stdin>:2:1: invalid YAML: did not find expected ',' or '}'"},
		{"list item after value", "kind: App\nmetadata: {name: x}\nspec:\n  environment: dev\n  - a\n", "<stdin>:5:3: invalid YAML: did not find expected key"},
		// The parser names the line where the list of fields starts; the line that is wrong is far below.
		{"misindented item deep in a list", "kind: App\nmetadata: {name: x}\nspec:\n  collections:\n    - name: c\n      fields:\n" +
			"        - {name: a, type: string}\n        - {name: b, type: string}\n        - {name: c, type: string}\n       - {name: d, type: string}\n",
			"<stdin>:10:8: invalid YAML: did not find expected key"},
		{"in a later document", envDev + "---\nkind: App\nmetadata:\n  name: x\nspec:\n  settings:\n    a: b\n    c: d\n   e: f\n",
			"<stdin>:13:4: invalid YAML: did not find expected key"},
		{"unclosed quote", "kind: App\nspec:\n  environment: \"dev\n", "<stdin>:3:"},
		{"colon in value", "kind: App\nspec:\n  environment: a: b\n", "<stdin>:3:3: invalid YAML: mapping values are not allowed in this context"},
		{"reserved character", "kind: App\nspec:\n  environment: @dev\n", "<stdin>:3:3: invalid YAML: found character that cannot start any token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Load([]string{"-"}, strings.NewReader(tt.yaml))
			require.Len(t, diags, 1)
			assert.True(t, strings.HasPrefix(diags[0].String(), tt.want), "got %q", diags[0].String())
		})
	}
}
