package apply

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
// place: how many actions are done, which run now, and how many failed. The summary line always fits the
// terminal's width (a wrapped line could not be erased in place): names of running actions give way
// first, then the line is cut. Close erases the summary line. It is safe for concurrent use.
type TTYProgress struct {
	mu      sync.Mutex
	w       io.Writer
	width   func() int
	running map[string]time.Time
	done    int
	failed  int
	skipped int
	drawn   bool
	now     func() time.Time
}

// NewTTYProgress returns a Sink for a terminal. width returns the terminal's width in columns; it is
// asked at every redraw, so a resized terminal is followed. Nil, or a width of 0 or less, means unknown:
// the line is not cut.
func NewTTYProgress(w io.Writer, width func() int) *TTYProgress {
	return &TTYProgress{w: w, width: width, running: map[string]time.Time{}, now: time.Now}
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
	width := 0
	if t.width != nil {
		width = t.width()
	}
	// The last column is left free: some terminals wrap as soon as it is written.
	limit := width - 1
	var s string
	for show := min(3, len(names)); show >= 0; show-- {
		s = t.summary(names, show)
		if width <= 0 || utf8.RuneCountInString(s) <= limit {
			break
		}
	}
	fmt.Fprint(t.w, cut(s, limit))
	t.drawn = true
}

// summary is the live line naming the first show running actions.
func (t *TTYProgress) summary(names []string, show int) string {
	s := fmt.Sprintf("Applying: %d done, %d running", t.done, len(names))
	if show > 0 {
		list := strings.Join(names[:show], ", ")
		if len(names) > show {
			list += fmt.Sprintf(", +%d", len(names)-show)
		}
		s += " (" + list + ")"
	}
	if t.failed > 0 {
		s += fmt.Sprintf(", %d failed", t.failed)
	}
	if t.skipped > 0 {
		s += fmt.Sprintf(", %d skipped", t.skipped)
	}
	return s
}

// cut shortens s to at most limit runes, ending it with "…" when it cut anything; limit < 0 means no limit.
func cut(s string, limit int) string {
	if limit < 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	if limit == 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}
