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
	// Changes are what the provider's own planner would change (Terraform), shown nested under the environment.
	Changes []NestedChange `json:"changes,omitempty"`
}

// NestedChange is one change of a provider's own planner.
type NestedChange struct {
	Address string `json:"address"`
	Action  string `json:"action"` // create, update, delete, replace, no-op
	// Reason says why, for display only (a docker container replaced for a runtime upgrade).
	Reason string `json:"reason,omitempty"`
}

// Text is the change's action, with its reason when it has one.
func (n NestedChange) Text() string {
	if n.Reason == "" {
		return n.Action
	}
	return n.Action + " (" + n.Reason + ")"
}
