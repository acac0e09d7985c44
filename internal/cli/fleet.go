package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/all"
	"github.com/appfleet/appfleet/spec"
)

// observeTimeout bounds how long one runtime's API may take before it shows as unreachable.
const observeTimeout = 10 * time.Second

// fleet is a loaded set of manifests with everything needed to observe and change what they declare.
type fleet struct {
	f         *Factory
	paths     []string        // absolute manifest paths as given ("-" kept)
	manifests *spec.Manifests // as written, secrets unresolved
	resolved  *spec.Manifests // secrets resolved; their values go only to runtimes
	stateDir  string
	registry  providers.Registry
	config    providers.Config
	// placed are the resolved apps with every placement fixed to an environment, once the fleet has
	// been observed and planned (or pinned from a saved plan); placedWhy says why, by app.
	placed    []spec.App
	placedWhy map[string]string
}

// secretUse says whether a command sends secrets to runtimes, and so needs their values.
type secretUse bool

const (
	needSecrets secretUse = true  // plan and apply compare and send them
	noSecrets   secretUse = false // status and destroy never use a value: an unreadable secret is a warning
)

// loadFleet reads, validates and resolves the manifests under paths (the current directory when none).
// It prints every diagnostic to stderr and returns a silent error when any of them is an error.
func loadFleet(f *Factory, paths []string, secrets secretUse) (*fleet, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	abs := make([]string, len(paths))
	for i, p := range paths {
		abs[i] = p
		if p != "-" {
			if a, err := filepath.Abs(p); err == nil {
				abs[i] = a
			}
		}
	}
	m, diags := spec.LoadWith(paths, f.IO.In, spec.LoadOptions{SecretsOptional: secrets == noSecrets})
	printDiagnostics(f.IO.ErrOut, diags)
	if diags.HasErrors() {
		return nil, silent(errors.New("manifests are not valid"))
	}
	resolved := m
	if secrets == needSecrets {
		var err error
		if resolved, err = m.ResolveSecrets(); err != nil {
			return nil, err
		}
	}
	stateDir := f.StateDir
	if stateDir == "" {
		stateDir = filepath.Join(m.Root, ".appfleet")
	}
	if a, err := filepath.Abs(stateDir); err == nil {
		stateDir = a
	}
	return &fleet{
		f: f, paths: abs, manifests: m, resolved: resolved, stateDir: stateDir,
		registry: all.Registry(),
		config:   providers.Config{Fleet: m.Name, StateDir: stateDir},
	}, nil
}

// desired is what the manifests declare, in the planner's terms, secrets resolved and apps placed.
func (fl *fleet) desired() plan.Desired {
	return plan.Desired{
		Fleet:        fl.resolved.Name,
		Environments: fl.resolved.Environments,
		Apps:         fl.apps(),
		Digest:       fl.resolved.Digest,
		Placement:    fl.placedWhy,
		AppSets:      fl.resolved.AppSetNames(),
	}
}

// apps are the declared apps, secrets resolved, placed once the fleet has been planned.
func (fl *fleet) apps() []spec.App {
	if fl.placed != nil {
		return fl.placed
	}
	return fl.resolved.Apps
}

// pin places the apps where a saved plan placed them, so that applying it carries out exactly that plan.
func (fl *fleet) pin(saved *plan.Plan, planFile string) error {
	where := make(map[string]string, len(saved.Desired.Apps))
	for _, a := range saved.Desired.Apps {
		where[a.Metadata.Name] = a.Spec.Environment
	}
	apps := slices.Clone(fl.resolved.Apps)
	for i := range apps {
		if apps[i].Spec.Placement == nil {
			continue
		}
		env, ok := where[apps[i].Metadata.Name]
		if !ok || env == "" {
			return fmt.Errorf("%s does not say where app %s goes; run 'appfleet plan --out %s' again", planFile, apps[i].Metadata.Name, planFile)
		}
		apps[i].Spec.Environment, apps[i].Spec.Placement = env, nil
	}
	fl.placed, fl.placedWhy = apps, saved.Desired.Placement
	return nil
}

// observe asks every provider and runtime what runs now. Problems that belong to no one environment
// (a provider that cannot list what the fleet owns) are printed as warnings. When ctx ends before the
// observation is complete it returns an error wrapping ErrInterrupted: what it saw is partial (runtimes
// that did not answer look unreachable or absent), and nothing may be planned, saved or shown from it.
func (fl *fleet) observe(ctx context.Context) (plan.Snapshot, map[string]providers.Endpoint, error) {
	o := providers.Observe(ctx, fl.registry, fl.config, fl.resolved.Environments, observeTimeout)
	if ctx.Err() != nil {
		return plan.Snapshot{}, nil, fmt.Errorf("%w while observing the fleet; nothing was changed", ErrInterrupted)
	}
	for _, p := range o.Problems {
		fmt.Fprintf(fl.f.IO.ErrOut, "Warning: %v\n", p)
	}
	return o.Snapshot, o.Endpoints, nil
}

// printDiagnostics writes each diagnostic as "file:line:col: summary" with its hint on the next line.
func printDiagnostics(w io.Writer, diags spec.Diagnostics) {
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
		if d.Detail != "" {
			fmt.Fprintf(w, "    hint: %s\n", d.Detail)
		}
	}
}
