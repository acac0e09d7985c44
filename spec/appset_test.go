package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const envsProd = `apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: p1, labels: {tier: prod}}
spec: {provider: local}
---
apiVersion: appfleet.dev/v1alpha1
kind: Environment
metadata: {name: p2, labels: {tier: prod}}
spec: {provider: local}
`

func loadString(t *testing.T, files map[string]string) (*Manifests, Diagnostics) {
	t.Helper()
	dir := writeTree(t, files)
	t.Chdir(dir)
	return Load([]string{"."}, nil)
}

func TestAppSet_Expands(t *testing.T) {
	set := `apiVersion: appfleet.dev/v1alpha1
kind: AppSet
metadata: {name: tenants}
spec:
  generators:
    - list:
        - {tenant: acme, motto: "a: b", city: Zürich}
        - {tenant: globex, motto: "[1, 2]", city: "{{tenant}}"}
  template:
    metadata: {name: "shop-{{tenant}}", labels: {tenant: "{{tenant}}"}}
    spec:
      placement: {selector: {tier: prod}}
      hostnames: ["{{ tenant }}.example.test"]
      settings: {motto: "{{motto}}", city: "{{city}}", fixed: "no {parameters} here"}
      collections:
        - name: orders
          fields: [{name: status, type: enum, values: [open, "{{tenant}}"], default: open}]
`
	m, diags := loadString(t, map[string]string{"envs.yaml": envsProd, "tenants.yaml": set})
	require.Empty(t, summaries(diags))
	require.Len(t, m.Apps, 2)
	require.Len(t, m.AppSets, 1)
	acme, globex := m.Apps[0], m.Apps[1]
	assert.Equal(t, "shop-acme", acme.Metadata.Name)
	assert.Equal(t, map[string]string{"tenant": "acme", LabelAppSet: "tenants"}, acme.Metadata.Labels)
	assert.Equal(t, []string{"acme.example.test"}, acme.Spec.Hostnames)
	// Values that look like YAML stay text; unicode passes through; a value is never substituted again.
	assert.Equal(t, map[string]string{"motto": "a: b", "city": "Zürich", "fixed": "no {parameters} here"}, acme.Spec.Settings)
	assert.Equal(t, map[string]string{"motto": "[1, 2]", "city": "{{tenant}}", "fixed": "no {parameters} here"}, globex.Spec.Settings)
	assert.Equal(t, []string{"open", "globex"}, globex.Spec.Collections[0].Fields[0].Values)
	assert.Equal(t, []string{"open", "acme"}, acme.Spec.Collections[0].Fields[0].Values, "generated apps share nothing they differ in")
	assert.Equal(t, StrategySpread, acme.Spec.Placement.Strategy, "defaults apply to generated apps")
	assert.Equal(t, Source{File: "tenants.yaml", Line: 7, Column: 11}, acme.Source, "an app's source is its element")
	assert.Equal(t, Source{File: "tenants.yaml", Line: 8, Column: 11}, globex.Source)
	assert.Equal(t, "shop-{{tenant}}", m.AppSets[0].Spec.Template.Metadata.Name, "the template is not changed")
}

func TestAppSet_Matrix(t *testing.T) {
	set := `apiVersion: appfleet.dev/v1alpha1
kind: AppSet
metadata: {name: grid}
spec:
  generators:
    - matrix:
        generators:
          - list: [{tenant: a}, {tenant: b}]
          - list: [{region: eu}, {region: us}, {region: ap}]
    - list: [{tenant: solo, region: eu}]
  template:
    metadata: {name: "{{tenant}}-{{region}}"}
    spec: {environment: p1}
`
	m, diags := loadString(t, map[string]string{"envs.yaml": envsProd, "grid.yaml": set})
	require.Empty(t, summaries(diags))
	var names []string
	for _, a := range m.Apps {
		names = append(names, a.Metadata.Name)
	}
	assert.Equal(t, []string{"a-ap", "a-eu", "a-us", "b-ap", "b-eu", "b-us", "solo-eu"}, names)
}

