package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

// Desired is what the manifests declare. Secrets may be resolved (SecretRef.Value set): Build compares
// them by hash and keeps no value in the plan.
type Desired struct {
	Fleet        string             `json:"fleet"`
	Environments []spec.Environment `json:"environments,omitempty"`
	Apps         []spec.App         `json:"apps,omitempty"`
	// Digest identifies the manifests the plan was made from.
	Digest string `json:"digest,omitempty"`
	// AppSets names the declared AppSets. An app of this fleet labelled spec.LabelAppSet with one of
	// them that is no longer declared was removed from the AppSet's elements, and is deleted without
	// prune, as the AppSet owns its apps.
	AppSets []string `json:"appSets,omitempty"`
	// Placement says, by app name, where the control plane placed an app that declares a placement
	// rather than an environment, and why (package placement); the plan shows it beside the app's action.
	Placement map[string]string `json:"placement,omitempty"`
}

// Options change what Build plans.
type Options struct {
	// Prune deletes undeclared apps and environments this fleet owns; without it they are kept and shown.
	Prune bool `json:"prune,omitempty"`
	// Targets restricts the plan to these addresses and what they depend on; empty means everything.
	Targets []string `json:"targets,omitempty"`
	// Destroy plans deleting everything declared (and, with Prune, everything undeclared the fleet owns).
	Destroy bool `json:"destroy,omitempty"`
}

// Plan is the ordered set of actions that turns what was observed into what is declared.
//
// Invariants: Actions are sorted by phase (environments that are kept, then apps, then environments that
// are deleted) and then by address; every action's dependencies come before it in that order; Desired
// holds no secret value.
type Plan struct {
	Fleet   string    `json:"fleet"`
	Digest  string    `json:"digest,omitempty"`
	Options Options   `json:"options"`
	Actions []*Action `json:"actions"`
	// Desired is the declared input, secrets reduced to references and hashes; apply resolves them again.
	Desired Desired `json:"desired"`
	// Paths are the manifest paths the plan was made from, absolute, so that applying a saved plan can
	// read them again (to resolve secrets and check that they did not change since).
	Paths []string `json:"paths,omitempty"`
	// StateDir is the state dir the plan observed through, absolute, so that applying a saved plan
	// observes the same fleet and a hint to plan again can name it.
	StateDir string `json:"stateDir,omitempty"`
	// Git is the git commit the manifests were planned from, when they are in a git work tree; Dirty says
	// that files under them differed from that commit.
	Git *GitSource `json:"git,omitempty"`
}

// GitSource is the git commit a plan was made from.
type GitSource struct {
	Commit string `json:"commit"`
	Branch string `json:"branch,omitempty"`
	Dirty  bool   `json:"dirty,omitempty"`
}

// Summary counts a plan's actions by kind: s[Create] is how many it creates. Text, markdown and JSON
// all read this one count.
type Summary map[ActionKind]int

// Summary counts the plan's actions by kind.
func (p *Plan) Summary() Summary {
	s := Summary{}
	for _, a := range p.Actions {
		s[a.Kind]++
	}
	return s
}

// Changes is the number of actions apply performs.
func (s Summary) Changes() int {
	n := 0
	for k, c := range s {
		if k.Changes() {
			n += c
		}
	}
	return n
}

// unobserved says that n apps could not be observed, for the text and markdown plans.
func unobserved(p *Plan) string {
	var apps, envs int
	for _, a := range p.Unknown() {
		if a.ResourceType == TypeEnvironment {
			envs++
		} else {
			apps++
		}
	}
	var parts []string
	if apps > 0 {
		parts = append(parts, fmt.Sprintf("%d %s could not be observed because %s unreachable", apps, plural(apps, "app", "apps"),
			plural(apps, "its environment is", "their environments are")))
	}
	if envs > 0 {
		parts = append(parts, fmt.Sprintf("%d %s could not be observed", envs, plural(envs, "environment", "environments")))
	}
	return strings.Join(parts, "; ")
}

// String is the summary line: "Plan: 2 to create, 1 to update, 1 to delete." (create, update and delete
// always; replace, move, start and stop when there are any), or "No changes. The fleet matches the
// manifests." when there is nothing to do.
func (s Summary) String() string {
	if s.Changes() == 0 && s[Unknown] > 0 {
		return "No changes for what could be observed; the fleet may still differ from the manifests."
	}
	if s.Changes() == 0 {
		return "No changes. The fleet matches the manifests."
	}
	var parts []string
	for _, k := range summaryOrder {
		if n := s[k]; n > 0 || k.info().always {
			parts = append(parts, fmt.Sprintf("%d to %s", n, k))
		}
	}
	return "Plan: " + strings.Join(parts, ", ") + "."
}

// HasChanges reports whether apply would perform anything.
func (p *Plan) HasChanges() bool { return p.Summary().Changes() > 0 }

// Action returns the action at addr, or nil.
func (p *Plan) Action(addr Address) *Action {
	for _, a := range p.Actions {
		if a.Address == addr {
			return a
		}
	}
	return nil
}

// Blocked returns the actions that must not be applied, in plan order.
func (p *Plan) Blocked() []*Action {
	var out []*Action
	for _, a := range p.Actions {
		if a.Blocked != "" {
			out = append(out, a)
		}
	}
	return out
}

// Unknown returns the actions of apps that could not be planned because a runtime did not answer, in
// plan order; apply performs nothing for them, so the fleet has not converged while there are any.
func (p *Plan) Unknown() []*Action {
	var out []*Action
	for _, a := range p.Actions {
		if a.Kind == Unknown {
			out = append(out, a)
		}
	}
	return out
}

// Complete reports whether the plan covers the whole fleet as it is: no target narrowed it and every
// resource it acts on was observed. An incomplete plan may be applied, but the fleet needs another
// plan once what was not observed answers.
func (p *Plan) Complete() bool {
	if len(p.Options.Targets) > 0 {
		return false
	}
	for _, a := range p.Actions {
		if a.Unobserved || a.Kind == Unknown {
			return false
		}
	}
	return true
}

// DataLoss returns the actions that lose data, in plan order; apply refuses them unless allowed.
func (p *Plan) DataLoss() []*Action {
	var out []*Action
	for _, a := range p.Actions {
		if a.DataLoss && a.Kind.Changes() {
			out = append(out, a)
		}
	}
	return out
}

// AllowableDataLoss returns the actions of DataLoss that --allow-data-loss lets apply carry out: those
// not blocked. A blocked one (a protected app) is refused whatever the flags, so no message offers the
// flag for it.
func (p *Plan) AllowableDataLoss() []*Action {
	return slices.DeleteFunc(p.DataLoss(), func(a *Action) bool { return a.Blocked != "" })
}

// Err returns a *BlockedError when the plan holds blocked actions, else nil.
func (p *Plan) Err() error {
	b := p.Blocked()
	if len(b) == 0 {
		return nil
	}
	e := &BlockedError{}
	for _, a := range b {
		e.Actions = append(e.Actions, BlockedAction{Address: a.Address, Reason: a.Blocked})
	}
	return e
}

// ErrBlocked is what a *BlockedError matches with errors.Is.
var ErrBlocked = errors.New("plan is blocked")

// BlockedError names every action that must not be applied, each with why.
type BlockedError struct {
	Actions []BlockedAction
}

// BlockedAction is one blocked action of a BlockedError.
type BlockedAction struct {
	Address Address
	Reason  string
}

func (e *BlockedError) Error() string {
	var b strings.Builder
	b.WriteString("the plan cannot be applied: ")
	for i, a := range e.Actions {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", a.Address, a.Reason)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }
