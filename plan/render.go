package plan

import (
	"fmt"
	"io"
)

// Renderer writes a plan in one format. Every renderer reads the same Plan (and its one Summary); none
// computes anything the plan does not hold.
type Renderer interface {
	Render(w io.Writer, p *Plan) error
}

// RendererFunc adapts a function to a Renderer.
type RendererFunc func(w io.Writer, p *Plan) error

// Render calls f.
func (f RendererFunc) Render(w io.Writer, p *Plan) error { return f(w, p) }

// RenderOptions change how a renderer writes.
type RenderOptions struct {
	// Color adds ANSI colours where the format has them (text).
	Color bool
}

// Formats are the names RendererFor knows, in the order help texts list them.
var Formats = []string{"text", "json", "markdown"}

// RendererFor returns the renderer of format: "text" (or ""), "json", or "markdown" (or "md"). An
// unknown format is an error that lists the known ones.
func RendererFor(format string, o RenderOptions) (Renderer, error) {
	switch format {
	case "text", "":
		return RendererFunc(func(w io.Writer, p *Plan) error { return RenderText(w, p, TextOptions{Color: o.Color}) }), nil
	case "json":
		return RendererFunc(RenderJSON), nil
	case "markdown", "md":
		return RendererFunc(RenderMarkdown), nil
	}
	return nil, fmt.Errorf("unknown output format %q; use text, json or markdown", format)
}
