package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/gitops/gitsync"
	"github.com/appfleet/appfleet/plan"
	"github.com/spf13/cobra"
)

type planOptions struct {
	F                *Factory
	Paths            []string
	Output           string
	Out              string
	DetailedExitcode bool
	Targets          []string
	Prune            bool
	Rebalance        bool
}

func newPlanCmd(f *Factory) *cobra.Command {
	opts := &planOptions{F: f}
	cmd := &cobra.Command{
		Use:   "plan [PATH...]",
		Short: "Show what apply would change",
		Long: `Plan observes every environment and app the manifests declare (and those this fleet owns but no
longer declares), and prints the ordered actions that would make what runs match the manifests.
Nothing is changed. --out saves the plan so that 'appfleet apply FILE' carries out exactly it, or
refuses where what it observed has changed since.`,
		Example: `  appfleet plan examples/single-app
  appfleet plan . -o json > plan.json
  appfleet plan . --out fleet.plan --detailed-exitcode`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			return runPlan(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text, json or markdown")
	cmd.Flags().StringVar(&opts.Out, "out", "", "save the plan to `FILE` for 'appfleet apply FILE'")
	cmd.Flags().BoolVar(&opts.DetailedExitcode, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none")
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "plan only this `ADDR` (environment.NAME or app.NAME) and what it depends on; repeatable")
	completeFlags(cmd, "text", "json", "markdown")
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "delete apps and environments this fleet owns but no longer declares")
	cmd.Flags().BoolVar(&opts.Rebalance, "rebalance", false, "plan moves of apps placed by spread so that the environments they share hold even numbers of apps")
	return cmd
}

func runPlan(ctx context.Context, opts *planOptions) error {
	render, err := plan.RendererFor(opts.Output, plan.RenderOptions{Color: opts.F.IO.ColorEnabled()})
	if err != nil {
		return err
	}
	res, err := opts.F.newEngine().Plan(ctx, engine.Request{
		Paths: opts.Paths, Stdin: opts.F.IO.In, Prune: opts.Prune, Targets: opts.Targets, Rebalance: opts.Rebalance,
	}, newSink(opts.F.IO, ""))
	if res == nil {
		return cliError(err)
	}
	p := res.Plan
	if rerr := render.Render(opts.F.IO.Out, p); rerr != nil {
		return rerr
	}
	if err != nil {
		return blocked(opts.F.IO.ErrOut, err)
	}
	if opts.Out != "" {
		recordCommit(opts.F.IO, p, res.Manifests.Root)
		if err := savePlan(opts.Out, p); err != nil {
			return err
		}
		fmt.Fprintf(opts.F.IO.ErrOut, "Saved the plan to %s. Apply exactly it with: appfleet apply %s\n", opts.Out, opts.Out)
	}
	if opts.DetailedExitcode && p.HasChanges() {
		return ErrChanges
	}
	return nil
}

// savePlan writes the plan atomically, so a reader never sees half a file.
func savePlan(path string, p *plan.Plan) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := plan.Save(tmp, p); err != nil {
		tmp.Close()
		return fmt.Errorf("save plan to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save plan to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save plan to %s: %w", path, err)
	}
	return nil
}

// recordCommit records in a plan about to be saved the git commit its manifests are checked out at, so
// that applying it can label every app it writes with that commit. Manifests outside a work tree record
// none; uncommitted changes under them are recorded as dirty, with a warning.
func recordCommit(io *IOStreams, p *plan.Plan, root string) {
	wt, ok, err := gitsync.WorkTreeOf(root)
	if err != nil {
		fmt.Fprintf(io.ErrOut, "Warning: cannot read the git work tree of %s: %v\n", root, err)
	}
	if !ok {
		return
	}
	p.Git = &plan.GitSource{Commit: wt.Commit, Branch: wt.Branch, Dirty: wt.Dirty}
	if wt.Dirty {
		fmt.Fprintf(io.ErrOut, "Warning: the manifests under %s have uncommitted changes; the plan records commit %.12s, which does not hold them.\n", root, wt.Commit)
	}
}
