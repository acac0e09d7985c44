package plan

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func buildFixture(t *testing.T, name string) *Plan {
	t.Helper()
	f := loadFixture(t, filepath.Join("testdata/build", name))
	p, _ := Build(f.desired, f.observed, f.options)
	require.NotNil(t, p)
	return p
}

// TestRenderJSONTerraform checks that the JSON plan reads as a Terraform plan with terraform-json, that
// the extra appfleet fields do not disturb it, and that every kind maps onto Terraform's actions.
func TestRenderJSONTerraform(t *testing.T) {
	tests := []struct {
		fixture string
		address string
		actions tfjson.Actions
		kind    string
	}{
		{"create-all", "app.crm", tfjson.Actions{tfjson.ActionCreate}, "create"},
		{"create-all", "environment.dev", tfjson.Actions{tfjson.ActionCreate}, "create"},
		{"mixed", "app.shop", tfjson.Actions{tfjson.ActionUpdate}, "update"},
		{"mixed", "app.legacy", tfjson.Actions{tfjson.ActionDelete}, "delete"},
		{"replace", "app.crm", tfjson.Actions{tfjson.ActionDelete, tfjson.ActionCreate}, "replace"},
		{"start-stop", "app.a", tfjson.Actions{tfjson.ActionUpdate}, "start"},
		{"start-stop", "app.b", tfjson.Actions{tfjson.ActionUpdate}, "stop"},
		{"prune-off", "app.legacy", tfjson.Actions{tfjson.ActionNoop}, "no-op"},
		{"move", "app.crm", tfjson.Actions{tfjson.ActionUpdate}, "move"},
		{"move-resume", "app.shop", tfjson.Actions{tfjson.ActionUpdate}, "move"},
		{"move-driver", "app.crm", tfjson.Actions{tfjson.ActionDelete, tfjson.ActionCreate}, "replace"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.address, func(t *testing.T) {
			p := buildFixture(t, tt.fixture)
			var b bytes.Buffer
			require.NoError(t, RenderJSON(&b, p))

			var tp tfjson.Plan
			require.NoError(t, json.Unmarshal(b.Bytes(), &tp))
			require.NoError(t, tp.Validate())
			var rc *tfjson.ResourceChange
			for _, c := range tp.ResourceChanges {
				if c.Address == tt.address {
					rc = c
				}
			}
			require.NotNil(t, rc, "no resource change %s", tt.address)
			assert.Equal(t, tt.actions, rc.Change.Actions)
			assert.Equal(t, tfjson.ManagedResourceMode, rc.Mode)
			assert.Equal(t, ProviderName, rc.ProviderName)

			// The appfleet extras are there for tools that know them.
			var raw struct {
				ResourceChanges []struct {
					Address  string          `json:"address"`
					Appfleet jsonChangeExtra `json:"appfleet"`
				} `json:"resource_changes"`
				Appfleet jsonPlanExtra `json:"appfleet"`
			}
			require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
			assert.Equal(t, p.Summary().String(), raw.Appfleet.Message)
			for _, c := range raw.ResourceChanges {
				if c.Address == tt.address {
					assert.Equal(t, tt.kind, c.Appfleet.Kind)
					assert.NotEmpty(t, c.Appfleet.Fingerprint)
				}
			}
		})
	}
}

