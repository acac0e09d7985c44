package apply

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/appfleet/appfleet/plan"
)

// verb is the word progress lines use for the kind: while running (0), on success (1), on failure (2).
func verb(k plan.ActionKind, i int) string {
	running, done, failed := k.Progress()
	return [3]string{running, done, failed}[i]
}

// FormatDuration writes a duration the way progress lines do: "0.12s" under a minute, "1m3s" above.
func FormatDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// line is the one line an event prints.
func line(e Event) string {
	switch e.Phase {
	case Started:
		return fmt.Sprintf("%s: %s...", e.Address, verb(e.Kind, 0))
	case Finished:
		if e.Err != nil {
			return fmt.Sprintf("%s: %s after %s: %v", e.Address, verb(e.Kind, 2), FormatDuration(e.Duration), e.Err)
		}
		return fmt.Sprintf("%s: %s after %s", e.Address, verb(e.Kind, 1), FormatDuration(e.Duration))
	case Retrying:
		msg := fmt.Sprintf("%s: attempt %d failed: %v", e.Address, e.Attempt-1, e.Err)
		if e.Message != "" {
			msg += "; " + e.Message
		}
		return msg
	case Skipped:
		return fmt.Sprintf("%s: %s", e.Address, strings.TrimSpace(cmpOr(e.Message, "skipped")))
	default:
		return fmt.Sprintf("%s: %s", e.Address, e.Phase)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// PlainProgress writes one line per event, for logs and pipes. It is safe for concurrent use.
type PlainProgress struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPlainProgress returns a Sink that writes "app.crm: Creating..." and
// "app.crm: Creation complete after 0.12s" lines to w.
func NewPlainProgress(w io.Writer) *PlainProgress { return &PlainProgress{w: w} }

// Event writes the event's line.
func (p *PlainProgress) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, line(e))
}

// Close does nothing; it is there so both progress renderers are closed the same way.
func (p *PlainProgress) Close() error { return nil }

// TTYProgress writes the same lines as PlainProgress and keeps a live summary line below them, redrawn in
// place: how many actions are done, which run now, and how many failed. Close erases the summary line.
// It is safe for concurrent use.
type TTYProgress struct {
	mu      sync.Mutex
	w       io.Writer
	running map[string]time.Time
	done    int
	failed  int
	skipped int
	drawn   bool
	now     func() time.Time
}

// NewTTYProgress returns a Sink for a terminal.
func NewTTYProgress(w io.Writer) *TTYProgress {
	return &TTYProgress{w: w, running: map[string]time.Time{}, now: time.Now}
}

// Event prints the event's line above the summary and redraws the summary.
func (t *TTYProgress) Event(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Phase {
	case Started:
		t.running[e.Address] = t.now()
	case Finished:
		delete(t.running, e.Address)
		t.done++
		if e.Err != nil {
			t.failed++
		}
	case Skipped:
		t.skipped++
	}
	t.erase()
	fmt.Fprintln(t.w, line(e))
	t.draw()
}

// Close erases the summary line.
func (t *TTYProgress) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.erase()
	return nil
}

func (t *TTYProgress) erase() {
	if t.drawn {
		fmt.Fprint(t.w, "\r\x1b[K")
		t.drawn = false
	}
}

func (t *TTYProgress) draw() {
	if len(t.running) == 0 {
		return
	}
	names := make([]string, 0, len(t.running))
	for n := range t.running {
		names = append(names, n)
	}
	slices.Sort(names)
	const show = 3
	list := strings.Join(names[:min(show, len(names))], ", ")
	if len(names) > show {
		list += fmt.Sprintf(", +%d", len(names)-show)
	}
	s := fmt.Sprintf("Applying: %d done, %d running (%s)", t.done, len(t.running), list)
	if t.failed > 0 {
		s += fmt.Sprintf(", %d failed", t.failed)
	}
	if t.skipped > 0 {
		s += fmt.Sprintf(", %d skipped", t.skipped)
	}
	fmt.Fprint(t.w, s)
	t.drawn = true
}
