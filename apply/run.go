package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
)

// Performer does one action of a plan. It must be safe for concurrent use and idempotent: performing an
// action that is already done succeeds.
type Performer interface {
	Perform(ctx context.Context, a plan.Action) error
}

// PerformerFunc adapts a function to a Performer.
type PerformerFunc func(ctx context.Context, a plan.Action) error

// Perform calls f.
func (f PerformerFunc) Perform(ctx context.Context, a plan.Action) error { return f(ctx, a) }

// Phase is the step of an action an Event reports.
type Phase int

// The phases.
const (
	// Started: the action's first attempt begins.
	Started Phase = iota
	// Finished: the action ended; Err says whether it failed.
	Finished
	// Retrying: an attempt failed with a transient error (Err) and attempt number Attempt comes next.
	Retrying
	// Skipped: the action was not performed, because a dependency did not succeed or apply was interrupted.
	Skipped
)

func (p Phase) String() string {
	switch p {
	case Started:
		return "started"
	case Finished:
		return "finished"
	case Retrying:
		return "retrying"
	case Skipped:
		return "skipped"
	default:
		return fmt.Sprintf("Phase(%d)", int(p))
	}
}

// Event is one step of one action.
type Event struct {
	Address string
	Kind    plan.ActionKind
	Phase   Phase
	// Err is the failure of a Finished action, or the transient error a Retrying one met.
	Err error
	// Duration is, for Finished, how long the action took (all attempts).
	Duration time.Duration
	// Attempt counts from 1.
	Attempt int
	// Message says why an action was skipped.
	Message string
	// NotStarted marks a Skipped action that was not started because the run was interrupted; a
	// renderer may sum these up rather than list each.
	NotStarted bool
}

