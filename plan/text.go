package plan

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// TextOptions change how RenderText writes a plan.
type TextOptions struct {
	// Color adds ANSI colours; without it the output is plain text.
	Color bool
}

const ansiBold = "\x1b[1m"

// minColumn is where the description column starts at the least.
const minColumn = 36

// RenderText writes the plan for a person: one line per action with its symbol, address and reason, its
// field diffs nested below, warnings, and the summary line. Actions that change nothing are shown only
// when they carry a warning. No secret value is ever written.
func RenderText(w io.Writer, p *Plan, o TextOptions) error {
	bw := bufio.NewWriter(w)
	t := textWriter{w: bw, color: o.Color}
	t.plan(p)
	return bw.Flush()
}

// String is the plan as plain text, as RenderText writes it without colour.
func (p *Plan) String() string {
	var b strings.Builder
	_ = RenderText(&b, p, TextOptions{})
	return b.String()
}

type textWriter struct {
	w     io.Writer
	color bool
}

func (t textWriter) paint(code, s string) string {
	if !t.color || code == "" {
		return s
	}
	return code + s + ansiReset
}

func diffColor(k FieldDiffKind) string {
	switch k {
	case FieldAdd:
		return ansiGreen
	case FieldRemove:
		return ansiRed
	default:
		return ansiYellow
	}
}

// visible reports whether the text plan shows the action.
func visible(a *Action) bool { return a.Kind != NoOp || a.Warning != "" || a.Blocked != "" }

func column(p *Plan) int {
	col := minColumn
	for _, a := range p.Actions {
		if !visible(a) {
			continue
		}
		col = max(col, 4+len(a.Address)+2)
		for _, d := range a.Diffs {
			col = max(col, 8+len(d.Path)+2)
		}
		for _, n := range a.Nested {
			col = max(col, 8+len(n.Address)+2)
			for _, d := range n.Diffs {
				col = max(col, 12+len(d.Path)+2)
			}
		}
	}
	return col
}

func (t textWriter) plan(p *Plan) {
	col := column(p)
	shown := false
	for _, a := range p.Actions {
		if !visible(a) {
			continue
		}
		shown = true
		t.action(a, col)
	}
	if shown {
		fmt.Fprintln(t.w)
	}
	s := p.Summary()
	fmt.Fprintln(t.w, t.paint(ansiBold, s.String()))
	if s[Unknown] > 0 {
		fmt.Fprintf(t.w, "%s; plan again once it answers.\n", unobserved(p))
	}
	if dl := p.AllowableDataLoss(); len(dl) > 0 {
		addrs := make([]string, len(dl))
		for i, a := range dl {
			addrs[i] = string(a.Address)
		}
		fmt.Fprintln(t.w, t.paint(ansiYellow, fmt.Sprintf("Warning: %d %s lose data (%s); apply refuses unless --allow-data-loss.",
			len(dl), plural(len(dl), "action would", "actions would"), strings.Join(addrs, ", "))))
	}
	for _, a := range p.Blocked() {
		fmt.Fprintln(t.w, t.paint(ansiRed, fmt.Sprintf("Error: %s: %s.", a.Address, a.Blocked)))
	}
}

func (t textWriter) action(a *Action, col int) {
	c := a.Kind.Color()
	head := fmt.Sprintf("%s %-*s", a.Kind.Symbol(), col-4, a.Address)
	fmt.Fprintf(t.w, "%s%s\n", t.paint(c, head), a.Reason)
	if a.Placement != "" {
		fmt.Fprintf(t.w, "        %s\n", a.Placement)
	}
	for _, d := range a.Diffs {
		line := fmt.Sprintf("      %s %-*s", d.Kind.Symbol(), col-8, d.Path)
		val := diffText(d)
		if d.DataLoss {
			val += " " + t.paint(ansiRed, "(data loss)")
		}
		fmt.Fprintf(t.w, "%s%s\n", t.paint(diffColor(d.Kind), line), val)
	}
	for _, n := range a.Nested {
		t.nested(n, col)
	}
	for _, r := range a.DataLossReasons {
		if a.Kind.Changes() {
			fmt.Fprintf(t.w, "      %s\n", t.paint(ansiRed, "! data loss: "+r))
		}
	}
	if a.Warning != "" {
		fmt.Fprintf(t.w, "      %s\n", t.paint(ansiYellow, "! "+a.Warning))
	}
	if a.Blocked != "" {
		fmt.Fprintf(t.w, "      %s\n", t.paint(ansiRed, "✗ blocked: "+a.Blocked))
	}
}

// nested writes one change of the provider's own planner and its changed attributes, one level deeper
// than the action's own field diffs.
func (t textWriter) nested(n NestedChange, col int) {
	desc := n.Text()
	if n.Drift {
		desc = "drift: " + desc
	}
	c := nestedColor(n)
	fmt.Fprintf(t.w, "%s%s\n", t.paint(c, fmt.Sprintf("      %s %-*s", nestedSymbol(n.Action), col-8, n.Address)), desc)
	for _, d := range n.Diffs {
		line := fmt.Sprintf("          %s %-*s", d.Kind.Symbol(), col-12, d.Path)
		fmt.Fprintf(t.w, "%s%s\n", t.paint(diffColor(d.Kind), line), diffText(d))
	}
}

func nestedColor(n NestedChange) string {
	switch {
	case n.Drift:
		return ansiYellow
	case n.Action == "create":
		return ansiGreen
	case n.Action == "delete":
		return ansiRed
	case n.Action == "replace":
		return ansiMagenta
	case n.Action == "update":
		return ansiYellow
	default:
		return ""
	}
}

// diffText is a field diff's value column: the added or removed value, or "before -> after".
func diffText(d FieldDiff) string {
	switch d.Kind {
	case FieldAdd:
		return d.After
	case FieldRemove:
		return d.Before
	default:
		return d.Before + " -> " + d.After
	}
}

func nestedSymbol(action string) string {
	switch action {
	case "create":
		return "+"
	case "delete":
		return "-"
	case "replace":
		return "±"
	case "update":
		return "~"
	default:
		return " "
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
