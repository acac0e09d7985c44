package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apply"
	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/engine/enginetest"
	"github.com/appfleet/appfleet/internal/lock"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

const manifests = enginetest.Manifests

// recorder is a Sink that writes down what it is told, one line per call.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) Event(e apply.Event) {
	if e.Phase == apply.Finished {
		r.add("finished %s %v", e.Address, e.Err)
	}
}
func (r *recorder) Diagnostics(d spec.Diagnostics) { r.add("diagnostics %d", len(d)) }
func (r *recorder) Warning(err error)              { r.add("warning %v", err) }
func (r *recorder) Planned(pass engine.Pass, p *plan.Plan, err error) {
	r.add("planned %d %s %v", pass, p.Summary(), err)
}
func (r *recorder) Applying(pass engine.Pass, _ *plan.Plan) { r.add("applying %d", pass) }
func (r *recorder) Applied(pass engine.Pass, res apply.Result, _ time.Duration) {
	r.add("applied %d ok=%v", pass, res.OK())
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

// load reads manifests from memory, as the daemon hands in manifests read from a git commit.
func load(t *testing.T, e *engine.Engine, text string) *spec.Manifests {
	t.Helper()
	m, err := e.Load(engine.Request{Paths: []string{"-"}, Stdin: strings.NewReader(text)}, true, nil)
	require.NoError(t, err)
	return m
}

func newEngine(t *testing.T) (*engine.Engine, *enginetest.Provider) {
	fake := enginetest.NewProvider(t)
	return engine.New(engine.Config{Registry: fake.Registry(), StateDir: t.TempDir()}), fake
}

// One engine serves call after call, as a daemon calls it: apply, then plan again with nothing to do.
func TestApplyThenPlanAgain(t *testing.T) {
	e, fake := newEngine(t)
	m := load(t, e, manifests)
	rec := &recorder{}
	res, err := e.Apply(t.Context(), engine.Request{Manifests: m}, rec)
	require.NoError(t, err)
	want := []string{
		"planned 1 Plan: 2 to create, 0 to update, 0 to delete. <nil>",
		"applying 1",
		"finished environment.dev <nil>",
		"finished app.crm <nil>",
		"applied 1 ok=true",
	}
	if diff := cmp.Diff(want, rec.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	require.Len(t, res.Applied, 1)
	assert.Equal(t, []string{"environment.dev", "app.crm"}, res.Applied[0].Succeeded)
	assert.Equal(t, "acme", res.Snapshot.Fleet)
	assert.Equal(t, []string{"apply dev"}, fake.Calls())

	res, err = e.Plan(t.Context(), engine.Request{Manifests: m}, rec)
	require.NoError(t, err)
	assert.False(t, res.Plan.HasChanges(), "%s", res.Plan)
	assert.True(t, res.Snapshot.Environments["dev"].Reachable)
	assert.Empty(t, rec.take(), "planning reports no plan to carry out")
}

func TestApplyRefusals(t *testing.T) {
	e, _ := newEngine(t)
	_, err := e.Apply(t.Context(), engine.Request{Manifests: load(t, e, manifests)}, nil)
	require.NoError(t, err)
	lossy := load(t, e, strings.Replace(manifests, "        - {name: email, type: string}\n", "", 1))

	t.Run("data loss", func(t *testing.T) {
		rec := &recorder{}
		res, err := e.Apply(t.Context(), engine.Request{Manifests: lossy}, rec)
		var loss *engine.DataLossError
		require.ErrorAs(t, err, &loss)
		assert.Equal(t, []plan.Address{"app.crm"}, loss.Addresses)
		assert.Equal(t, engine.FirstPass, loss.Pass)
		assert.Empty(t, res.Applied, "nothing was carried out")
		assert.NotContains(t, strings.Join(rec.take(), "\n"), "applying")
	})
	t.Run("not approved", func(t *testing.T) {
		no := errors.New("not now")
		var asked []engine.Pass
		_, err := e.Apply(t.Context(), engine.Request{Manifests: lossy, AllowDataLoss: true,
			Approve: func(_ context.Context, pass engine.Pass, p *plan.Plan) error {
				asked = append(asked, pass)
				return no
			}}, nil)
		require.ErrorIs(t, err, no)
		assert.Equal(t, []engine.Pass{engine.FirstPass}, asked)
	})
	t.Run("locked", func(t *testing.T) {
		res, err := e.Plan(t.Context(), engine.Request{Manifests: lossy}, nil)
		require.NoError(t, err)
		lk, err := lock.Acquire(res.StateDir, "someone else")
		require.NoError(t, err)
		defer lk.Release()
		_, err = e.Apply(t.Context(), engine.Request{Manifests: lossy, AllowDataLoss: true}, nil)
		require.ErrorIs(t, err, lock.ErrLocked)
		assert.ErrorContains(t, err, "someone else")
	})
	t.Run("stale saved plan", func(t *testing.T) {
		res, err := e.Plan(t.Context(), engine.Request{Manifests: lossy}, nil)
		require.NoError(t, err)
		saved := res.Plan
		// Something else changes the app after the plan was made.
		_, err = e.Apply(t.Context(), engine.Request{Manifests: lossy, AllowDataLoss: true}, nil)
		require.NoError(t, err)
		_, err = e.Apply(t.Context(), engine.Request{Manifests: lossy, Saved: saved, AllowDataLoss: true}, nil)
		var stale *engine.StaleError
		require.ErrorAs(t, err, &stale)
		assert.Equal(t, engine.StaleResources, stale.What)
		require.Len(t, stale.Resources, 1)
		assert.Equal(t, plan.Address("app.crm"), stale.Resources[0].Address)
	})
}

// Manifests read from a file system other than the disk (a git commit's tree) plan and apply alike.
func TestApplyFromFS(t *testing.T) {
	e, fake := newEngine(t)
	tree := fstest.MapFS{"fleet/all.yaml": {Data: []byte(manifests)}, "README.md": {Data: []byte("not a manifest")}}
	res, err := e.Apply(t.Context(), engine.Request{FS: tree, Paths: []string{"fleet"}, FSOptions: spec.LoadOptions{Dir: t.TempDir()}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "acme", res.Manifests.Name)
	assert.Equal(t, []string{"fleet"}, res.Plan.Paths, "paths inside the tree are kept as given")
	assert.Equal(t, []string{"apply dev"}, fake.Calls())

	rec := &recorder{}
	bad := fstest.MapFS{"fleet/all.yaml": {Data: []byte(strings.Replace(manifests, "environment: dev", "environment: nowhere", 1))}}
	_, err = e.Plan(t.Context(), engine.Request{FS: bad, Paths: []string{"fleet"}}, rec)
	require.ErrorIs(t, err, spec.ErrInvalid)
	require.ErrorContains(t, err, "fleet/all.yaml:")
	assert.Equal(t, []string{"diagnostics 1"}, rec.take(), "the diagnostics go to the sink")
}

// An interrupted observation plans nothing: what it saw is partial.
func TestInterruptedObservation(t *testing.T) {
	e, fake := newEngine(t)
	m := load(t, e, manifests)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := e.Apply(ctx, engine.Request{Manifests: m}, nil)
	require.ErrorIs(t, err, engine.ErrInterrupted)
	assert.Nil(t, res)
	assert.Empty(t, fake.Calls())
}

// Apps of a runtime that does not answer cannot be planned; Apply brings the runtime back in a first pass
// and plans and applies them in a ConvergePass.
func TestApplyConverges(t *testing.T) {
	e, fake := newEngine(t)
	m := load(t, e, manifests)
	_, err := e.Apply(t.Context(), engine.Request{Manifests: m, Targets: []string{"environment.dev"}}, nil)
	require.NoError(t, err)
	fake.Unreach("dev")

	rec := &recorder{}
	var asked []engine.Pass
	res, err := e.Apply(t.Context(), engine.Request{Manifests: m, Approve: func(_ context.Context, pass engine.Pass, _ *plan.Plan) error {
		asked = append(asked, pass)
		return nil
	}}, rec)
	require.NoError(t, err)
	got := rec.take()
	require.GreaterOrEqual(t, len(got), 2)
	assert.True(t, strings.HasPrefix(got[0], "planned 1 "), got[0])
	assert.Contains(t, got, "planned 2 Plan: 1 to create, 0 to update, 0 to delete. <nil>")
	assert.Contains(t, got, "applied 2 ok=true")
	assert.Equal(t, []engine.Pass{engine.FirstPass, engine.ConvergePass}, asked)
	require.Len(t, res.Applied, 2)
	assert.Equal(t, []string{"app.crm"}, res.Applied[1].Succeeded)
	assert.Empty(t, res.Plan.Unknown())
}
