package apply

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
)

// recorder is a fake Performer that records what it performs, in order, and runs a per-address hook.
type recorder struct {
	mu       sync.Mutex
	started  []string
	finished []string
	attempts map[string]int
	running  atomic.Int32
	peak     atomic.Int32
	hook     func(ctx context.Context, a plan.Action, attempt int) error
}

func (r *recorder) Perform(ctx context.Context, a plan.Action) error {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	r.mu.Lock()
	if r.attempts == nil {
		r.attempts = map[string]int{}
	}
	r.attempts[string(a.Address)]++
	attempt := r.attempts[string(a.Address)]
	if attempt == 1 {
		r.started = append(r.started, string(a.Address))
	}
	r.mu.Unlock()
	var err error
	if r.hook != nil {
		err = r.hook(ctx, a, attempt)
	}
	r.mu.Lock()
	r.finished = append(r.finished, string(a.Address))
	r.mu.Unlock()
	return err
}

// events collects events, safe for concurrent use.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) Event(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) phases(addr string) []Phase {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Phase
	for _, ev := range e.all {
		if ev.Address == addr {
			out = append(out, ev.Phase)
		}
	}
	return out
}

func act(addr string, kind plan.ActionKind, deps ...string) *plan.Action {
	a := &plan.Action{Address: plan.Address(addr), Kind: kind}
	for _, d := range deps {
		a.DependsOn = append(a.DependsOn, plan.Address(d))
	}
	return a
}

func fast(o Options) Options {
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	return o
}

// The overlap tests below run in a synctest bubble: their sleeps take no real time and every goroutine
// moves in lockstep, so what overlaps is exact whatever the machine's load.

func TestRunOrderRespectsDependencies(t *testing.T) {
	synctest.Test(t, testRunOrderRespectsDependencies)
}

func testRunOrderRespectsDependencies(t *testing.T) {
	p := &plan.Plan{Actions: []*plan.Action{
		act("environment.dev", plan.Create),
		act("environment.prod", plan.Update),
		act("app.a", plan.Create, "environment.dev"),
		act("app.b", plan.Update, "environment.dev"),
		act("app.c", plan.Start, "environment.prod"),
		act("app.old", plan.Delete),
		act("environment.gone", plan.Delete, "app.old"),
	}}
	rec := &recorder{hook: func(ctx context.Context, a plan.Action, _ int) error {
		time.Sleep(time.Millisecond)
		return nil
	}}
	res := Run(t.Context(), p, rec, fast(Options{}), nil)
	assert.True(t, res.OK())
	assert.Len(t, res.Succeeded, 7)
	for _, a := range p.Actions {
		for _, d := range a.DependsOn {
			assert.Less(t, slices.Index(rec.finished, string(d)), slices.Index(rec.started, string(a.Address)),
				"%s started before %s finished", a.Address, d)
		}
	}
	assert.Equal(t, []string{"environment.dev", "environment.prod", "app.a", "app.b", "app.c", "app.old", "environment.gone"}, res.Succeeded,
		"results are in plan order")
}

func TestRunParallelismBound(t *testing.T) {
	tests := []struct {
		name        string
		parallelism int
		want        int32
	}{
		{"one at a time", 1, 1},
		{"three", 3, 3},
		{"default", 0, DefaultParallelism},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var acts []*plan.Action
				for i := range 24 {
					acts = append(acts, act(fmt.Sprintf("app.a%02d", i), plan.Create))
				}
				rec := &recorder{hook: func(context.Context, plan.Action, int) error {
					time.Sleep(5 * time.Millisecond)
					return nil
				}}
				res := Run(t.Context(), &plan.Plan{Actions: acts}, rec, fast(Options{Parallelism: tt.parallelism}), nil)
				require.Len(t, res.Succeeded, 24)
				assert.Equal(t, tt.want, rec.peak.Load(), "independent actions run in parallel, up to the bound and no more")
			})
		})
	}
}

func TestRunFailureSkipsDependentsOnly(t *testing.T) {
	p := &plan.Plan{Actions: []*plan.Action{
		act("environment.a", plan.Create),
		act("environment.b", plan.Create),
		act("app.x", plan.Create, "environment.a"),
		act("app.y", plan.Create, "environment.b"),
		act("app.z", plan.Create, "app.x"),
	}}
	boom := errors.New("provider exploded")
	rec := &recorder{hook: func(_ context.Context, a plan.Action, _ int) error {
		if a.Address == "environment.a" {
			return boom
		}
		return nil
	}}
	ev := &events{}
	res := Run(t.Context(), p, rec, fast(Options{}), ev)
	assert.Equal(t, []string{"environment.a"}, res.Failed)
	assert.Equal(t, []string{"app.x", "app.z"}, res.Skipped)
	assert.Equal(t, []string{"environment.b", "app.y"}, res.Succeeded)
	assert.False(t, res.Interrupted)
	assert.Equal(t, 1, rec.attempts["environment.a"], "a permanent error is not retried")
	assert.Equal(t, []Phase{Skipped}, ev.phases("app.x"))
	for _, e := range ev.all {
		if e.Address == "environment.a" && e.Phase == Finished {
			assert.ErrorIs(t, e.Err, boom)
		}
		if e.Address == "app.z" {
			assert.Equal(t, "skipped: app.x did not run", e.Message)
		}
		if e.Address == "app.x" {
			assert.Equal(t, "skipped: environment.a failed", e.Message)
		}
	}
}

