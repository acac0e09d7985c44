// Package cli is appfleet's command line: cobra commands, the IO streams they write through, and the one
// table that maps errors to exit codes.
//
// Every command has the same shape: an options struct holding its dependencies and flags, newXCmd that
// only parses flags into it, and runX(ctx, opts) that holds the logic and is what tests call. Commands
// never write to os.Stdout or os.Stderr directly: data goes to IO.Out, progress and diagnostics to IO.ErrOut.
package cli
