package providers

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/appfleet/appfleet/spec"
)

// ErrNotFound is what Observe returns when the environment's runtime does not exist.
var ErrNotFound = errors.New("runtime not found")

// Endpoint is how the control plane reaches a runtime's management API.
type Endpoint struct {
	URL   string `json:"url"` // base URL, e.g. http://127.0.0.1:7410
	Token string `json:"-"`   // bearer token; never printed
}

// ResourceChange is one change a provider's own planner (Terraform's) would make, or found made outside
// it. The engine shows it in the plan nested under the environment. The provider that reports it masks
// every sensitive value: no field holds a secret.
type ResourceChange struct {
	// Address is the provider's own address of the resource: module.runtime.terraform_data.server.
	Address string `json:"address"`
	// Action is create, update, delete, replace, read or no-op.
	Action string `json:"action"`
	// Drift marks a change made outside the provider's planner since it last applied (Terraform's
	// resource_drift): shown for information, it is not something apply does.
	Drift bool `json:"drift,omitempty"`
	// Reason says why, when the provider's planner or the provider gives one ("the runtime does not answer").
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

// FieldDiff is one changed attribute of a ResourceChange.
type FieldDiff struct {
	// Path is dotted: "triggers_replace.token".
	Path string `json:"path"`
	// Kind is add, remove or change.
	Kind      string `json:"kind"`
	Before    string `json:"before,omitempty"`
	After     string `json:"after,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

// Observed is what a provider sees of one environment's runtime.
type Observed struct {
	Environment string `json:"environment"`
	Fleet       string `json:"fleet"`
	Provider    string `json:"provider"`
	// Running is false when the runtime exists (data, container) but its process is not up.
	Running  bool     `json:"running"`
	Endpoint Endpoint `json:"endpoint"`
	// SpecHash is spec.Environment.SpecHash of the spec the runtime was last applied with.
	SpecHash string `json:"specHash"`
	// Spec is the spec the runtime was last applied with, when the provider keeps it (nil otherwise).
	Spec *spec.EnvironmentSpec `json:"spec,omitempty"`
	// Detail is provider-specific, for display only (pid, container id, ...).
	Detail map[string]string `json:"detail,omitempty"`
	// Changes are what the provider's own planner would change (Terraform); empty elsewhere.
	Changes []ResourceChange `json:"changes,omitempty"`
	// Plan identifies the plan of its own the provider made while observing (Terraform's plan file), for
	// PlanApplier.ApplyPlan to carry out exactly; empty when it made none.
	Plan string `json:"plan,omitempty"`
}

// PlanApplier is a provider that can carry out exactly a plan of its own that Observe reported
// (Observed.Plan), and refuses it when it no longer holds (its state changed since).
type PlanApplier interface {
	ApplyPlan(ctx context.Context, env spec.Environment, plan string) (Endpoint, error)
}

// Provider starts, observes and removes runtimes of one kind. App-level work goes through the runtime API.
type Provider interface {
	Observe(ctx context.Context, env spec.Environment) (Observed, error) // ErrNotFound when absent
	Apply(ctx context.Context, env spec.Environment) (Endpoint, error)   // create or converge
	Destroy(ctx context.Context, env spec.Environment) error
	List(ctx context.Context, fleet string) ([]Observed, error) // what this fleet owns, for --prune
}

// Purger is a provider that can remove, for good, the data Destroy archived (never the data of an
// environment that exists). Purge returns the names of what it removed.
type Purger interface {
	Purge(ctx context.Context, env spec.Environment) ([]string, error)
}

// Config is what every provider is built with.
type Config struct {
	// Fleet is the name of the fleet that owns what the provider creates.
	Fleet string
	// StateDir is the fleet's state directory; a provider keeps its files under StateDir/environments/<name>.
	StateDir string
	// Binary is the appfleet executable a provider runs as the runtime; empty means this process's own.
	Binary string
}

// Factory builds a provider from its config.
type Factory func(cfg Config) (Provider, error)

// Registry maps provider names (spec.ProviderLocal, ...) to factories.
type Registry map[string]Factory

// New builds the named provider.
func (r Registry) New(name string, cfg Config) (Provider, error) {
	f, ok := r[name]
	if !ok {
		names := make([]string, 0, len(r))
		for n := range r {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("provider %q is not available in this build (available: %v)", name, names)
	}
	return f(cfg)
}
