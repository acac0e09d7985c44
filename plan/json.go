package plan

import (
	"cmp"
	"encoding/json"
	"io"
	"maps"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

// JSONFormatVersion is the format_version of the JSON plan: Terraform's machine-readable plan format,
// which github.com/hashicorp/terraform-json reads (it accepts ">= 0.1, < 2.0").
const JSONFormatVersion = "1.2"

// ProviderName is the provider_name of every resource change in the JSON plan.
const ProviderName = "appfleet.dev/appfleet/appfleet"

type jsonPlan struct {
	FormatVersion   string               `json:"format_version"`
	Applyable       bool                 `json:"applyable"`
	Complete        bool                 `json:"complete"`
	Errored         bool                 `json:"errored"`
	ResourceChanges []jsonResourceChange `json:"resource_changes"`
	// ResourceDrift holds what a provider's own planner found changed outside it (Terraform's drift).
	ResourceDrift []jsonResourceChange `json:"resource_drift,omitempty"`
	// DeferredChanges are the resources that could not be planned because what they depend on did not
	// answer (Unknown actions), as Terraform lists the changes it defers; they are never in
	// ResourceChanges, so no tool reads them as no-ops.
	DeferredChanges []jsonDeferredChange `json:"deferred_changes,omitempty"`
	Appfleet        jsonPlanExtra        `json:"appfleet"`
}

type jsonDeferredChange struct {
	// Reason is one of Terraform's deferral reasons: "absent_prereq" (the runtime that holds the
	// resource, or may hold it, did not answer).
	Reason         string             `json:"reason"`
	ResourceChange jsonResourceChange `json:"resource_change"`
}

type jsonPlanExtra struct {
	Fleet    string        `json:"fleet"`
	Digest   string        `json:"digest,omitempty"`
	Options  Options       `json:"options"`
	Summary  jsonSummary   `json:"summary"`
	Message  string        `json:"message"`
	Blocked  []jsonBlocked `json:"blocked,omitempty"`
	DataLoss []Address     `json:"data_loss,omitempty"`
}

type jsonSummary struct {
	Create  int `json:"create"`
	Update  int `json:"update"`
	Replace int `json:"replace"`
	Delete  int `json:"delete"`
	Start   int `json:"start"`
	Stop    int `json:"stop"`
	Move    int `json:"move"`
	Unknown int `json:"unknown"`
}

type jsonBlocked struct {
	Address Address `json:"address"`
	Reason  string  `json:"reason"`
}

type jsonResourceChange struct {
	Address       string     `json:"address"`
	ModuleAddress string     `json:"module_address,omitempty"`
	Mode          string     `json:"mode"`
	Type          string     `json:"type"`
	Name          string     `json:"name"`
	ProviderName  string     `json:"provider_name"`
	Change        jsonChange `json:"change"`
	ActionReason  string     `json:"action_reason,omitempty"`
	// Appfleet is a *jsonChangeExtra for appfleet's own resources, a jsonNestedExtra for a provider's.
	Appfleet any `json:"appfleet"`
}

// jsonNestedExtra marks a resource change of a provider's own planner, nested under an environment.
type jsonNestedExtra struct {
	Kind        string     `json:"kind"` // always "nested"
	Environment string     `json:"environment"`
	Address     string     `json:"address"` // the provider's own address, without the environment prefix
	Reason      string     `json:"reason,omitempty"`
	Drift       bool       `json:"drift,omitempty"`
	Diffs       []jsonDiff `json:"diffs,omitempty"`
}

type jsonChange struct {
	Actions         []string `json:"actions"`
	Before          any      `json:"before"`
	After           any      `json:"after"`
	AfterUnknown    any      `json:"after_unknown"`
	BeforeSensitive any      `json:"before_sensitive"`
	AfterSensitive  any      `json:"after_sensitive"`
}

type jsonChangeExtra struct {
	Kind               string          `json:"kind"`
	Reason             string          `json:"reason"`
	Warning            string          `json:"warning,omitempty"`
	Placement          string          `json:"placement,omitempty"`
	Environment        string          `json:"environment,omitempty"`
	FromEnvironment    string          `json:"from_environment,omitempty"`
	DataLoss           bool            `json:"data_loss"`
	DataLossReasons    []string        `json:"data_loss_reasons,omitempty"`
	Blocked            string          `json:"blocked,omitempty"`
	DependsOn          []Address       `json:"depends_on,omitempty"`
	Fingerprint        string          `json:"fingerprint"`
	Unobserved         bool            `json:"unobserved,omitempty"`
	ObservedGeneration int64           `json:"observed_generation,omitempty"`
	Diffs              []jsonDiff      `json:"diffs,omitempty"`
	Nested             []jsonNestedRef `json:"nested,omitempty"`
}

type jsonDiff struct {
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Before    string `json:"before,omitempty"`
	After     string `json:"after,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
	DataLoss  bool   `json:"data_loss,omitempty"`
}

// RenderJSON writes the plan in Terraform's machine-readable plan format (format_version, resource_changes
// with address, mode, type, name, provider_name and change{actions, before, after, before_sensitive,
// after_sensitive}), so tools written for Terraform plans read it. appfleet's own details travel in an
// "appfleet" object on the plan and on each resource change. Secret values are written as "(sensitive)"
// and marked in before_sensitive/after_sensitive; no hash or value of a secret is written.
func RenderJSON(w io.Writer, p *Plan) error {
	s := p.Summary()
	out := jsonPlan{
		FormatVersion:   JSONFormatVersion,
		Applyable:       s.Changes() > 0 && len(p.Blocked()) == 0,
		Complete:        p.Complete(),
		ResourceChanges: []jsonResourceChange{},
		Appfleet: jsonPlanExtra{
			Fleet: p.Fleet, Digest: p.Digest, Options: p.Options, Message: s.String(),
			Summary: jsonSummary{Create: s[Create], Update: s[Update], Replace: s[Replace], Delete: s[Delete],
				Start: s[Start], Stop: s[Stop], Move: s[Move], Unknown: s[Unknown]},
		},
	}
	for _, a := range p.Blocked() {
		out.Appfleet.Blocked = append(out.Appfleet.Blocked, jsonBlocked{Address: a.Address, Reason: a.Blocked})
	}
	for _, a := range p.DataLoss() {
		out.Appfleet.DataLoss = append(out.Appfleet.DataLoss, a.Address)
	}
	for _, a := range p.Actions {
		extra := &jsonChangeExtra{
			Kind: a.Kind.String(), Reason: a.Reason, Warning: a.Warning, Placement: a.Placement, Environment: a.Environment,
			FromEnvironment: a.FromEnvironment, DataLoss: a.DataLoss, DataLossReasons: a.DataLossReasons,
			Blocked: a.Blocked, DependsOn: a.DependsOn, Fingerprint: a.Fingerprint, Unobserved: a.Unobserved,
			ObservedGeneration: a.ObservedGeneration, Nested: nestedSummary(a.Nested), Diffs: jsonDiffs(a.Diffs),
		}
		rc := jsonResourceChange{
			Address: string(a.Address), Mode: "managed", Type: string(a.ResourceType), Name: a.Name,
			ProviderName: ProviderName, Appfleet: extra,
		}
		rc.ActionReason = string(a.ReasonCode)
		rc.Change.Actions = a.Kind.TerraformActions()
		rc.Change.Before, rc.Change.BeforeSensitive = jsonObject(a, a.Before, true)
		rc.Change.After, rc.Change.AfterSensitive = jsonObject(a, a.After, false)
		rc.Change.AfterUnknown = map[string]any{}
		if a.Kind == Unknown {
			// What it will be is not known at all; what it is now is to be read once its runtime answers.
			rc.Change.Actions, rc.Change.After, rc.Change.AfterUnknown = []string{"read"}, nil, true
			out.DeferredChanges = append(out.DeferredChanges, jsonDeferredChange{Reason: "absent_prereq", ResourceChange: rc})
			continue
		}
		out.ResourceChanges = append(out.ResourceChanges, rc)
		for _, n := range a.Nested {
			if n.Drift {
				out.ResourceDrift = append(out.ResourceDrift, jsonNested(a, n))
			} else {
				out.ResourceChanges = append(out.ResourceChanges, jsonNested(a, n))
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// nestedSummary is the address and action of each nested change, as the environment's own entry lists them.
func nestedSummary(ns []NestedChange) []jsonNestedRef {
	var out []jsonNestedRef
	for _, n := range ns {
		out = append(out, jsonNestedRef{Address: n.Address, Action: n.Action, Drift: n.Drift})
	}
	return out
}

type jsonNestedRef struct {
	Address string `json:"address"`
	Action  string `json:"action"`
	Drift   bool   `json:"drift,omitempty"`
}

func jsonDiffs(ds []FieldDiff) []jsonDiff {
	var out []jsonDiff
	for _, d := range ds {
		out = append(out, jsonDiff{Path: d.Path, Kind: string(d.Kind), Before: d.Before, After: d.After,
			Sensitive: d.Sensitive, DataLoss: d.DataLoss})
	}
	return out
}

// jsonNested is a nested change as a resource change of its own, its address prefixed by its
// environment's ("environment.cloud.module.runtime.terraform_data.server"), so that Terraform's tools
// list it beside appfleet's resources.
func jsonNested(a *Action, n NestedChange) jsonResourceChange {
	prefix := string(a.Address) + "."
	rc := jsonResourceChange{
		Address: prefix + n.Address, Mode: cmp.Or(n.Mode, "managed"), Type: n.Type, Name: n.Name,
		ProviderName: n.ProviderName,
		Appfleet: jsonNestedExtra{Kind: "nested", Environment: a.Name, Address: n.Address, Reason: n.Reason,
			Drift: n.Drift, Diffs: jsonDiffs(n.Diffs)},
	}
	if i := strings.LastIndex(n.Address, "."+n.Type+"."); n.Type != "" && i > 0 {
		rc.ModuleAddress = prefix + n.Address[:i]
	} else {
		rc.ModuleAddress = string(a.Address)
	}
	switch n.Action {
	case "replace":
		rc.Change.Actions = []string{"delete", "create"}
	case "":
		rc.Change.Actions = []string{"no-op"}
	default:
		rc.Change.Actions = []string{n.Action}
	}
	rc.Change.Before, rc.Change.After = n.Before, n.After
	rc.Change.AfterUnknown = orEmpty(n.AfterUnknown)
	rc.Change.BeforeSensitive = orEmpty(n.BeforeSensitive)
	rc.Change.AfterSensitive = orEmpty(n.AfterSensitive)
	return rc
}

func orEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

// jsonObject is one side of a change as a JSON object with secrets masked, and its sensitivity mask.
func jsonObject(a *Action, o *Object, before bool) (any, any) {
	if o == nil {
		return nil, map[string]any{}
	}
	v := map[string]any{}
	mask := map[string]any{}
	if len(o.Labels) > 0 {
		v["labels"] = maps.Clone(o.Labels)
	}
	switch a.ResourceType {
	case TypeApp:
		if o.App != nil {
			s := *o.App
			var keyMask []any
			if s.APIKeys != nil {
				keys := make([]spec.APIKey, len(s.APIKeys))
				for i, k := range s.APIKeys {
					keys[i] = spec.APIKey{Name: k.Name, Value: spec.SecretRef{FromEnv: k.Value.FromEnv, FromFile: k.Value.FromFile}}
					keyMask = append(keyMask, map[string]any{"value": true})
				}
				s.APIKeys = keys
			}
			var dsnMasked bool
			if s.Database.DSN != nil {
				s.Database.DSN = &spec.SecretRef{FromEnv: s.Database.DSN.FromEnv, FromFile: s.Database.DSN.FromFile}
				dsnMasked = true
			}
			m := toMap(s)
			if keyMask != nil {
				if keys, ok := m["apiKeys"].([]any); ok {
					for _, k := range keys {
						if km, ok := k.(map[string]any); ok {
							km["value"] = sensitiveText
						}
					}
				}
				mask["apiKeys"] = keyMask
			}
			if dsnMasked {
				if db, ok := m["database"].(map[string]any); ok {
					db["dsn"] = sensitiveText
				}
				mask["database"] = map[string]any{"dsn": true}
			}
			maps.Copy(v, m)
		}
		if before {
			v["status"] = o.Status
			v["generation"] = o.Generation
			if o.Error != "" {
				v["error"] = o.Error
			}
		}
	case TypeEnvironment:
		if o.Environment != nil {
			maps.Copy(v, toMap(*o.Environment))
		} else if a.Provider != "" {
			v["provider"] = a.Provider
		}
		v["spec_hash"] = o.SpecHash
		if before {
			v["status"] = o.Status
			if o.Endpoint != "" {
				v["endpoint"] = o.Endpoint
			}
			if o.Error != "" {
				v["error"] = o.Error
			}
		}
	}
	return v, mask
}

func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{}
	}
	return m
}
