package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/appfleet/appfleet/plan"
)

// blocked turns a blocked plan's error into the command's: the plan text already names every blocked
// action with its reason, so only a short closing line is printed.
func blocked(w io.Writer, err error) error {
	if errors.Is(err, plan.ErrBlocked) {
		fmt.Fprintln(w, "Nothing was changed: the plan is blocked (see above); each blocked action says what to do first.")
		return silent(err)
	}
	return err
}

// canConfirm checks that a change can be confirmed: a terminal, or --yes.
func canConfirm(io *IOStreams, verb string, yes bool) error {
	if !yes && !io.CanPrompt() {
		return fmt.Errorf("%s changes the fleet and needs confirmation: run it in a terminal, or pass --yes", verb)
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
		if isEOF(a.err) && strings.TrimSpace(a.line) == "" {
			// No answer at all (stdin closed): the change is cancelled, like any answer but "yes".
			fmt.Fprintln(io.ErrOut)
			return false, nil
		}
		if a.err != nil && a.line == "" {
			return false, fmt.Errorf("read confirmation: %w", a.err)
		}
		return strings.TrimSpace(a.line) == "yes", nil
	}
}

// isEOF reports whether err says that stdin ended (confirm's parameter named io hides the package).
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
