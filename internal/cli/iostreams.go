package cli

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the streams a command reads and writes, and what it knows about the terminal.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer // data
	ErrOut io.Writer // progress and diagnostics

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	color     bool
	// width returns the width of the terminal stderr writes to, 0 when unknown.
	width func() int
}

// SystemIO returns the process's streams. Colour is on when stdout is a terminal and NO_COLOR is unset
// or empty (no-color.org: only a non-empty NO_COLOR turns colour off).
func SystemIO() *IOStreams {
	s := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
	s.width = func() int {
		w, _, err := term.GetSize(int(os.Stderr.Fd()))
		if err != nil {
			return 0
		}
		return w
	}
	s.color = colorWanted(s.stdoutTTY, os.Getenv("NO_COLOR"), os.Getenv("TERM"))
	return s
}

// colorWanted decides colour from whether stdout is a terminal and the NO_COLOR and TERM variables: a
// NO_COLOR that is set but empty does not count (no-color.org).
func colorWanted(tty bool, noColor, term string) bool {
	return tty && noColor == "" && term != "dumb"
}

// TestIO returns streams backed by buffers; tty makes them claim to be a terminal (without colour).
func TestIO(tty bool) (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, stdinTTY: tty, stdoutTTY: tty, stderrTTY: tty}, in, out, errOut
}

// CanPrompt reports whether a person can answer a question: stdin and stderr are terminals.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal (live progress is drawn only then).
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// TerminalWidth is the width in columns of the terminal stderr writes to, asked afresh at each call (a
// terminal may be resized); 0 when it is not a terminal or its width cannot be read.
func (s *IOStreams) TerminalWidth() int {
	if !s.stderrTTY || s.width == nil {
		return 0
	}
	return s.width()
}

// SetTerminalWidth makes TerminalWidth answer w, for tests.
func (s *IOStreams) SetTerminalWidth(w int) { s.width = func() int { return w } }

// ColorEnabled reports whether output may carry ANSI colour.
func (s *IOStreams) ColorEnabled() bool { return s.color }

// SetColorEnabled turns colour on or off (--no-color turns it off).
func (s *IOStreams) SetColorEnabled(on bool) { s.color = on }
