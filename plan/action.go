package plan

import (
	"fmt"
	"slices"
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

// kindInfo is the plan's whole vocabulary for one kind of action: every renderer, the summary and the
// executor's progress read it here, so a kind is described in one place.
type kindInfo struct {
	// name is the kind's name in JSON and String: "create".
	name string
	// symbol is its mark in the text plan, three columns wide and right-aligned.
	symbol string
	// color is the ANSI colour of its line in the text plan ("" for none).
	color string
	// tfActions are Terraform's change.actions for it.
	tfActions []string
	// summary is its place in the summary line (1 first; 0 not counted there) and always says that it
	// is shown even when there are none of it.
	summary int
	always  bool
	// progress are the executor's words for it: while running, on success and on failure.
	progress [3]string
}

// ANSI colours of the text plan.
const (
	ansiReset   = "\x1b[0m"
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

// kinds is the table, indexed by ActionKind. A move is an update for Terraform: the resource keeps its
// address and its data, only where it runs changes. Unknown is a no-op there; RenderJSON lists it among
// the deferred changes, as a read.
var kinds = [...]kindInfo{
	NoOp:    {name: "no-op", symbol: "   ", tfActions: []string{"no-op"}, progress: [3]string{"Working", "Complete", "Failed"}},
	Create:  {name: "create", symbol: "  +", color: ansiGreen, tfActions: []string{"create"}, summary: 1, always: true, progress: [3]string{"Creating", "Creation complete", "Creation failed"}},
	Update:  {name: "update", symbol: "  ~", color: ansiYellow, tfActions: []string{"update"}, summary: 2, always: true, progress: [3]string{"Modifying", "Modifications complete", "Modification failed"}},
	Replace: {name: "replace", symbol: "-/+", color: ansiMagenta, tfActions: []string{"delete", "create"}, summary: 3, progress: [3]string{"Replacing", "Replacement complete", "Replacement failed"}},
	Delete:  {name: "delete", symbol: "  -", color: ansiRed, tfActions: []string{"delete"}, summary: 4, always: true, progress: [3]string{"Destroying", "Destruction complete", "Destruction failed"}},
	Start:   {name: "start", symbol: "  ▶", color: ansiCyan, tfActions: []string{"update"}, summary: 6, progress: [3]string{"Starting", "Start complete", "Start failed"}},
	Stop:    {name: "stop", symbol: "  ■", color: ansiCyan, tfActions: []string{"update"}, summary: 7, progress: [3]string{"Stopping", "Stop complete", "Stop failed"}},
	Move:    {name: "move", symbol: " ->", color: ansiMagenta, tfActions: []string{"update"}, summary: 5, progress: [3]string{"Moving", "Move complete", "Move failed"}},
	Unknown: {name: "unknown", symbol: "  ?", tfActions: []string{"no-op"}, progress: [3]string{"Working", "Complete", "Failed"}},
}

// Kinds lists every action kind, in the order of the enum.
func Kinds() []ActionKind {
	out := make([]ActionKind, len(kinds))
	for i := range kinds {
		out[i] = ActionKind(i)
	}
	return out
}

// summaryOrder are the kinds the summary line counts, in its order.
var summaryOrder = func() []ActionKind {
	var out []ActionKind
	for i, k := range kinds {
		if k.summary > 0 {
			out = append(out, ActionKind(i))
		}
	}
	slices.SortFunc(out, func(a, b ActionKind) int { return kinds[a].summary - kinds[b].summary })
	return out
}()

func (k ActionKind) info() kindInfo {
	if k < 0 || int(k) >= len(kinds) {
		return kinds[NoOp]
	}
	return kinds[k]
}

// String is the kind's lower-case name, as used in JSON: "create", "no-op", ...
func (k ActionKind) String() string {
	if k < 0 || int(k) >= len(kinds) {
		return fmt.Sprintf("ActionKind(%d)", int(k))
	}
	return kinds[k].name
}

// Symbol is the kind's mark in the text plan, three columns wide and right-aligned.
func (k ActionKind) Symbol() string { return k.info().symbol }

// Color is the ANSI colour of the kind's line in the text plan, "" for none.
func (k ActionKind) Color() string { return k.info().color }

// TerraformActions are the kind's change.actions in Terraform's JSON plan format.
func (k ActionKind) TerraformActions() []string { return slices.Clone(k.info().tfActions) }

// Progress are the executor's words for the kind: while it runs ("Creating"), when it succeeded
// ("Creation complete") and when it failed ("Creation failed").
func (k ActionKind) Progress() (running, done, failed string) {
	p := k.info().progress
	return p[0], p[1], p[2]
}

// Changes reports whether apply performs something for this kind.
func (k ActionKind) Changes() bool { return k != NoOp && k != Unknown }

// MarshalText writes the kind's name.
func (k ActionKind) MarshalText() ([]byte, error) {
	if k < 0 || int(k) >= len(kinds) {
		return nil, fmt.Errorf("unknown action kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a kind's name.
func (k *ActionKind) UnmarshalText(b []byte) error {
	for i, n := range kinds {
		if n.name == string(b) {
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
	// Reason says what the action does and why, for people; ReasonCode says it for programs. Neither
	// ever drives apply.
	Reason     string     `json:"reason"`
	ReasonCode ReasonCode `json:"reasonCode,omitempty"`
	// Warning is shown beside the action: an unreachable runtime, a resource kept although undeclared.
	Warning string `json:"warning,omitempty"`
	// Placement says, for an app placed by a selector now, where it goes and why; for display only.
	Placement string `json:"placement,omitempty"`
	// Before is what was observed, After what is declared (both redacted).
	Before *Object        `json:"before,omitempty"`
	After  *Object        `json:"after,omitempty"`
	Diffs  []FieldDiff    `json:"diffs,omitempty"`
	Nested []NestedChange `json:"nested,omitempty"`
	// ProviderPlan, for an environment, identifies the provider's own plan (Terraform's plan file) that
	// applying the action carries out exactly; empty when the provider made none.
	ProviderPlan string `json:"providerPlan,omitempty"`
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
