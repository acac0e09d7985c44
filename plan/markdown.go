package plan

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// RenderMarkdown writes the plan for a pull-request comment: a heading, the summary, data-loss and
// blocking warnings as GitHub alerts, and the actions in a diff block. No secret value is ever written.
func RenderMarkdown(w io.Writer, p *Plan) error {
	bw := bufio.NewWriter(w)
	s := p.Summary()
	fmt.Fprintf(bw, "### appfleet plan for `%s`\n\n", p.Fleet)
	fmt.Fprintf(bw, "**%s**\n\n", s.String())
	if blocked := p.Blocked(); len(blocked) > 0 {
		fmt.Fprintf(bw, "> [!CAUTION]\n> This plan cannot be applied:\n")
		for _, a := range blocked {
			fmt.Fprintf(bw, "> - `%s`: %s\n", a.Address, a.Blocked)
		}
		fmt.Fprintln(bw)
	}
	if dl := p.AllowableDataLoss(); len(dl) > 0 {
		fmt.Fprintf(bw, "> [!WARNING]\n> These actions lose data; apply refuses them unless `--allow-data-loss`:\n")
		for _, a := range dl {
			fmt.Fprintf(bw, "> - `%s`: %s\n", a.Address, strings.Join(a.DataLossReasons, "; "))
		}
		fmt.Fprintln(bw)
	}
	if s[Unknown] > 0 {
		fmt.Fprintf(bw, "> [!NOTE]\n> %s.\n\n", unobserved(p))
	}
	var body bytes.Buffer
	t := textWriter{w: &body}
	col := column(p)
	for _, a := range p.Actions {
		if visible(a) {
			t.action(a, col)
		}
	}
	if body.Len() > 0 {
		fmt.Fprintln(bw, "```diff")
		for _, line := range strings.Split(strings.TrimRight(body.String(), "\n"), "\n") {
			fmt.Fprintln(bw, diffMarked(line))
		}
		fmt.Fprintln(bw, "```")
	}
	if p.Digest != "" {
		fmt.Fprintf(bw, "\n<sub>manifests digest `%s`</sub>\n", p.Digest)
	}
	return bw.Flush()
}

// diffMarked puts a diff marker in a text plan line's first column, where a diff block colours it
// (+ green, - red, ! orange); a symbol that says the same as its marker gives way to it.
func diffMarked(line string) string {
	trimmed := strings.TrimLeft(line, " ")
	marker := " "
	switch {
	case strings.HasPrefix(trimmed, "->"):
		// A move changes where the app runs and keeps its data: a change, not a removal.
		marker = "!"
	case strings.HasPrefix(trimmed, "-"), strings.HasPrefix(trimmed, "✗"):
		marker = "-"
	case strings.HasPrefix(trimmed, "+"):
		marker = "+"
	case strings.HasPrefix(trimmed, "~"), strings.HasPrefix(trimmed, "±"), strings.HasPrefix(trimmed, "!"), strings.HasPrefix(trimmed, "?"),
		strings.HasPrefix(trimmed, "▶"), strings.HasPrefix(trimmed, "■"):
		marker = "!"
	}
	if !strings.HasPrefix(line, " ") {
		return line
	}
	rest := line[1:]
	if strings.HasPrefix(trimmed, marker) && !strings.HasPrefix(trimmed, "-/+") {
		pad := len(rest) - len(trimmed)
		rest = rest[:pad] + " " + trimmed[len(marker):]
	}
	return marker + rest
}
