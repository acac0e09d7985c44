package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as standard input. Whatever the input, Load must not
// panic, must answer quickly (the fuzzer's own timeout catches a hang), must give every diagnostic a
// position, a summary and a hint, and must only call manifests valid when they hold what validation
// promises.
func FuzzLoad(f *testing.F) {
	examples, _ := filepath.Glob(filepath.Join("..", "examples", "*", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join("..", "examples", "*", "*", "*.yaml"))
	for _, p := range append(examples, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"",
		"# only a comment\n",
		"---\n---\n",
		envDev,
		envDev + "---\n" + appDoc("crm", "dev"),
		"apiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata: {name: crm}\nspec:\n  enviroment: dev\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: e}\nspec:\n  provider: terraform\n  terraform: {module: m, variables: &v {x: *v}}\n",
		"kind: App\nspec: {<<: [{state: stopped}], environment: x}\n",
		"\xef\xbb\xbfkind: Fleet\r\nmetadata: {name: a}\r\n",
		"kind: App\nmetadata:\n\tname: x\n",
		"[[[[[[[[[[]]]]]]]]]]",
		"kind: App\x00",
		envDev + "---\nkind: AppSet\nmetadata: {name: s}\nspec:\n  generators: [{matrix: {generators: [{list: [{a: x}]}, {list: [{b: y}, {b: z}]}]}}]\n  template: {metadata: {name: \"n-{{a}}-{{b}}\"}, spec: {environment: dev, settings: {k: \"{{ b }}\"}}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, diags := Load([]string{"-"}, bytes.NewReader(data))
		if m == nil {
			t.Fatal("Load returned nil manifests")
		}
		for _, d := range diags {
			if d.File != StdinName || d.Line < 1 || d.Column < 1 || d.Summary == "" || d.Detail == "" {
				t.Fatalf("diagnostic without position, summary or hint: %#v", d)
			}
			if d.Severity != SeverityError && d.Severity != SeverityWarning {
				t.Fatalf("diagnostic with severity %q", d.Severity)
			}
			if strings.Contains(d.Summary, "\n") {
				t.Fatalf("summary spans lines: %q", d.Summary)
			}
		}
		if diags.HasErrors() {
			return
		}
		checkValid(t, m)
	})
}

// checkValid asserts what valid manifests promise.
func checkValid(t *testing.T, m *Manifests) {
	t.Helper()
	if !IsDNSLabel(m.Name) {
		t.Fatalf("fleet name %q is not a DNS label", m.Name)
	}
	envNames := make([]string, len(m.Environments))
	for i, e := range m.Environments {
		envNames[i] = e.Metadata.Name
		if !IsDNSLabel(e.Metadata.Name) || e.Spec.Runtime.MaxApps < 1 || e.Spec.Runtime.IdleTimeout.Duration <= 0 {
			t.Fatalf("valid environment without name or defaults: %+v", e)
		}
	}
	if !slices.IsSorted(envNames) || len(slices.Compact(slices.Clone(envNames))) != len(envNames) {
		t.Fatalf("environments not sorted and unique: %v", envNames)
	}
	appNames := make([]string, len(m.Apps))
	for i, a := range m.Apps {
		appNames[i] = a.Metadata.Name
		if _, ok := m.Environment(a.Spec.Environment); !ok {
			t.Fatalf("valid app %q in undeclared environment %q", a.Metadata.Name, a.Spec.Environment)
		}
		if a.Spec.State == "" || a.Spec.Database.Driver == "" {
			t.Fatalf("valid app without defaults: %+v", a.Spec)
		}
	}
	if !slices.IsSorted(appNames) || len(slices.Compact(slices.Clone(appNames))) != len(appNames) {
		t.Fatalf("apps not sorted and unique: %v", appNames)
	}
	if _, err := json.Marshal(m.Apps); err != nil {
		t.Fatalf("valid apps do not marshal to JSON: %v", err)
	}
	if _, err := json.Marshal(m.Environments); err != nil {
		t.Fatalf("valid environments do not marshal to JSON: %v", err)
	}
}
