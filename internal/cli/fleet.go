package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/appfleet/appfleet/apply"
	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

// newEngine returns the engine every fleet command runs: the factory's providers and state dir.
func (f *Factory) newEngine() *engine.Engine {
	return engine.New(engine.Config{Registry: f.registry(), StateDir: f.StateDir})
}

// secretUse says whether a command sends secrets to runtimes, and so needs their values.
type secretUse bool

const (
	needSecrets secretUse = true  // plan and apply compare and send them
	noSecrets   secretUse = false // status and destroy never use a value: an unreadable secret is a warning
)

// loadManifests reads and validates the manifests under paths (the current directory when none), printing
// every diagnostic to stderr; it returns a silent error when any of them is an error.
func loadManifests(f *Factory, paths []string, secrets secretUse) (*spec.Manifests, error) {
	m, err := f.newEngine().Load(engine.Request{Paths: paths, Stdin: f.IO.In}, bool(secrets), newSink(f.IO, ""))
	return m, cliError(err)
}

// cliError turns what the engine returns into the command's error: what the sink has already shown
// (diagnostics, failed actions) is not printed again.
func cliError(err error) error {
	var failed *engine.FailedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, spec.ErrInvalid):
		return silent(errors.New("manifests are not valid"))
	case errors.As(err, &failed):
		return silent(err)
	}
	return err
}

// sink renders what the engine reports: diagnostics and warnings on stderr, each plan it is about to
// carry out as text on stdout, and live progress on stderr. verb ("Apply", "Destroy") names the command
// in the summary.
type sink struct {
	io       *IOStreams
	verb     string
	progress interface {
		apply.Sink
		Close() error
	}
}

func newSink(io *IOStreams, verb string) *sink { return &sink{io: io, verb: verb} }

func (s *sink) Diagnostics(diags spec.Diagnostics) { printDiagnostics(s.io.ErrOut, diags) }

func (s *sink) Warning(err error) { fmt.Fprintf(s.io.ErrOut, "Warning: %v\n", err) }

func (s *sink) Planned(pass engine.Pass, p *plan.Plan, _ error) {
	if pass == engine.ConvergePass {
		fmt.Fprintln(s.io.ErrOut, "\nRuntimes that did not answer before answer now. Their apps need these changes too:")
	}
	// A plan that cannot be written to stdout is still refused or confirmed on stderr.
	_ = plan.RenderText(s.io.Out, p, plan.TextOptions{Color: s.io.ColorEnabled()})
}

func (s *sink) Applying(engine.Pass, *plan.Plan) {
	if s.io.IsStderrTTY() {
		s.progress = apply.NewTTYProgress(s.io.ErrOut, s.io.TerminalWidth)
	} else {
		s.progress = apply.NewPlainProgress(s.io.ErrOut)
	}
}

func (s *sink) Event(e apply.Event) {
	if e.NotStarted {
		return // summed up in one line by Applied
	}
	if s.progress != nil {
		s.progress.Event(e)
	}
}

func (s *sink) Applied(_ engine.Pass, res apply.Result, took time.Duration) {
	if s.progress != nil {
		_ = s.progress.Close()
	}
	errOut := s.io.ErrOut
	fmt.Fprintf(errOut, "\n%s finished in %s: %d succeeded, %d failed, %d skipped.\n",
		s.verb, apply.FormatDuration(took), len(res.Succeeded), len(res.Failed), len(res.Skipped))
	switch {
	case res.Interrupted:
		fmt.Fprintf(errOut, "Interrupted: the actions in flight finished and no more were started (%d not started: %s). Run the command again to converge.\n",
			len(res.NotStarted), someOf(res.NotStarted, 5))
	case len(res.Failed) > 0 || len(res.Skipped) > 0:
		fmt.Fprintf(errOut, "Failed: %s. Fix the cause and run the command again; what succeeded is kept.\n",
			strings.Join(append(res.Failed, res.Skipped...), ", "))
	}
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

// someOf lists the first n of addrs, and how many more there are: "app.a, app.b and 3 more".
func someOf(addrs []string, n int) string {
	if len(addrs) <= n {
		return strings.Join(addrs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(addrs[:n], ", "), len(addrs)-n)
}
