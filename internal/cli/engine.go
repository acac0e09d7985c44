package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/appfleet/appfleet/apply"
	"github.com/appfleet/appfleet/internal/lock"
	"github.com/appfleet/appfleet/placement"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// planBuildOptions are the plan-shaping flags shared by plan, apply and destroy.
type planBuildOptions struct {
	Prune     bool
	Targets   []string
	Destroy   bool
	Rebalance bool
}

// build places the apps that declare a placement and computes the plan from an observed snapshot; it
// does no I/O. A plan that is blocked (a protected app would be deleted or replaced) is returned together
// with an error wrapping plan.ErrBlocked.
func (fl *fleet) build(snap plan.Snapshot, o planBuildOptions) (*plan.Plan, error) {
	res, err := placement.Place(fl.resolved.Apps, fl.resolved.Environments, snap, placement.Options{Rebalance: o.Rebalance})
	if err != nil && !o.Destroy {
		// Destroy deletes what it finds; an app with no room anywhere is nowhere to delete.
		return nil, err
	}
	fl.placed, fl.placedWhy = res.Apps, res.Why
	p, err := plan.Build(fl.desired(), snap, plan.Options{
		Prune:   o.Prune || fl.manifests.Prune(),
		Targets: o.Targets,
		Destroy: o.Destroy,
	})
	if p != nil {
		p.Paths = fl.paths
	}
	return p, err
}

// renderPlan writes the plan in the given format: text, json or markdown.
func renderPlan(w io.Writer, p *plan.Plan, format string, color bool) error {
	switch format {
	case "text", "":
		return plan.RenderText(w, p, plan.TextOptions{Color: color})
	case "json":
		return plan.RenderJSON(w, p)
	case "markdown", "md":
		return plan.RenderMarkdown(w, p)
	default:
		return fmt.Errorf("unknown output format %q; use text, json or markdown", format)
	}
}

func checkPlanFormat(format string) error {
	switch format {
	case "text", "", "json", "markdown", "md":
		return nil
	}
	return fmt.Errorf("unknown output format %q; use text, json or markdown", format)
}

// blocked turns a blocked plan's error into the command's: the plan text already names every blocked
// action with its reason, so only a short closing line is printed.
func blocked(w io.Writer, err error) error {
	if errors.Is(err, plan.ErrBlocked) {
		fmt.Fprintln(w, "Nothing was changed: the plan is blocked (see above). Change the manifests or unprotect the app first.")
		return silent(err)
	}
	return err
}

type execOptions struct {
	Parallelism   int
	AllowDataLoss bool
}

// execute carries out a plan and reports progress on stderr; verb ("Apply", "Destroy") names the command
// in the summary.
func (fl *fleet) execute(ctx context.Context, p *plan.Plan, snap plan.Snapshot, endpoints map[string]providers.Endpoint, o execOptions, verb string) error {
	errOut := fl.f.IO.ErrOut
	perf, err := fl.performer(snap, endpoints, o.AllowDataLoss)
	if err != nil {
		return err
	}
	var sink interface {
		apply.Sink
		Close() error
	}
	if fl.f.IO.IsStderrTTY() {
		sink = apply.NewTTYProgress(errOut)
	} else {
		sink = apply.NewPlainProgress(errOut)
	}
	start := time.Now()
	res := apply.Run(ctx, p, perf, apply.Options{Parallelism: o.Parallelism}, sink)
	_ = sink.Close()
	fmt.Fprintf(errOut, "\n%s finished in %s: %d succeeded, %d failed, %d skipped.\n",
		verb, apply.FormatDuration(time.Since(start)), len(res.Succeeded), len(res.Failed), len(res.Skipped))
	switch {
	case res.Interrupted:
		fmt.Fprintln(errOut, "Interrupted: the actions in flight finished and no more were started. Run the command again to converge.")
		return silent(ErrInterrupted)
	case len(res.Failed) > 0 || len(res.Skipped) > 0:
		fmt.Fprintf(errOut, "Failed: %s. Fix the cause and run the command again; what succeeded is kept.\n",
			strings.Join(append(res.Failed, res.Skipped...), ", "))
		return silent(ErrPartial)
	}
	return nil
}

