package plan

import (
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// The vocabulary table describes every kind completely, and what is read from it round-trips.
func TestKindsTable(t *testing.T) {
	require.Len(t, Kinds(), int(Unknown)+1, "the table has a row for every kind")
	seen := map[string]bool{}
	for _, k := range Kinds() {
		t.Run(k.String(), func(t *testing.T) {
			assert.False(t, seen[k.String()], "names are unique")
			seen[k.String()] = true
			assert.Equal(t, 3, utf8.RuneCountInString(k.Symbol()), "symbols are three columns wide")
			assert.NotEmpty(t, k.TerraformActions())
			running, done, failed := k.Progress()
			assert.NotEmpty(t, running+done+failed)
			assert.Equal(t, k.Changes(), k.Color() != "", "every kind that changes something has a colour, and only those")
			var back ActionKind
			require.NoError(t, back.UnmarshalText([]byte(k.String())))
			assert.Equal(t, k, back)
		})
	}
	assert.Equal(t, []ActionKind{Create, Update, Replace, Delete, Move, Start, Stop}, summaryOrder)
	assert.Equal(t, "ActionKind(42)", ActionKind(42).String())
}

func TestSummaryCountsByKind(t *testing.T) {
	p := &Plan{Actions: []*Action{{Kind: Create}, {Kind: Create}, {Kind: Move}, {Kind: Unknown}, {Kind: NoOp}}}
	s := p.Summary()
	if diff := cmp.Diff(Summary{Create: 2, Move: 1, Unknown: 1, NoOp: 1}, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	assert.Equal(t, 3, s.Changes(), "unknown and no-op actions change nothing")
	assert.Equal(t, "Plan: 2 to create, 0 to update, 0 to delete, 1 to move.", s.String())
}

func TestDecideApp(t *testing.T) {
	tests := []struct {
		name          string
		d             appDiff
		state, status string
		from          string
		kind          ActionKind
		code          ReasonCode
		reason        string
	}{
		{"same", appDiff{}, spec.StateRunning, api.StatusRunning, "", NoOp, ReasonUpToDate, "up to date"},
		{"changed", appDiff{diffs: []FieldDiff{{Path: "settings.a"}}}, spec.StateRunning, api.StatusRunning, "", Update, ReasonSpecChanged, "update in place"},
		{"stop", appDiff{diffs: []FieldDiff{{Path: "state"}}, stateOnly: true}, spec.StateStopped, api.StatusRunning, "", Stop, ReasonStateChanged, "stop"},
		{"start", appDiff{diffs: []FieldDiff{{Path: "state"}}, stateOnly: true}, spec.StateRunning, api.StatusStopped, "", Start, ReasonStateChanged, "start"},
		{"start in error", appDiff{diffs: []FieldDiff{{Path: "state"}}, stateOnly: true}, spec.StateRunning, api.StatusError, "", Start, ReasonInError, "start (it is in error)"},
		{"replace", appDiff{replace: true}, spec.StateRunning, api.StatusRunning, "", Replace, ReasonCannotUpdate, "replace (data archived, the app starts empty)"},
		{"replace across", appDiff{replace: true}, spec.StateRunning, api.StatusRunning, "old", Replace, ReasonCannotUpdate, "replace (moves from old to dev; data archived, the app starts empty)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, code, reason := decideApp(tt.d, tt.state, tt.status, tt.from, "dev")
			assert.Equal(t, tt.kind, kind)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.reason, reason)
		})
	}
}