// TestRenderJSONTruth: a JSON plan is complete only when every resource it acts on was observed and no
// target narrowed it; an app that could not be planned is a deferred change, never a no-op; a plan that
// acts on an environment whose provider is unavailable is not applyable.
func TestRenderJSONTruth(t *testing.T) {
	tests := []struct {
		fixture             string
		complete, applyable bool
		deferred            []string
	}{
		{"mixed", true, true, nil},
		{"targets", false, true, nil},
		{"unreachable", false, true, []string{"app.shop"}},
		{"move-unreachable", false, true, []string{"app.crm", "app.shop"}},
		{"provider-unavailable", false, false, nil},
		{"provider-unavailable-target", false, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			p := buildFixture(t, tt.fixture)
			var b bytes.Buffer
			require.NoError(t, RenderJSON(&b, p))
			var tp tfjson.Plan
			require.NoError(t, json.Unmarshal(b.Bytes(), &tp))
			require.NoError(t, tp.Validate())
			require.NotNil(t, tp.Complete)
			assert.Equal(t, tt.complete, *tp.Complete, "complete")
			var raw struct {
				Applyable bool `json:"applyable"`
			}
			require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
			assert.Equal(t, tt.applyable, raw.Applyable, "applyable")
			var deferred []string
			for _, d := range tp.DeferredChanges {
				deferred = append(deferred, d.ResourceChange.Address)
				assert.Equal(t, "absent_prereq", d.Reason)
				assert.False(t, d.ResourceChange.Change.Actions.NoOp(), "%s: an app that was not observed is no no-op", d.ResourceChange.Address)
			}
			assert.Equal(t, tt.deferred, deferred)
			for _, rc := range tp.ResourceChanges {
				assert.NotContains(t, tt.deferred, rc.Address, "a deferred change is not a resource change")
			}
		})
	}
}

// TestRenderJSONSensitive checks that secrets are masked and marked in before_sensitive/after_sensitive.
func TestRenderJSONSensitive(t *testing.T) {
	p := buildFixture(t, "secrets")
	var b bytes.Buffer
	require.NoError(t, RenderJSON(&b, p))
	var tp tfjson.Plan
	require.NoError(t, json.Unmarshal(b.Bytes(), &tp))
	var rc *tfjson.ResourceChange
	for _, c := range tp.ResourceChanges {
		if c.Address == "app.crm" {
			rc = c
		}
	}
	require.NotNil(t, rc)
	after := rc.Change.After.(map[string]any)
	keys := after["apiKeys"].([]any)
	require.Len(t, keys, 2)
	assert.Equal(t, sensitiveText, keys[0].(map[string]any)["value"])
	assert.Equal(t, sensitiveText, after["database"].(map[string]any)["dsn"])
	assert.Equal(t, map[string]any{
		"apiKeys":  []any{map[string]any{"value": true}, map[string]any{"value": true}},
		"database": map[string]any{"dsn": true},
	}, rc.Change.AfterSensitive)
	assert.NotContains(t, b.String(), "sha256", "the JSON plan carries no secret hash")
}

// TestRenderGolden pins the markdown and JSON renderings of one representative plan.
func TestRenderGolden(t *testing.T) {
	p := buildFixture(t, "mixed")
	p.Digest = "sha256:0f1e2d"
	for name, ext := range map[string]string{"markdown": "md", "json": "json"} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, renderers()[name](&b, p))
			golden(t, filepath.Join("testdata", "mixed."+ext+".golden"), b.String())
		})
	}
}

func TestRenderTextColor(t *testing.T) {
	p := buildFixture(t, "mixed")
	var plain, color bytes.Buffer
	require.NoError(t, RenderText(&plain, p, TextOptions{}))
	require.NoError(t, RenderText(&color, p, TextOptions{Color: true}))
	assert.NotContains(t, plain.String(), "\x1b[")
	assert.Contains(t, color.String(), ansiGreen)
	assert.Equal(t, p.String(), plain.String())
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{"empty", Summary{}, "No changes. The fleet matches the manifests."},
		{"unknown only: not said to match", Summary{Unknown: 2}, "No changes for what could be observed; the fleet may still differ from the manifests."},
		{"basic", Summary{Create: 2, Update: 1, Delete: 1}, "Plan: 2 to create, 1 to update, 1 to delete."},
		{"all", Summary{Create: 1, Update: 2, Replace: 3, Delete: 4, Start: 5, Stop: 6},
			"Plan: 1 to create, 2 to update, 3 to replace, 4 to delete, 5 to start, 6 to stop."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.s.String()) })
	}
}

