package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/spf13/cobra"
)

type applyOptions struct {
	F             *Factory
	Args          []string
	Yes           bool
	Parallelism   int
	Targets       []string
	Prune         bool
	Rebalance     bool
	AllowDataLoss bool
}

func newApplyCmd(f *Factory) *cobra.Command {
	opts := &applyOptions{F: f}
	cmd := &cobra.Command{
		Use:   "apply [PATH... | PLANFILE]",
		Short: "Make what runs match the manifests",
		Long: `Apply plans like 'appfleet plan', shows the plan, asks for confirmation (or takes --yes), and carries
it out: environments before their apps, independent actions in parallel. Given a file saved with
'appfleet plan --out', it re-observes and carries out exactly that plan, refusing every action whose
resource changed since.`,
		Example: `  appfleet apply examples/single-app --yes
  appfleet plan . --out fleet.plan && appfleet apply fleet.plan --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			return runApply(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "apply without asking for confirmation")
	cmd.Flags().IntVar(&opts.Parallelism, "parallelism", 0, "how many actions run at once (default: Fleet spec.parallelism, else 10)")
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "apply only this address (environment.NAME or app.NAME) and what it depends on; repeatable")
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "delete apps and environments this fleet owns but no longer declares")
	cmd.Flags().BoolVar(&opts.Rebalance, "rebalance", false, "move apps placed by spread so that the environments they share hold even numbers of apps (their data goes along)")
	cmd.Flags().BoolVar(&opts.AllowDataLoss, "allow-data-loss", false, "carry out actions that lose data (dropped fields or collections, type or driver changes)")
	return cmd
}

func runApply(ctx context.Context, opts *applyOptions) error {
	io := opts.F.IO
	if opts.Parallelism < 0 {
		return fmt.Errorf("--parallelism must be at least 1, got %d", opts.Parallelism)
	}
	saved, planFile, err := readSavedPlanArg(opts.Args)
	if err != nil {
		return err
	}
	paths := opts.Args
	if saved != nil {
		if len(opts.Targets) > 0 || opts.Prune || opts.Rebalance {
			return fmt.Errorf("--target, --prune and --rebalance were fixed when %s was saved; plan again with them instead", planFile)
		}
		paths = saved.Paths
		if len(paths) == 0 {
			return fmt.Errorf("%s names no manifests; plan again with 'appfleet plan PATH --out %s'", planFile, planFile)
		}
	}
	fl, err := loadFleet(opts.F, paths, needSecrets)
	if err != nil {
		return err
	}
	lk, err := fl.beginChange("apply", opts.Yes)
	if err != nil {
		return err
	}
	defer lk.Release()

	snap, endpoints, err := fl.observe(ctx)
	if err != nil {
		return err
	}
	var p *plan.Plan
	if saved != nil {
		if saved.Digest != fl.manifests.Digest {
			return fmt.Errorf("the manifests changed since %s was saved; nothing was changed. Run 'appfleet plan --out %s' again", planFile, planFile)
		}
		if err := fl.pin(saved, planFile); err != nil {
			return err
		}
		if changed := plan.SecretsChanged(saved, fl.desired()); len(changed) > 0 {
			return fmt.Errorf("secrets changed since %s was saved (%s); nothing was changed. Run 'appfleet plan --out %s' again",
				planFile, strings.Join(changed, ", "), planFile)
		}
		if stale := plan.Stale(saved, snap); len(stale) > 0 {
			var b strings.Builder
			for _, s := range stale {
				fmt.Fprintf(&b, "\n  %s", s)
			}
			return fmt.Errorf("%s is stale; nothing was changed:%s\nRun 'appfleet plan --out %s' again", planFile, b.String(), planFile)
		}
		p = saved
	} else {
		p, err = fl.build(snap, planBuildOptions{Prune: opts.Prune, Targets: opts.Targets, Rebalance: opts.Rebalance})
		if p == nil {
			return err
		}
	}
	if err := applyPlan(ctx, fl, opts, p, err, snap, endpoints, "nothing was changed"); err != nil || saved != nil || len(p.Unknown()) == 0 {
		return err
	}
	// Apps of a runtime that did not answer could not be planned; the apply has just brought their
	// runtimes back, so plan them now rather than leave the fleet to a second apply.
	snap, endpoints, err = fl.observe(ctx)
	if err != nil {
		return err
	}
	p, err = fl.build(snap, planBuildOptions{Prune: opts.Prune, Targets: opts.Targets, Rebalance: opts.Rebalance})
	if p == nil {
		return err
	}
	if p.HasChanges() || err != nil {
		fmt.Fprintln(io.ErrOut, "\nRuntimes that did not answer before answer now. Their apps need these changes too:")
		if err := applyPlan(ctx, fl, opts, p, err, snap, endpoints, "the changes above were applied, these were not"); err != nil {
			return err
		}
	}
	return unconverged(io, p)
}

// unconverged fails an apply that leaves apps it could not plan (their runtime, or one that may hold
// them, does not answer): the fleet does not match the manifests, and a pipeline must not read success.
func unconverged(io *IOStreams, p *plan.Plan) error {
	unknown := p.Unknown()
	if len(unknown) == 0 {
		return nil
	}
	fmt.Fprintf(io.ErrOut, "\nNot converged: %s could not be planned (see the warnings above). Bring back the runtimes that do not answer, or prune the environments no longer declared, then apply again.\n",
		addresses(unknown))
	return silent(ErrPartial)
}

// addresses lists the actions' addresses for a message: "app.a, app.b".
func addresses(acts []*plan.Action) string {
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = string(a.Address)
	}
	return strings.Join(names, ", ")
}

// applyPlan shows a plan, refuses data loss that was not allowed, asks for confirmation and carries it out.
// buildErr is what building the plan returned (a blocked plan); unchanged says what a refusal leaves as it
// was.
func applyPlan(ctx context.Context, fl *fleet, opts *applyOptions, p *plan.Plan, buildErr error, snap plan.Snapshot, endpoints map[string]providers.Endpoint, unchanged string) error {
	io := opts.F.IO
	if err := showPlan(io, p, cmp.Or(buildErr, p.Err())); err != nil || !p.HasChanges() {
		return err
	}
	if loss := p.DataLoss(); len(loss) > 0 && !opts.AllowDataLoss {
		return fmt.Errorf("the plan loses data in %s (marked above); %s. Re-run with --allow-data-loss to accept that", addresses(loss), unchanged)
	}
	if err := confirmChange(ctx, io, opts.Yes, "Apply these changes?", "apply cancelled; "+unchanged); err != nil {
		return err
	}
	par := opts.Parallelism
	if par == 0 {
		par = fl.manifests.Parallelism()
	}
	return fl.execute(ctx, p, snap, endpoints, execOptions{Parallelism: par, AllowDataLoss: opts.AllowDataLoss}, "Apply")
}

// readSavedPlanArg returns the saved plan when args is exactly one file that holds one.
func readSavedPlanArg(args []string) (*plan.Plan, string, error) {
	if len(args) != 1 {
		return nil, "", nil
	}
	st, err := os.Stat(args[0])
	if err != nil || st.IsDir() {
		return nil, "", nil
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	p, err := plan.Load(f)
	if errors.Is(err, plan.ErrNotAPlan) && !looksLikeSavedPlan(head) {
		return nil, "", nil // a manifest file
	}
	if err != nil {
		return nil, "", fmt.Errorf("read saved plan %s: %w; it is damaged or was not written by 'appfleet plan --out': plan again", args[0], err)
	}
	return p, args[0], nil
}

// looksLikeSavedPlan reports whether a file's first bytes are those of a saved plan (a JSON object
// whose kind is appfleet-plan), so that a damaged one is reported as such rather than read as YAML.
func looksLikeSavedPlan(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	return bytes.HasPrefix(t, []byte("{")) && bytes.Contains(t, []byte(`"appfleet-plan"`))
}
