package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/appfleet/appfleet/engine"
)

// Exit codes, the same in every command.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitChanges     = 2 // plan has changes (only with --detailed-exitcode)
	ExitPartial     = 3 // apply finished but some actions failed
	ExitInterrupted = 130
)

// Sentinel errors a command returns to choose its exit code. Commands that have already printed
// what went wrong wrap ErrSilent so Main prints nothing more.
var (
	ErrChanges     = errors.New("plan has changes")
	ErrPartial     = engine.ErrPartial
	ErrInterrupted = engine.ErrInterrupted
	ErrSilent      = errors.New("already reported")
)

// exitCode is the one table from errors to exit codes.
func exitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrInterrupted), errors.Is(err, context.Canceled):
		// First: an interrupted command's outcome is incomplete, whatever else it says.
		return ExitInterrupted
	case errors.Is(err, ErrChanges):
		return ExitChanges
	case errors.Is(err, ErrPartial):
		return ExitPartial
	default:
		return ExitError
	}
}

// silent wraps err so Main exits with its code without printing it again.
func silent(err error) error { return fmt.Errorf("%w: %w", ErrSilent, err) }

// shouldPrint reports whether Main should print err: everything but the sentinels that only carry a code.
func shouldPrint(err error) bool {
	return err != nil && !errors.Is(err, ErrSilent) && !errors.Is(err, ErrChanges)
}