func TestActionKindText(t *testing.T) {
	for k := NoOp; k <= Unknown; k++ {
		b, err := k.MarshalText()
		require.NoError(t, err)
		var back ActionKind
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, k, back)
		assert.Len(t, []rune(k.Symbol()), 3, k.String())
	}
	var k ActionKind
	assert.Error(t, k.UnmarshalText([]byte("explode")))
	assert.Equal(t, "ActionKind(42)", ActionKind(42).String())
}

// TestRenderJSONNested checks that a provider's own resource changes are resource changes of their own in
// the JSON plan, addressed under their environment, drift apart in resource_drift, and that terraform-json
// still reads the file.
func TestRenderJSONNested(t *testing.T) {
	p := buildFixture(t, "terraform")
	var b bytes.Buffer
	require.NoError(t, RenderJSON(&b, p))
	var tp tfjson.Plan
	require.NoError(t, json.Unmarshal(b.Bytes(), &tp))
	require.NoError(t, tp.Validate())

	byAddr := map[string]*tfjson.ResourceChange{}
	for _, c := range tp.ResourceChanges {
		byAddr[c.Address] = c
	}
	rc := byAddr["environment.changed.module.runtime.terraform_data.server"]
	require.NotNil(t, rc, "the nested change is a resource change of its own")
	assert.Equal(t, tfjson.Actions{tfjson.ActionDelete, tfjson.ActionCreate}, rc.Change.Actions)
	assert.Equal(t, "terraform_data", rc.Type)
	assert.Equal(t, "server", rc.Name)
	assert.Equal(t, "environment.changed.module.runtime", rc.ModuleAddress)
	assert.Equal(t, "terraform.io/builtin/terraform", rc.ProviderName)
	assert.Equal(t, map[string]any{"input": map[string]any{"token_file": true}}, rc.Change.AfterSensitive)
	assert.Equal(t, map[string]any{"input": map[string]any{"log_level": "debug", "token_file": "(sensitive)"}}, rc.Change.After)
	require.NotNil(t, byAddr["environment.dead.module.runtime.terraform_data.server"])
	require.NotNil(t, byAddr["environment.changed"], "the environment's own entry stays")

	require.Len(t, tp.ResourceDrift, 1)
	assert.Equal(t, "environment.drifted.module.runtime.terraform_data.server", tp.ResourceDrift[0].Address)
	assert.Equal(t, tfjson.Actions{tfjson.ActionUpdate}, tp.ResourceDrift[0].Change.Actions)
	assert.Nil(t, byAddr["environment.drifted.module.runtime.terraform_data.server"], "drift is not a pending change")

	var raw struct {
		ResourceChanges []struct {
			Address  string          `json:"address"`
			Appfleet jsonNestedExtra `json:"appfleet"`
		} `json:"resource_changes"`
	}
	require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
	for _, c := range raw.ResourceChanges {
		if c.Address == "environment.changed.module.runtime.terraform_data.server" {
			want := jsonNestedExtra{Kind: "nested", Environment: "changed", Address: "module.runtime.terraform_data.server",
				Reason: "an attribute that forces replacement changes",
				Diffs: []jsonDiff{{Path: "input.log_level", Kind: "change", Before: `"info"`, After: `"debug"`},
					{Path: "input.token_file", Kind: "change", Before: "(sensitive)", After: "(sensitive)", Sensitive: true}}}
			if diff := cmp.Diff(want, c.Appfleet); diff != "" {
				t.Errorf("nested change (-want +got):\n%s", diff)
			}
		}
	}
}

// TestRenderMarkdownNested checks that nested changes and their attributes sit in the diff block.
func TestRenderMarkdownNested(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, RenderMarkdown(&b, buildFixture(t, "terraform")))
	md := b.String()
	assert.Contains(t, md, "!     ± module.runtime.terraform_data.server  replace (an attribute that forces replacement changes)\n")
	assert.Contains(t, md, "!         ~ input.log_level                   \"info\" -> \"debug\"\n")
	assert.Contains(t, md, "drift: update (changed outside Terraform)")
}