func TestAppSet_Problems(t *testing.T) {
	head := "apiVersion: appfleet.dev/v1alpha1\nkind: AppSet\nmetadata: {name: tenants}\nspec:\n"
	tests := []struct {
		name string
		set  string
		want []string
	}{
		{"missing parameter in some elements", head + `  generators:
    - list:
        - {tenant: acme, plan: pro}
        - {tenant: globex}
  template:
    metadata: {name: "shop-{{tenant}}", labels: {plan: "{{plan}}"}}
    spec: {environment: p1}
`, []string{`set.yaml:10:56: parameter {{plan}} of AppSet "tenants" is not set by generators[0].list[1] (line 8)`}},
		{"unknown parameter", head + `  generators:
    - list: [{tenant: acme, plan: pro}]
  template:
    metadata: {name: "shop-{{tenat}}"}
    spec: {environment: p1}
`, []string{`set.yaml:8:22: unknown parameter {{tenat}} in the template of AppSet "tenants"; did you mean "tenant"?`}},
		{"parameter in a key", head + `  generators:
    - list: [{tenant: acme}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec:
      environment: p1
      settings: {"{{tenant}}-color": blue}
`, []string{`set.yaml:11:38: parameter in key "{{tenant}}-color" of template.spec.settings in AppSet "tenants"`}},
		{"malformed reference", head + `  generators:
    - list: [{tenant: acme}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec:
      environment: p1
      settings: {a: "{{ten ant}}"}
`, []string{`set.yaml:11:21: invalid parameter reference in template.spec.settings.a of AppSet "tenants": "{{ten ant}}" is not a parameter name`}},
		{"a unicode value makes an invalid name", head + `  generators:
    - list: [{tenant: acme}, {tenant: zürich}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec: {environment: p1}
`, []string{`set.yaml:8:22: invalid App name "shop-zürich" (app "shop-zürich", generated by AppSet "tenants" from generators[0].list[1] at line 6)`}},
		{"a value that looks like YAML stays a string", head + `  generators:
    - list: [{tenant: acme, state: "{running: true}"}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec: {environment: p1, state: "{{state}}"}
`, []string{`set.yaml:9:36: unknown state "{running: true}" in AppSet "tenants" (app "shop-acme", generated by AppSet "tenants" from generators[0].list[0] at line 6)`}},
		{"a template problem is reported once", head + `  generators:
    - list: [{tenant: a}, {tenant: b}, {tenant: c}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec:
      environment: p9
`, []string{`set.yaml:10:20: environment "p9" of AppSet "tenants" is not declared; did you mean "p1"? (every app AppSet "tenants" generates, 3)`}},
		{"a generated name clashes with a written app", head + `  generators:
    - list: [{tenant: crm}]
  template:
    metadata: {name: "{{tenant}}"}
    spec: {environment: p1}
`, []string{`set.yaml:6:14: duplicate App "crm": AppSet "tenants" generates it from generators[0].list[0]`}},
		{"two elements generate one name", head + `  generators:
    - list: [{tenant: a}, {tenant: a}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec: {environment: p1}
`, []string{`set.yaml:6:27: duplicate App "shop-a": AppSet "tenants" generates it from generators[0].list[1]`}},
		{"matrix generators set one parameter", head + `  generators:
    - matrix:
        generators: [{list: [{tenant: a}]}, {list: [{tenant: b}]}]
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec: {environment: p1}
`, []string{`set.yaml:7:9: both generators of matrix generators[0].matrix of AppSet "tenants" set "tenant"`}},
		{"matrix of one generator", head + `  generators:
    - matrix: {generators: [{list: [{tenant: a}]}]}
  template:
    metadata: {name: "shop-{{tenant}}"}
    spec: {environment: p1}
`, []string{`set.yaml:6:15: matrix generators[0].matrix of AppSet "tenants" has 1 generators, want 2`}},
		{"empty generator", head + `  generators: [{}]
  template:
    metadata: {name: x}
    spec: {environment: p1}
`, []string{`set.yaml:5:16: generator generators[0] of AppSet "tenants" sets neither list nor matrix`}},
		{"environment and placement", head + `  generators: [{list: [{t: a}]}]
  template:
    metadata: {name: "x-{{t}}"}
    spec: {environment: p1, placement: {selector: {tier: prod}}}
`, []string{`set.yaml:8:40: spec.environment and spec.placement are both set in AppSet "tenants" (app "x-a", generated by AppSet "tenants" from generators[0].list[0] at line 5)`}},
		{"selector matches nothing", head + `  generators: [{list: [{t: a}]}]
  template:
    metadata: {name: "x-{{t}}"}
    spec: {placement: {selector: {tier: qa}, strategy: binpak}}
`, []string{
			`set.yaml:8:34: no declared environment matches the placement selector {tier=qa} of AppSet "tenants" (app "x-a", generated by AppSet "tenants" from generators[0].list[0] at line 5)`,
			`set.yaml:8:56: unknown placement strategy "binpak" in AppSet "tenants"; did you mean "binpack"? (app "x-a", generated by AppSet "tenants" from generators[0].list[0] at line 5)`,
		}},
		{"a hostname two generated apps may share", head + `  generators: [{list: [{t: a}, {t: b}]}]
  template:
    metadata: {name: "x-{{t}}"}
    spec: {placement: {selector: {tier: prod}}, hostnames: [shop.example.test]}
`, []string{`set.yaml:8:61: hostname "shop.example.test" of App "x-b" is also claimed by App "x-a", and both may be placed in p1 (app "x-b", generated by AppSet "tenants" from generators[0].list[1] at line 5)`}},
		{"parameters in a number", head + `  generators: [{list: [{t: a, n: "3"}]}]
  template:
    metadata: {name: "x-{{t}}"}
    spec: {environment: p1, limits: {maxInFlight: "{{n}}"}}
`, []string{`set.yaml:8:51: invalid spec.template.spec.limits.maxInFlight in AppSet "tenants": want a whole number, found "{{n}}"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := loadString(t, map[string]string{"envs.yaml": envsProd, "set.yaml": tt.set, "crm.yaml": appDoc("crm", "p1")})
			assert.Equal(t, tt.want, summaries(diags))
		})
	}
}

func TestAppSet_ClashNamesBothPlaces(t *testing.T) {
	one := "apiVersion: appfleet.dev/v1alpha1\nkind: AppSet\nmetadata: {name: %s}\nspec:\n  generators: [{list: [{t: x}]}]\n  template: {metadata: {name: \"app-{{t}}\"}, spec: {environment: p1}}\n"
	_, diags := loadString(t, map[string]string{"envs.yaml": envsProd, "a.yaml": fmt.Sprintf(one, "a"), "b.yaml": fmt.Sprintf(one, "b")})
	require.Len(t, diags, 1)
	assert.Equal(t, `b.yaml:5:24: duplicate App "app-x": AppSet "b" generates it from generators[0].list[0]`, diags[0].String())
	assert.Equal(t, `It is also generated by AppSet "a" from generators[0].list[0] at a.yaml:5:24. App names are unique within a fleet; change the template's name or the element.`, diags[0].Detail)
}

func TestAppSet_TooManyApps(t *testing.T) {
	list := func(key string, n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf("{%s: v%d}", key, i)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	set := "apiVersion: appfleet.dev/v1alpha1\nkind: AppSet\nmetadata: {name: bomb}\nspec:\n  generators:\n    - matrix:\n        generators: [{list: " +
		list("a", 400) + "}, {list: " + list("b", 400) + "}]\n  template: {metadata: {name: \"x-{{a}}-{{b}}\"}, spec: {environment: p1}}\n"
	_, diags := loadString(t, map[string]string{"envs.yaml": envsProd, "set.yaml": set})
	assert.Equal(t, []string{`set.yaml:7:9: AppSet "bomb" generates more than 100000 apps`}, summaries(diags))
}
