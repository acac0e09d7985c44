package cli

import (
	"context"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"

	"github.com/spf13/cobra"
)

type destroyOptions struct {
	F       *Factory
	Paths   []string
	Yes     bool
	Targets []string
}

func newDestroyCmd(f *Factory) *cobra.Command {
	opts := &destroyOptions{F: f}
	cmd := &cobra.Command{
		Use:   "destroy [PATH...]",
		Short: "Delete every app and environment the manifests declare",
		Long: `Destroy plans the deletion of every declared app (its data archived in the runtime, restorable) and
every declared environment (the runtime stopped, its data directory archived), shows the plan, asks for
confirmation (or takes --yes), and carries it out. Protected apps stop it: nothing is deleted.`,
		Example: `  appfleet destroy examples/single-app --yes
  appfleet destroy . --target app.legacy --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Paths = args
			return runDestroy(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "destroy without asking for confirmation")
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "destroy only this address (environment.NAME or app.NAME); repeatable")
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
		Manifests: m, Paths: opts.Paths, Targets: opts.Targets, Destroy: true,
		Approve: func(ctx context.Context, _ engine.Pass, _ *plan.Plan) error {
			return confirmChange(ctx, io, opts.Yes, "Destroy these resources? Apps' data is archived, not erased.", "destroy cancelled; nothing was changed")
		},
	}
	_, err = opts.F.newEngine().Apply(ctx, req, newSink(io, "Destroy"))
	return blocked(io.ErrOut, cliError(err))
}
