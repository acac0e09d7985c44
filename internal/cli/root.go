package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/appfleet/appfleet/internal/version"

	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/all"
)

// annotationLongRunning marks a command that runs until stopped (the runtime, a daemon): it keeps the
// default garbage collector target, since its memory per app is what density depends on.
const annotationLongRunning = "appfleet.dev/long-running"

// shortLivedGCPercent is the garbage collector target of every other command.
const shortLivedGCPercent = 400

// Factory carries what every command needs: streams, the providers and the global flags.
type Factory struct {
	IO *IOStreams
	// Registry returns the providers environments may name; nil means every provider of this build.
	// Tests hand in a fake one.
	Registry func() providers.Registry
	// StateDir is --state-dir (or APPFLEET_STATE_DIR); empty means ".appfleet" beside the manifests.
	StateDir string
	NoColor  bool
}

func (f *Factory) registry() providers.Registry {
	if f.Registry != nil {
		return f.Registry()
	}
	return all.Registry()
}

// Main runs the command line and returns the process exit code.
func Main() int {
	f := &Factory{IO: SystemIO()}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal lets the command wind down (actions in flight finish); restoring the default
	// handling then lets a second Ctrl-C end the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	return Run(ctx, f, os.Args[1:])
}

// Run executes one command line with the given factory; tests call it in-process.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
		err = fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	if shouldPrint(err) {
		fmt.Fprintf(f.IO.ErrOut, "Error: %v\n", err)
	}
	return exitCode(err)
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "appfleet",
		Short: "Declare, plan and apply fleets of isolated apps",
		Long: `appfleet runs fleets of isolated business apps. Declare environments and apps in YAML;
appfleet compares that with what really runs, prints a plan, and applies it.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if f.NoColor {
				f.IO.SetColorEnabled(false)
			}
			if cmd.Annotations[annotationLongRunning] == "" {
				// A command that lives a second or less gains nothing from collecting a heap of a few
				// megabytes often: a higher target saves about a tenth of a large plan's time.
				debug.SetGCPercent(shortLivedGCPercent)
			}
		},
	}
	// --version prints what 'appfleet version' prints.
	cmd.Version = version.Get().Version
	cmd.SetVersionTemplate(versionText(version.Get()))
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())
	})
	cmd.PersistentFlags().StringVar(&f.StateDir, "state-dir", os.Getenv("APPFLEET_STATE_DIR"),
		"directory for appfleet's state (env APPFLEET_STATE_DIR; default .appfleet beside the manifests)")
	cmd.PersistentFlags().BoolVar(&f.NoColor, "no-color", false, "disable colour in output (also NO_COLOR)")

	cmd.AddCommand(
		newVersionCmd(f),
		newValidateCmd(f),
		newPlanCmd(f),
		newApplyCmd(f),
		newDestroyCmd(f),
		newStatusCmd(f),
		newRuntimeCmd(f),
		newWatchCmd(f),
	)
	return cmd
}