// Sink receives events. Run calls it from many goroutines at once: it must be safe for concurrent use.
type Sink interface {
	Event(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Event calls f.
func (f SinkFunc) Event(e Event) { f(e) }

// Defaults of Options.
const (
	DefaultParallelism   = 10
	DefaultRetries       = 3
	DefaultBackoff       = 500 * time.Millisecond
	DefaultActionTimeout = 10 * time.Minute
	maxBackoff           = 30 * time.Second
)

// Options bound how Run executes a plan. Zero values take the defaults.
type Options struct {
	// Parallelism bounds how many actions run at once (default 10).
	Parallelism int
	// Retries is how many times a transient failure is retried (default 3; negative means none).
	Retries int
	// Backoff is the wait before the first retry; it doubles with each retry, up to 30s (default 0.5s).
	Backoff time.Duration
	// ActionTimeout bounds one action, all attempts included (default 10m). It also bounds how long an
	// action in flight may go on after Run's context is cancelled.
	ActionTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = DefaultActionTimeout
	}
	return o
}

// Result says how each action that changes something ended, by address, in plan order. Actions that
// change nothing (no-op, unknown) appear in none of the lists.
type Result struct {
	Succeeded, Failed, Skipped []string
	// NotStarted are the Skipped actions that were not started because the run was interrupted.
	NotStarted []string
	// Interrupted is true when the context was cancelled before every action had started.
	Interrupted bool
}

// OK reports whether every action succeeded and nothing was interrupted.
func (r Result) OK() bool { return len(r.Failed) == 0 && len(r.Skipped) == 0 && !r.Interrupted }

type outcome int

const (
	pending outcome = iota
	succeeded
	failed
	skipped
	notPerformed // no-op and unknown actions: done, but nothing was performed
)

type node struct {
	a       *plan.Action
	deps    []*node
	done    chan struct{}
	outcome outcome
	// interrupted marks a node skipped because the context was cancelled.
	interrupted bool
}

// Run performs the plan's actions, each after the actions it depends on, at most opts.Parallelism at a
// time, and reports every step to sink (which may be nil).
//
// A failed action's dependents are skipped, transitively; actions that do not depend on it carry on.
// Transient errors (see IsTransient) are retried with exponential backoff. When ctx is cancelled no new
// action starts, and the actions in flight finish under their own timeout (Options.ActionTimeout).
// No-op and unknown actions are not performed. A blocked action is never performed: it fails.
func Run(ctx context.Context, p *plan.Plan, perf Performer, opts Options, sink Sink) Result {
	opts = opts.withDefaults()
	if sink == nil {
		sink = SinkFunc(func(Event) {})
	}
	nodes := make([]*node, len(p.Actions))
	by := map[plan.Address]*node{}
	for i, a := range p.Actions {
		nodes[i] = &node{a: a, done: make(chan struct{})}
		by[a.Address] = nodes[i]
	}
	for _, n := range nodes {
		for _, d := range n.a.DependsOn {
			if dn := by[d]; dn != nil && dn != n {
				n.deps = append(n.deps, dn)
			}
		}
	}

	var g errgroup.Group
	g.SetLimit(opts.Parallelism)
	var launchers sync.WaitGroup
	for _, n := range nodes {
		launchers.Go(func() {
			for _, d := range n.deps {
				<-d.done
			}
			if msg := blockedBy(n); msg != "" {
				n.outcome = skipped
				sink.Event(Event{Address: string(n.a.Address), Kind: n.a.Kind, Phase: Skipped, Message: msg})
				close(n.done)
				return
			}
			if !n.a.Kind.Changes() {
				n.outcome = notPerformed
				close(n.done)
				return
			}
			g.Go(func() error {
				defer close(n.done)
				if ctx.Err() != nil {
					n.outcome, n.interrupted = skipped, true
					sink.Event(Event{Address: string(n.a.Address), Kind: n.a.Kind, Phase: Skipped, Message: "not started: interrupted", NotStarted: true})
					return nil
				}
				n.outcome = perform(ctx, n.a, perf, opts, sink)
				return nil
			})
		})
	}
	launchers.Wait()
	_ = g.Wait()

	var r Result
	for _, n := range nodes {
		addr := string(n.a.Address)
		switch n.outcome {
		case succeeded:
			r.Succeeded = append(r.Succeeded, addr)
		case failed:
			r.Failed = append(r.Failed, addr)
		case skipped:
			r.Skipped = append(r.Skipped, addr)
			if n.interrupted {
				r.Interrupted = true
				r.NotStarted = append(r.NotStarted, addr)
			}
		}
	}
	return r
}

// blockedBy says why n cannot run because of its dependencies, or "" when it can. Its dependencies are done.
func blockedBy(n *node) string {
	for _, d := range n.deps {
		switch d.outcome {
		case failed:
			return fmt.Sprintf("skipped: %s failed", d.a.Address)
		case skipped:
			if d.interrupted {
				n.interrupted = true
				return "not started: interrupted"
			}
			return fmt.Sprintf("skipped: %s did not run", d.a.Address)
		}
	}
	return ""
}

// perform runs one action with retries and reports it.
func perform(ctx context.Context, a *plan.Action, perf Performer, opts Options, sink Sink) outcome {
	addr := string(a.Address)
	start := time.Now()
	sink.Event(Event{Address: addr, Kind: a.Kind, Phase: Started, Attempt: 1})
	finish := func(err error, attempt int) outcome {
		sink.Event(Event{Address: addr, Kind: a.Kind, Phase: Finished, Err: err, Duration: time.Since(start), Attempt: attempt})
		if err != nil {
			return failed
		}
		return succeeded
	}
	if a.Blocked != "" {
		return finish(fmt.Errorf("%s: %w: %s", a.Address, plan.ErrBlocked, a.Blocked), 1)
	}
	// In-flight actions outlive a cancelled ctx: Ctrl-C stops new work, not this one.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ActionTimeout)
	defer cancel()
	wait := opts.Backoff
	for attempt := 1; ; attempt++ {
		err := callPerform(actx, perf, *a)
		if err == nil {
			return finish(nil, attempt)
		}
		if attempt > opts.Retries || !IsTransient(err) || ctx.Err() != nil || actx.Err() != nil {
			return finish(err, attempt)
		}
		sink.Event(Event{Address: addr, Kind: a.Kind, Phase: Retrying, Err: err, Attempt: attempt + 1,
			Message: fmt.Sprintf("retrying in %s", wait)})
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return finish(err, attempt)
		case <-actx.Done():
			t.Stop()
			return finish(err, attempt)
		}
		wait = min(wait*2, maxBackoff)
	}
}

// callPerform turns a performer's panic into that action's error, so one broken action cannot take the
// others down.
func callPerform(ctx context.Context, perf Performer, a plan.Action) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v", a.Address, r)
		}
	}()
	return perf.Perform(ctx, a)
}

// ErrTransient marks an error worth retrying; wrap it (fmt.Errorf("...: %w", ErrTransient)) to say so.
var ErrTransient = errors.New("transient")

// IsTransient reports whether err is worth retrying: a refused or reset connection, a network timeout, a
// connection closed early, a request that timed out, a runtime answer of 5xx, or an error wrapping
// ErrTransient. Cancellation is not transient; Run also stops retrying once the action's own time is up.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.Is(err, ErrTransient) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return api.StatusOf(err) >= 500
}
