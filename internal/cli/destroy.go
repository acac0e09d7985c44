package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"

	"github.com/spf13/cobra"
)

type destroyOptions struct {
	F       *Factory
	Paths   []string
	Yes     bool
	Targets []string
	Purge   bool
	Prune   bool
}

func newDestroyCmd(f *Factory) *cobra.Command {
	opts := &destroyOptions{F: f}
	cmd := &cobra.Command{
		Use:   "destroy [PATH...]",
		Short: "Delete every app and environment the manifests declare",
		Long: `Destroy plans the deletion of every declared app (its data archived in the runtime, restorable) and
every declared environment (the runtime stopped, its data directory archived), shows the plan, asks for
confirmation (or takes --yes), and carries it out. Protected apps stop it: nothing is deleted. With
--prune it also deletes what this fleet owns but no longer declares. An environment that cannot be
observed is not destroyed; destroy says so and exits 3.

With --purge, the archived data of the destroyed environments (local archive directories, docker
archived volumes) is then removed for good, after a second confirmation.`,
		Example: `  appfleet destroy examples/single-app --yes
  appfleet destroy . --target app.legacy --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			return runDestroy(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "destroy without asking for confirmation")
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "destroy only this `ADDR` (environment.NAME or app.NAME); repeatable")
	completeFlags(cmd)
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "then remove the destroyed environments' archived data for good (asks again, unless --yes)")
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "also delete the apps and environments this fleet owns but no longer declares")
	return cmd
}

func runDestroy(ctx context.Context, opts *destroyOptions) error {
	io := opts.F.IO
	m, err := loadManifests(opts.F, opts.Paths, noSecrets)
	if err != nil {
		return err
	}
	if err := canConfirm(io, "destroy", opts.Yes); err != nil {
		return err
	}
	req := engine.Request{
		Manifests: m, Paths: opts.Paths, Targets: opts.Targets, Prune: opts.Prune, Destroy: true,
		Approve: func(ctx context.Context, _ engine.Pass, _ *plan.Plan) error {
			return confirmChange(ctx, io, opts.Yes, "Destroy these resources? Apps' data is archived, not erased.", "destroy cancelled; nothing was changed")
		},
	}
	_, err = opts.F.newEngine().Apply(ctx, req, newSink(io, "Destroy"))
	var unconverged *engine.UnconvergedError
	if errors.As(err, &unconverged) {
		fmt.Fprintf(io.ErrOut, "\nNot destroyed: %s could not be observed (see the warnings above); destroy again once it can be.\n",
			addresses(unconverged.Addresses))
		return silent(err)
	}
	if err != nil || !opts.Purge {
		return blocked(io.ErrOut, cliError(err))
	}
	return runPurge(ctx, opts, m)
}

// runPurge removes the archived data of the destroyed environments, after its own confirmation: the
// destroy before it kept that data precisely so that it could be brought back.
func runPurge(ctx context.Context, opts *destroyOptions, m *spec.Manifests) error {
	io := opts.F.IO
	if err := confirmChange(ctx, io, opts.Yes, "Remove the archived data of the destroyed environments for good? It cannot be restored.",
		"purge cancelled; the archived data is kept"); err != nil {
		return err
	}
	purged, err := opts.F.newEngine().Purge(ctx, engine.Request{Manifests: m, Paths: opts.Paths, Targets: opts.Targets})
	for _, p := range purged {
		switch {
		case p.Unsupported:
			fmt.Fprintf(io.Out, "environment.%s: the %s provider keeps no archive to purge\n", p.Environment, p.Provider)
		case len(p.Removed) == 0:
			fmt.Fprintf(io.Out, "environment.%s: no archived data\n", p.Environment)
		default:
			for _, r := range p.Removed {
				fmt.Fprintf(io.Out, "environment.%s: purged %s\n", p.Environment, r)
			}
		}
	}
	return err
}
