package plan

import (
	"fmt"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

// ActionKind is what an action does to one resource. The set is closed; the zero value is NoOp.
type ActionKind int

// The action kinds.
const (
	// NoOp leaves the resource as it is; apply performs nothing.
	NoOp ActionKind = iota
	// Create makes a resource that does not exist.
	Create
	// Update changes a resource in place, keeping its data.
	Update
	// Replace deletes a resource (an app's data is archived) and creates it again empty. Always data loss.
	Replace
	// Delete removes a resource; an app's data is archived in its runtime, not destroyed.
	Delete
	// Start starts a stopped app whose spec is otherwise up to date.
	Start
	// Stop stops a running app whose spec is otherwise up to date.
	Stop
	// Move carries an app and its data to another environment: stopped in the source, its snapshot
	// restored in the target, switched to, and archived in the source. It deletes nothing, so it is not
	// data loss (unless its field diffs are) and a protected app may move. An app whose database driver
	// or isolation changes as well is planned as a Replace across environments instead, with data loss.
	Move
	// Unknown stands for an app that could not be observed because its environment is unreachable.
	// Apply performs nothing for it; planning again once the environment answers shows what it needs.
	Unknown
)

var kindNames = [...]string{"no-op", "create", "update", "replace", "delete", "start", "stop", "move", "unknown"}

// String is the kind's lower-case name, as used in JSON: "create", "no-op", ...
func (k ActionKind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("ActionKind(%d)", int(k))
	}
	return kindNames[k]
}

// Symbol is the kind's mark in the text plan, three columns wide and right-aligned.
func (k ActionKind) Symbol() string {
	switch k {
	case Create:
		return "  +"
	case Update:
		return "  ~"
	case Replace:
		return "-/+"
	case Delete:
		return "  -"
	case Start:
		return "  ▶"
	case Stop:
		return "  ■"
	case Move:
		return " ->"
	case Unknown:
		return "  ?"
	default:
		return "   "
	}
}

// Changes reports whether apply performs something for this kind.
func (k ActionKind) Changes() bool { return k != NoOp && k != Unknown }