// performer builds the executor's view of the fleet: a provider per environment (undeclared ones too,
// for prune), the declared specs with secrets resolved, and the observed endpoints.
func (fl *fleet) performer(snap plan.Snapshot, endpoints map[string]providers.Endpoint, allowDataLoss bool) (*apply.FleetPerformer, error) {
	perf := &apply.FleetPerformer{
		Fleet:         fl.resolved.Name,
		Providers:     map[string]providers.Provider{},
		Envs:          map[string]spec.Environment{},
		Apps:          map[string]spec.App{},
		Endpoints:     endpoints,
		AllowDataLoss: allowDataLoss,
	}
	byKind := map[string]providers.Provider{}
	providerFor := func(env, kind string) error {
		prov, ok := byKind[kind]
		if !ok {
			var err error
			if prov, err = fl.registry.New(kind, fl.config); err != nil {
				return fmt.Errorf("environment %q: %w", env, err)
			}
			byKind[kind] = prov
		}
		perf.Providers[env] = prov
		return nil
	}
	for _, env := range fl.resolved.Environments {
		if err := providerFor(env.Metadata.Name, env.Spec.Provider); err != nil {
			return nil, err
		}
		perf.Envs[env.Metadata.Name] = env
	}
	for name, st := range snap.Environments {
		if _, declared := perf.Envs[name]; !declared && st.Provider != "" {
			if err := providerFor(name, st.Provider); err != nil {
				return nil, err
			}
		}
	}
	for _, app := range fl.apps() {
		perf.Apps[app.Metadata.Name] = app
	}
	return perf, nil
}

// beginChange checks that a change can be confirmed (a terminal, or --yes) and takes the state dir's
// lock, so that one apply or destroy at a time changes the fleet.
func (fl *fleet) beginChange(verb string, yes bool) (*lock.Lock, error) {
	if !yes && !fl.f.IO.CanPrompt() {
		return nil, fmt.Errorf("%s changes the fleet and needs confirmation: run it in a terminal, or pass --yes", verb)
	}
	return lock.Acquire(fl.stateDir, "appfleet "+verb)
}

// showPlan prints the plan as text; a blocked plan (buildErr wraps plan.ErrBlocked) becomes the
// command's error after it is shown.
func showPlan(io *IOStreams, p *plan.Plan, buildErr error) error {
	if err := renderPlan(io.Out, p, "text", io.ColorEnabled()); err != nil {
		return err
	}
	if buildErr != nil {
		return blocked(io.ErrOut, buildErr)
	}
	return nil
}

// confirmChange asks before a change unless yes is set; anything but "yes" cancels it with the error
// cancelled, which says what was left as it was.
func confirmChange(ctx context.Context, io *IOStreams, yes bool, question, cancelled string) error {
	if yes {
		return nil
	}
	ok, err := confirm(ctx, io, question)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New(cancelled)
	}
	return nil
}

// confirm asks a yes/no question on the terminal; only "yes" agrees, as with Terraform. Ctrl-C while it
// waits for the answer ends the wait at once with an error wrapping ErrInterrupted.
func confirm(ctx context.Context, io *IOStreams, question string) (bool, error) {
	fmt.Fprintf(io.ErrOut, "\n%s Only 'yes' will be accepted.\n  Enter a value: ", question)
	type answer struct {
		line string
		err  error
	}
	// The read cannot be cancelled; when ctx ends first it is left to end with the process.
	ch := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(io.In).ReadString('\n')
		ch <- answer{line, err}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(io.ErrOut)
		return false, fmt.Errorf("%w at the confirmation; nothing was changed", ErrInterrupted)
	case a := <-ch:
		if a.err != nil && a.line == "" {
			return false, fmt.Errorf("read confirmation: %w", a.err)
		}
		return strings.TrimSpace(a.line) == "yes", nil
	}
}
