package spec

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Severities of a Diagnostic.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Diagnostic is one problem found in the manifests: a one-line Summary, a Detail that hints at the fix,
// and where it is. Line and Column are 1-based; they are 0 only when the problem concerns a whole path
// (a missing directory, an unreadable file). No Diagnostic ever holds a secret's value.
type Diagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

// Position renders where the diagnostic points: "file:line:column", "file" or "".
func (d Diagnostic) Position() string {
	switch {
	case d.File == "":
		return ""
	case d.Line == 0:
		return d.File
	default:
		return fmt.Sprintf("%s:%d:%d", d.File, d.Line, max(d.Column, 1))
	}
}

// String renders the diagnostic as a compiler does: "file:line:column: summary", with "warning: " before
// the summary of a warning. The Detail is not included.
func (d Diagnostic) String() string {
	var b strings.Builder
	if p := d.Position(); p != "" {
		b.WriteString(p)
		b.WriteString(": ")
	}
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Summary)
	return b.String()
}

// Diagnostics is every problem found in one load, errors and warnings, in the order of the files and
// then of their positions.
//
// Diagnostics deliberately does not implement error (a nil Diagnostics in an error variable would not be
// nil); call Err to get an error when there is at least one error.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error (warnings do not make manifests invalid).
func (d Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(d, func(x Diagnostic) bool { return x.Severity == SeverityError })
}

// Errors returns only the errors.
func (d Diagnostics) Errors() Diagnostics {
	return slices.DeleteFunc(slices.Clone(d), func(x Diagnostic) bool { return x.Severity != SeverityError })
}

// Warnings returns only the warnings.
func (d Diagnostics) Warnings() Diagnostics {
	return slices.DeleteFunc(slices.Clone(d), func(x Diagnostic) bool { return x.Severity != SeverityWarning })
}

// Err returns nil when there is no error, else an *InvalidError holding the errors (errors.Is ErrInvalid).
func (d Diagnostics) Err() error {
	if !d.HasErrors() {
		return nil
	}
	return &InvalidError{Diagnostics: d.Errors()}
}

// ErrInvalid is what every *InvalidError matches with errors.Is.
var ErrInvalid = errors.New("invalid manifests")

// InvalidError is the error form of Diagnostics: one line per error, "file:line:column: summary".
type InvalidError struct {
	Diagnostics Diagnostics
}

func (e *InvalidError) Error() string {
	lines := make([]string, 0, len(e.Diagnostics)+1)
	lines = append(lines, fmt.Sprintf("%s: %d %s", ErrInvalid, len(e.Diagnostics), plural(len(e.Diagnostics), "error", "errors")))
	for _, d := range e.Diagnostics {
		lines = append(lines, d.String())
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sortDiagnostics orders diagnostics by file (in load order; diagnostics with no file first), then line,
// then column, keeping the order of detection among equals.
func sortDiagnostics(d Diagnostics, fileOrder map[string]int) {
	rank := func(f string) int {
		if f == "" {
			return -1
		}
		if r, ok := fileOrder[f]; ok {
			return r
		}
		return len(fileOrder)
	}
	slices.SortStableFunc(d, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(rank(a.File), rank(b.File)),
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
}