// MarshalText writes the kind's name.
func (k ActionKind) MarshalText() ([]byte, error) {
	if k < 0 || int(k) >= len(kindNames) {
		return nil, fmt.Errorf("unknown action kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a kind's name.
func (k *ActionKind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n == string(b) {
			*k = ActionKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown action kind %q", b)
}

// ResourceType is the kind of resource an address names, spelled as in the JSON plan.
type ResourceType string

// The resource types.
const (
	TypeEnvironment ResourceType = "appfleet_environment"
	TypeApp         ResourceType = "appfleet_app"
)

// Address names one resource in a plan: "environment.<name>" or "app.<name>". An app observed under the
// same name in more than one environment is told apart as "app.<name>@<environment>".
type Address string

// EnvironmentAddress is the address of the named environment.
func EnvironmentAddress(name string) Address { return Address("environment." + name) }

// AppAddress is the address of the named app.
func AppAddress(name string) Address { return Address("app." + name) }

// ParseAddress checks that s is "environment.<name>" or "app.<name>" and returns it.
func ParseAddress(s string) (Address, error) {
	kind, name, ok := strings.Cut(s, ".")
	if !ok || name == "" || (kind != "environment" && kind != "app") || strings.ContainsAny(name, ". @") {
		return "", fmt.Errorf("address %q: want environment.<name> or app.<name>", s)
	}
	return Address(s), nil
}

// FieldDiffKind says whether a field is added, removed or changed.
type FieldDiffKind string

// The field diff kinds.
const (
	FieldAdd    FieldDiffKind = "add"
	FieldRemove FieldDiffKind = "remove"
	FieldChange FieldDiffKind = "change"
)

// Symbol is the kind's mark in the text plan.
func (k FieldDiffKind) Symbol() string {
	switch k {
	case FieldAdd:
		return "+"
	case FieldRemove:
		return "-"
	default:
		return "~"
	}
}

// FieldDiff is one changed field of a resource. Before and After are display text, never a secret's
// value: a sensitive field shows "(sensitive)".
type FieldDiff struct {
	// Path is dotted: "settings.currency", "collections.orders", "collections.orders.total".
	Path      string        `json:"path"`
	Kind      FieldDiffKind `json:"kind"`
	Before    string        `json:"before,omitempty"`
	After     string        `json:"after,omitempty"`
	Sensitive bool          `json:"sensitive,omitempty"`
	DataLoss  bool          `json:"dataLoss,omitempty"`
}

// Action is what the plan does to one resource.
//
// Invariants: Address is unique in a plan; DependsOn names only addresses of the same plan; Before is nil
// when the resource was not observed, After is nil when it is deleted; neither holds a secret's value.
type Action struct {
	Address      Address      `json:"address"`
	ResourceType ResourceType `json:"type"`
	// Name is the environment's or app's name.
	Name string     `json:"name"`
	Kind ActionKind `json:"kind"`
	// Environment is, for an app, the environment the action runs in: the declared one, or for a delete
	// the one the app was observed in.
	Environment string `json:"environment,omitempty"`
	// FromEnvironment is, for an app that changes environment (a Move, or a Replace across
	// environments), the one its data is observed in now.
	FromEnvironment string `json:"fromEnvironment,omitempty"`
	// Provider is, for an environment, the provider that runs it.
	Provider string `json:"provider,omitempty"`
	// Reason says what the action does and why, for display only; it never drives apply.
	Reason string `json:"reason"`
	// Warning is shown beside the action: an unreachable runtime, a resource kept although undeclared.
	Warning string `json:"warning,omitempty"`
	// Placement says, for an app placed by a selector now, where it goes and why; for display only.
	Placement string `json:"placement,omitempty"`
	// Before is what was observed, After what is declared (both redacted).
	Before *Object        `json:"before,omitempty"`
	After  *Object        `json:"after,omitempty"`
	Diffs  []FieldDiff    `json:"diffs,omitempty"`
	Nested []NestedChange `json:"nested,omitempty"`
	// DataLoss is true when applying the action loses data; DataLossReasons say which.
	DataLoss        bool     `json:"dataLoss,omitempty"`
	DataLossReasons []string `json:"dataLossReasons,omitempty"`
	// Unobserved is true when what the resource is now could not be observed (its environment's
	// provider failed, or its runtime did not answer): the action is a best guess, and a plan holding
	// one is not complete. An Unknown action is unobserved by its kind and leaves it false.
	Unobserved bool `json:"unobserved,omitempty"`
	// Blocked, when set, says why the action must not be applied (a protected app would be deleted or
	// replaced). A plan with a blocked action is never applied.
	Blocked   string    `json:"blocked,omitempty"`
	DependsOn []Address `json:"dependsOn,omitempty"`
	// Fingerprint is what was observed of the resource: for an app "absent", "unknown" or
	// "generation:<n>,state:<running|stopped|error>,digest:<labels and spec, secrets left out>"; for an
	// environment "absent" or "hash:<specHash>,running:<bool>". A saved plan is stale when it changed.
	Fingerprint string `json:"fingerprint"`
	// ObservedGeneration is the app's generation when observed (0 when absent), sent as If-Match.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// Object is one side of an action's change: the observed or the declared resource, secrets as hashes.
type Object struct {
	Labels map[string]string `json:"labels,omitempty"`
	// App is an app's spec, redacted.
	App *spec.AppSpec `json:"app,omitempty"`
	// Environment is a declared environment's spec; an observed one carries only SpecHash.
	Environment *spec.EnvironmentSpec `json:"environment,omitempty"`
	// SpecHash is an environment's spec.Environment.SpecHash.
	SpecHash string `json:"specHash,omitempty"`
	// Status is what was observed: an app's status, an environment's "running", "stopped" or "unreachable".
	Status string `json:"status,omitempty"`
	// Error is the observed app's or environment's error.
	Error string `json:"error,omitempty"`
	// Generation is an observed app's generation.
	Generation int64 `json:"generation,omitempty"`
	// Endpoint is an observed environment's management API, for display.
	Endpoint string `json:"endpoint,omitempty"`
}
