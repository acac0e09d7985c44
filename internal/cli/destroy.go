package cli

import (
	"cmp"
	"context"

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
	fl, err := loadFleet(opts.F, opts.Paths, noSecrets)
	if err != nil {
		return err
	}
	lk, err := fl.beginChange("destroy", opts.Yes)
	if err != nil {
		return err
	}
	defer lk.Release()
	snap, endpoints, err := fl.observe(ctx)
	if err != nil {
		return err
	}
	p, err := fl.build(snap, planBuildOptions{Targets: opts.Targets, Destroy: true})
	if p == nil {
		return err
	}
	if err := showPlan(io, p, cmp.Or(err, p.Err())); err != nil || !p.HasChanges() {
		return err
	}
	if err := confirmChange(ctx, io, opts.Yes, "Destroy these resources? Apps' data is archived, not erased.", "destroy cancelled; nothing was changed"); err != nil {
		return err
	}
	return fl.execute(ctx, p, snap, endpoints, execOptions{Parallelism: fl.manifests.Parallelism(), AllowDataLoss: true}, "Destroy")
}
