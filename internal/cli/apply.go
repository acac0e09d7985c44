package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
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
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "apply only this `ADDR` (environment.NAME or app.NAME) and what it depends on; repeatable")
	completeFlags(cmd)
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
	if saved != nil && saved.StateDir != "" {
		// The plan was made through one state dir; applying it through another would observe another fleet.
		switch sd := opts.F.StateDir; {
		case sd == "":
			opts.F.StateDir = saved.StateDir
		case absPath(sd) != saved.StateDir:
			return fmt.Errorf("%s was planned with state dir %s, not %s; apply it with --state-dir %s, or plan again: %s",
				planFile, saved.StateDir, absPath(sd), shellQuote(saved.StateDir), replanCommand(saved, planFile))
		}
	}
	if saved != nil {
		if len(opts.Targets) > 0 || opts.Prune || opts.Rebalance {
			return fmt.Errorf("--target, --prune and --rebalance were fixed when %s was saved; plan again with them instead", planFile)
		}
		paths = saved.Paths
		if len(paths) == 0 {
			return fmt.Errorf("%s names no manifests; plan again with 'appfleet plan PATH --out %s'", planFile, planFile)
		}
	}
	m, err := loadManifests(opts.F, paths, needSecrets)
	if err != nil {
		return err
	}
	if err := canConfirm(io, "apply", opts.Yes); err != nil {
		return err
	}
	req := engine.Request{
		Manifests: m, Paths: paths, Saved: saved,
		Targets: opts.Targets, Prune: opts.Prune, Rebalance: opts.Rebalance,
		Parallelism: opts.Parallelism, AllowDataLoss: opts.AllowDataLoss,
		Approve: func(ctx context.Context, pass engine.Pass, _ *plan.Plan) error {
			return confirmChange(ctx, io, opts.Yes, "Apply these changes?", "apply cancelled; "+unchanged(pass))
		},
	}
	if saved != nil && saved.Git != nil && !saved.Git.Dirty {
		// The saved plan was made from a commit: every app it writes records that commit.
		req.Labels = map[string]string{spec.LabelCommit: saved.Git.Commit}
	}
	_, err = opts.F.newEngine().Apply(ctx, req, newSink(io, "Apply"))
	var replan string
	if saved != nil {
		replan = replanCommand(saved, planFile)
	}
	var (
		stale       *engine.StaleError
		loss        *engine.DataLossError
		unconverged *engine.UnconvergedError
	)
	switch {
	case errors.As(err, &stale):
		return staleError(stale, planFile, replan)
	case errors.As(err, &loss):
		return fmt.Errorf("the plan loses data in %s (marked above); %s. Re-run with --allow-data-loss to accept that",
			addresses(loss.Addresses), unchanged(loss.Pass))
	case errors.As(err, &unconverged):
		// The fleet does not match the manifests, and a pipeline must not read success.
		fmt.Fprintf(io.ErrOut, "\nNot converged: %s could not be planned (see the warnings above). Bring back the runtimes that do not answer, or prune the environments no longer declared, then apply again.\n",
			addresses(unconverged.Addresses))
		return silent(err)
	}
	return blocked(io.ErrOut, cliError(err))
}

// unchanged says what a refusal of a pass's plan leaves as it was.
func unchanged(pass engine.Pass) string {
	if pass == engine.ConvergePass {
		return "the changes above were applied, these were not"
	}
	return "nothing was changed"
}

// staleError says why a saved plan was refused and the exact command that makes a fresh one.
func staleError(e *engine.StaleError, planFile, replan string) error {
	switch e.What {
	case engine.StaleManifests:
		return fmt.Errorf("the manifests changed since %s was saved; nothing was changed. Plan again: %s", planFile, replan)
	case engine.StaleUnplaced:
		return fmt.Errorf("%s does not say where app %s goes; plan again: %s", planFile, e.App, replan)
	case engine.StaleSecrets:
		return fmt.Errorf("secrets changed since %s was saved (%s); nothing was changed. Plan again: %s",
			planFile, strings.Join(e.Secrets, ", "), replan)
	}
	var b strings.Builder
	for _, s := range e.Resources {
		fmt.Fprintf(&b, "\n  %s", s)
	}
	return fmt.Errorf("%s is stale; nothing was changed:%s\nPlan again: %s", planFile, b.String(), replan)
}

// replanCommand is the command that makes saved again, from the same manifests, state dir and options.
func replanCommand(saved *plan.Plan, planFile string) string {
	args := []string{"appfleet", "plan"}
	for _, p := range saved.Paths {
		args = append(args, shellQuote(relPath(p)))
	}
	for _, t := range saved.Options.Targets {
		args = append(args, "--target", shellQuote(t))
	}
	if saved.Options.Prune {
		args = append(args, "--prune")
	}
	if saved.StateDir != "" {
		args = append(args, "--state-dir", shellQuote(relPath(saved.StateDir)))
	}
	return strings.Join(append(args, "--out", shellQuote(planFile)), " ")
}

// relPath is p relative to the working directory when it lies below it, else p.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil || !filepath.IsAbs(p) {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain path characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// addresses lists addresses for a message: "app.a, app.b".
func addresses(as []plan.Address) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// readSavedPlanArg returns the saved plan when args is exactly one file that holds one. A saved plan
// among other paths, or a JSON plan (plan -o json) where a saved plan is expected, is an error that
// says what to do instead.
func readSavedPlanArg(args []string) (*plan.Plan, string, error) {
	for _, a := range args {
		head := fileHead(a)
		switch {
		case looksLikeJSONPlan(head):
			return nil, "", fmt.Errorf("%s is a JSON plan (plan -o json), for tools to read; apply takes a file written by 'appfleet plan --out FILE'", a)
		case len(args) > 1 && looksLikeSavedPlan(head):
			return nil, "", fmt.Errorf("%s is a saved plan, and a saved plan is applied on its own: 'appfleet apply %s' (it records the manifests it was made from)", a, a)
		}
	}
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
	p, err := plan.Load(f)
	if errors.Is(err, plan.ErrNotAPlan) && !looksLikeSavedPlan(fileHead(args[0])) {
		return nil, "", nil // a manifest file
	}
	if err != nil {
		return nil, "", fmt.Errorf("read saved plan %s: %w; it is damaged or was not written by 'appfleet plan --out': plan again", args[0], err)
	}
	return p, args[0], nil
}

// fileHead returns the first bytes of a regular file, or nil.
func fileHead(path string) []byte {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	return head[:n]
}

// looksLikeJSONPlan reports whether a file's first bytes are those of a JSON plan (Terraform's format).
func looksLikeJSONPlan(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	return bytes.HasPrefix(t, []byte("{")) && bytes.Contains(t, []byte(`"format_version"`)) && !bytes.Contains(t, []byte(`"appfleet-plan"`))
}

// looksLikeSavedPlan reports whether a file's first bytes are those of a saved plan (a JSON object
// whose kind is appfleet-plan), so that a damaged one is reported as such rather than read as YAML.
func looksLikeSavedPlan(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	return bytes.HasPrefix(t, []byte("{")) && bytes.Contains(t, []byte(`"appfleet-plan"`))
}