func TestRunRetries(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name       string
		failFirst  int
		err        error
		retries    int
		wantOK     bool
		wantTries  int
		wantRetrys int
	}{
		{"transient then success", 2, refused, 3, true, 3, 2},
		{"runtime 503 then success", 1, &api.Error{Status: 503}, 3, true, 2, 1},
		{"transient exhausted", 10, refused, 2, false, 3, 2},
		{"permanent", 10, &api.Error{Status: 409}, 3, false, 1, 0},
		{"no retries", 10, refused, -1, false, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{hook: func(_ context.Context, _ plan.Action, attempt int) error {
					if attempt <= tt.failFirst {
						return tt.err
					}
					return nil
				}}
				ev := &events{}
				start := time.Now()
				res := Run(t.Context(), &plan.Plan{Actions: []*plan.Action{act("app.a", plan.Create)}}, rec,
					Options{Retries: tt.retries}, ev)
				// The default backoff, doubling: 0.5s before the first retry, 1s before the second.
				var waited time.Duration
				for i := range tt.wantRetrys {
					waited += DefaultBackoff << i
				}
				assert.Equal(t, waited, time.Since(start), "retries wait the backoff, and nothing else")
				assert.Equal(t, tt.wantOK, res.OK())
				assert.Equal(t, tt.wantTries, rec.attempts["app.a"])
				retrying := 0
				for _, p := range ev.phases("app.a") {
					if p == Retrying {
						retrying++
					}
				}
				assert.Equal(t, tt.wantRetrys, retrying)
			})
		})
	}
}

func TestRunCancellationFinishesInFlight(t *testing.T) {
	synctest.Test(t, testRunCancellationFinishesInFlight)
}

func testRunCancellationFinishesInFlight(t *testing.T) {
	p := &plan.Plan{Actions: []*plan.Action{
		act("app.slow", plan.Create),
		act("app.after", plan.Create, "app.slow"),
		act("app.queued", plan.Create),
	}}
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	var sawCancel atomic.Bool
	rec := &recorder{hook: func(actx context.Context, a plan.Action, _ int) error {
		// Whichever action gets the only slot first is in flight when Ctrl-C comes.
		once.Do(cancel)
		time.Sleep(20 * time.Millisecond)
		sawCancel.Store(actx.Err() != nil)
		return nil
	}}
	ev := &events{}
	res := Run(ctx, p, rec, fast(Options{Parallelism: 1}), ev)
	assert.True(t, res.Interrupted)
	require.Len(t, rec.started, 1, "nothing starts after cancellation")
	assert.Equal(t, rec.started, res.Succeeded, "the action in flight finishes")
	assert.Len(t, res.Skipped, 2)
	assert.False(t, sawCancel.Load(), "the action in flight does not see the cancellation")
	for _, addr := range res.Skipped {
		assert.Equal(t, []Phase{Skipped}, ev.phases(addr))
	}
}

func TestRunSkipsNoOpsAndFailsBlocked(t *testing.T) {
	blocked := act("app.vault", plan.Delete)
	blocked.Blocked = "app vault is protected"
	p := &plan.Plan{Actions: []*plan.Action{
		act("environment.dev", plan.NoOp),
		act("app.a", plan.Create, "environment.dev"),
		act("app.b", plan.Unknown, "environment.dev"),
		blocked,
	}}
	rec := &recorder{}
	res := Run(t.Context(), p, rec, fast(Options{}), nil)
	assert.Equal(t, []string{"app.a"}, rec.started)
	assert.Equal(t, []string{"app.a"}, res.Succeeded)
	assert.Equal(t, []string{"app.vault"}, res.Failed)
}

func TestRunRecoversPanics(t *testing.T) {
	rec := &recorder{hook: func(context.Context, plan.Action, int) error { panic("boom") }}
	res := Run(t.Context(), &plan.Plan{Actions: []*plan.Action{act("app.a", plan.Create), act("app.b", plan.Create, "app.a")}}, rec, fast(Options{}), nil)
	assert.Equal(t, []string{"app.a"}, res.Failed)
	assert.Equal(t, []string{"app.b"}, res.Skipped)
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", fmt.Errorf("put: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{"reset", syscall.ECONNRESET, true},
		{"deadline", context.DeadlineExceeded, true},
		{"cancelled", context.Canceled, false},
		{"502", &api.Error{Status: 502}, true},
		{"500", &api.Error{Status: 500}, true},
		{"404", &api.Error{Status: 404}, false},
		{"409", &api.Error{Status: 409}, false},
		{"marked", fmt.Errorf("runtime starting: %w", ErrTransient), true},
		{"other", errors.New("invalid spec"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, IsTransient(tt.err)) })
	}
}
