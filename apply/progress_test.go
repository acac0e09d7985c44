package apply

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/plan"
)

func TestPlainProgress(t *testing.T) {
	var b bytes.Buffer
	p := NewPlainProgress(&b)
	p.Event(Event{Address: "app.crm", Kind: plan.Create, Phase: Started, Attempt: 1})
	p.Event(Event{Address: "app.crm", Kind: plan.Create, Phase: Retrying, Attempt: 2, Err: errors.New("connection refused"), Message: "retrying in 500ms"})
	p.Event(Event{Address: "app.crm", Kind: plan.Create, Phase: Finished, Duration: 120 * time.Millisecond})
	p.Event(Event{Address: "app.shop", Kind: plan.Update, Phase: Finished, Duration: 65 * time.Second, Err: errors.New("write refused")})
	p.Event(Event{Address: "app.legacy", Kind: plan.Delete, Phase: Finished, Duration: time.Second})
	p.Event(Event{Address: "app.x", Kind: plan.Create, Phase: Skipped, Message: "skipped: environment.a failed"})
	assert.Equal(t, `app.crm: Creating...
app.crm: attempt 1 failed: connection refused; retrying in 500ms
app.crm: Creation complete after 0.12s
app.shop: Modification failed after 1m5s: write refused
app.legacy: Destruction complete after 1.00s
app.x: skipped: environment.a failed
`, b.String())
	assert.NoError(t, p.Close())
}

func TestTTYProgress(t *testing.T) {
	var b bytes.Buffer
	p := NewTTYProgress(&b, nil)
	p.Event(Event{Address: "app.a", Kind: plan.Create, Phase: Started})
	p.Event(Event{Address: "app.b", Kind: plan.Start, Phase: Started})
	p.Event(Event{Address: "app.a", Kind: plan.Create, Phase: Finished, Duration: 10 * time.Millisecond})
	p.Event(Event{Address: "app.b", Kind: plan.Start, Phase: Finished, Duration: 10 * time.Millisecond, Err: errors.New("app is in error: boom")})
	assert.NoError(t, p.Close())
	out := b.String()
	assert.Contains(t, out, "Applying: 0 done, 2 running (app.a, app.b)")
	assert.Contains(t, out, "\r\x1b[Kapp.a: Creation complete after 0.01s\n")
	assert.Contains(t, out, "app.b: Start failed after 0.01s: app is in error: boom\n")
	assert.True(t, strings.HasSuffix(out, "app.b: Start failed after 0.01s: app is in error: boom\n"),
		"nothing is running at the end, so no summary line is left: %q", out)
}

// summaryLines are the live lines a TTYProgress drew: each follows the last newline before an erase.
func summaryLines(out string) []string {
	var lines []string
	for _, part := range strings.Split(out, "\r\x1b[K") {
		if line := part[strings.LastIndexByte(part, '\n')+1:]; line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

func TestTTYProgressFitsWidth(t *testing.T) {
	width := 60
	var b bytes.Buffer
	p := NewTTYProgress(&b, func() int { return width })
	for _, a := range []string{"app.customer-relationship-management", "app.billing", "app.wiki"} {
		p.Event(Event{Address: a, Kind: plan.Create, Phase: Started})
	}
	width = 20 // the terminal is made narrower
	p.Event(Event{Address: "app.z", Kind: plan.Create, Phase: Started})
	width = 0 // unknown: the line is not cut
	p.Event(Event{Address: "app.y", Kind: plan.Create, Phase: Started})
	require.NoError(t, p.Close())

	got := summaryLines(b.String())
	want := []string{
		"Applying: 0 done, 1 running",
		"Applying: 0 done, 2 running (app.billing, +1)",
		"Applying: 0 done, 3 running (app.billing, +2)",
		"Applying: 0 done, …",
		"Applying: 0 done, 5 running (app.billing, app.customer-relationship-management, app.wiki, +2)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary lines (-want +got):\n%s", diff)
	}
	for i, line := range got[:4] {
		assert.LessOrEqual(t, utf8.RuneCountInString(line), []int{59, 59, 59, 19}[i], "line %d fits its terminal, last column free", i)
	}
}
