package plan

import (
	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// Snapshot is everything observed before planning. Build reads nothing else: it does no I/O.
type Snapshot struct {
	// Fleet is the name of the fleet whose resources were observed.
	Fleet string `json:"fleet"`
	// Environments holds every declared environment and every environment this fleet owns but no longer
	// declares, keyed by name. A declared environment that does not exist is present with Exists false.
	Environments map[string]EnvironmentState `json:"environments"`
}

// EnvironmentState is what was observed of one environment's runtime.
type EnvironmentState struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// Exists is true when the provider found the runtime (its process state, container or Terraform state).
	Exists bool `json:"exists"`
	// Running is true when the runtime's process is up.
	Running bool `json:"running"`
	// Reachable is true when the runtime's management API answered; Apps is meaningful only then.
	Reachable bool `json:"reachable"`
	// Error says why the environment could not be observed or reached; the plan shows it.
	Error string `json:"error,omitempty"`
	// ProviderUnavailable is true when the provider that runs the environment could not be built (it is
	// not in this build, or refuses its configuration): the environment can be neither observed nor
	// changed, so a plan that acts on it cannot be applied.
	ProviderUnavailable bool `json:"providerUnavailable,omitempty"`
	// SpecHash is spec.Environment.SpecHash of the spec the runtime was last applied with.
	SpecHash string `json:"specHash,omitempty"`
	// Spec is the spec the runtime was last applied with, when the provider recorded it; the plan then
	// shows which settings changed rather than only that the hash did.
	Spec *spec.EnvironmentSpec `json:"spec,omitempty"`
	// Endpoint is the management API's base URL, for display.
	Endpoint string `json:"endpoint,omitempty"`
	// Apps are the apps the runtime reports, secrets as hashes.
	Apps []api.App `json:"apps,omitempty"`
	// KeyFingerprints maps the salted hash (spec.SecretHash) of each declared API key's value to the
	// runtime's fingerprint of it, the form in which Apps report keys: a declared key is compared with an
	// app's by fingerprint. It is never written out: a salted hash of a key can be guessed offline.
	KeyFingerprints map[string]string `json:"-"`
	// Changes are what the provider's own planner would change (Terraform), shown nested under the environment.
	Changes []NestedChange `json:"changes,omitempty"`
	// ProviderPlan identifies the plan the provider's own planner made while observing (Terraform's plan
	// file), which applying the environment's action carries out exactly.
	ProviderPlan string `json:"providerPlan,omitempty"`
}

// NestedChange is one change of a provider's own planner (Terraform's), shown nested under its
// environment. The provider that reports it masks every sensitive value: no field holds a secret.
type NestedChange struct {
	// Address is the provider's own address of the resource: module.runtime.terraform_data.server.
	Address string `json:"address"`
	// Action is create, update, delete, replace, read or no-op.
	Action string `json:"action"`
	// Drift marks a change made outside the provider's planner since it last applied (Terraform's
	// resource_drift): shown for information, it is not something apply does.
	Drift bool `json:"drift,omitempty"`
	// Reason says why, when the provider's planner or appfleet gives one ("the runtime does not answer").
	Reason string `json:"reason,omitempty"`
	// Mode, Type, Name and ProviderName are Terraform's, for the JSON plan.
	Mode         string `json:"mode,omitempty"`
	Type         string `json:"type,omitempty"`
	Name         string `json:"name,omitempty"`
	ProviderName string `json:"providerName,omitempty"`
	// Diffs are the changed attributes, sensitive ones as "(sensitive)".
	Diffs []FieldDiff `json:"diffs,omitempty"`
	// Before and After are the resource's attributes (sensitive ones as "(sensitive)"), with Terraform's
	// masks of the values that are sensitive or known only after apply.
	Before          any `json:"before,omitempty"`
	After           any `json:"after,omitempty"`
	AfterUnknown    any `json:"afterUnknown,omitempty"`
	BeforeSensitive any `json:"beforeSensitive,omitempty"`
	AfterSensitive  any `json:"afterSensitive,omitempty"`
}

// Changes reports whether the change is something apply does (not drift, not a no-op or a read).
func (n NestedChange) Changes() bool {
	switch n.Action {
	case "create", "update", "delete", "replace":
		return !n.Drift
	default:
		return false
	}
}

// Text is the change's action, with its reason when it has one.
func (n NestedChange) Text() string {
	if n.Reason == "" {
		return n.Action
	}
	return n.Action + " (" + n.Reason + ")"
}
