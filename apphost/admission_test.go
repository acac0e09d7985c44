package apphost

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// schedRun records the order in which a scheduler admits requests of named apps; each admitted request
// holds its turn for its cost (in the fake time of a synctest bubble).
type schedRun struct {
	t     *testing.T
	s     *scheduler
	mu    sync.Mutex
	order []string
	errs  map[string][]error
	apps  map[string]*turnQueue
	wg    sync.WaitGroup
}

func newSchedRun(t *testing.T, limit, depth int, timeout time.Duration) *schedRun {
	return &schedRun{t: t, s: newScheduler(limit, depth, timeout), errs: map[string][]error{}, apps: map[string]*turnQueue{}}
}

func (r *schedRun) app(name string) *turnQueue {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps[name] == nil {
		r.apps[name] = &turnQueue{}
	}
	return r.apps[name]
}

// send starts n requests of app, each costing cost once admitted, and waits until each is admitted
// or queued, so that the order of send calls is the order of arrival.
func (r *schedRun) send(ctx context.Context, app string, n int, cost time.Duration) {
	q := r.app(app)
	for range n {
		r.wg.Go(func() {
			_, err := r.s.admit(ctx, q)
			if err != nil {
				r.mu.Lock()
				r.errs[app] = append(r.errs[app], err)
				r.mu.Unlock()
				return
			}
			r.mu.Lock()
			r.order = append(r.order, app)
			r.mu.Unlock()
			time.Sleep(cost)
			r.s.done(q)
		})
		synctest.Wait()
	}
}

func (r *schedRun) admitted() string {
	r.wg.Wait()
	return strings.Join(r.order, " ")
}

func TestSchedulerOrder(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		run   func(r *schedRun)
		want  string
	}{
		{
			name:  "a quiet app's waiting request runs before a busy app's next one",
			limit: 1,
			run: func(r *schedRun) {
				r.send(r.t.Context(), "a", 5, time.Millisecond)
				r.send(r.t.Context(), "b", 1, time.Millisecond)
			},
			// a's first runs at once; b's one request goes before a's four others.
			want: "a b a a a a",
		},
		{
			name:  "two backlogged apps take turns whatever their number of requests",
			limit: 1,
			run: func(r *schedRun) {
				r.send(r.t.Context(), "a", 6, time.Millisecond)
				r.send(r.t.Context(), "b", 3, time.Millisecond)
			},
			want: "a b a b a b a a a",
		},
		{
			name:  "shares are by handler time: a's requests cost 3 times b's, so b runs 3 for each of a's",
			limit: 1,
			run: func(r *schedRun) {
				// One warm-up request each, so the scheduler has measured both apps' costs.
				r.send(r.t.Context(), "a", 1, 3*time.Millisecond)
				r.send(r.t.Context(), "b", 1, time.Millisecond)
				r.wg.Wait()
				r.order = nil
				r.send(r.t.Context(), "a", 4, 3*time.Millisecond)
				r.send(r.t.Context(), "b", 12, time.Millisecond)
			},
			want: "a b b b a b b b a b b b a b b b",
		},
		{
			name:  "one handler per app: an app's second request waits even with turns free",
			limit: 4,
			run: func(r *schedRun) {
				r.send(r.t.Context(), "a", 3, time.Millisecond)
				r.send(r.t.Context(), "b", 1, time.Millisecond)
			},
			want: "a b a a",
		},
		{
			name:  "an app that was idle banks no credit for it",
			limit: 1,
			run: func(r *schedRun) {
				r.send(r.t.Context(), "a", 20, time.Millisecond)
				r.wg.Wait()
				r.order = nil
				// a has used 20 ms, c nothing; were c credited with that, it would run 20 in a row.
				r.send(r.t.Context(), "a", 4, time.Millisecond)
				r.send(r.t.Context(), "c", 4, time.Millisecond)
			},
			want: "a c a c a c a c",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newSchedRun(t, tc.limit, 100, time.Minute)
				tc.run(r)
				assert.Equal(t, tc.want, r.admitted())
				assert.Empty(t, r.errs)
				assert.Zero(t, r.s.running, "every turn was given back")
				assert.Empty(t, r.s.active)
				assert.Empty(t, r.s.ready)
			})
		})
	}
}

func TestSchedulerRefusals(t *testing.T) {
	t.Run("a full queue refuses at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newSchedRun(t, 1, 2, time.Minute)
			r.send(t.Context(), "a", 4, time.Millisecond) // one runs, two wait, the fourth is refused
			assert.Equal(t, "a a a", r.admitted())
			assert.Equal(t, []error{errQueueFull}, r.errs["a"])
		})
	})
	t.Run("a wait past the timeout is refused, after exactly the timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newSchedRun(t, 1, 10, 100*time.Millisecond)
			q := r.app("a")
			_, err := r.s.admit(t.Context(), q) // holds a's one turn
			require.NoError(t, err)
			start := time.Now()
			waited, err := r.s.admit(t.Context(), q)
			assert.ErrorIs(t, err, errQueueTimeout)
			assert.Equal(t, 100*time.Millisecond, waited)
			assert.Equal(t, 100*time.Millisecond, time.Since(start))
			assert.Zero(t, r.s.queued(q), "the waiter left the queue")
			r.s.done(q)
			assert.Zero(t, r.s.running)
		})
	})
	t.Run("a request whose client went away leaves the queue and takes no turn", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newSchedRun(t, 1, 10, time.Minute)
			ctx, cancel := context.WithCancel(t.Context())
			r.send(t.Context(), "a", 1, 50*time.Millisecond)
			r.send(ctx, "b", 1, time.Millisecond)
			cancel()
			r.send(t.Context(), "c", 1, time.Millisecond)
			assert.Equal(t, "a c", r.admitted())
			assert.Equal(t, []error{context.Canceled}, r.errs["b"])
			assert.Zero(t, r.s.running)
			assert.Empty(t, r.s.ready)
		})
	})
}

// A handler that waits on something other than the CPU (a slow database) keeps its turn only for
// overtime; then the next app runs beside it, and the stuck app's own requests still wait their turn.
func TestSchedulerOvertimeFreesTheTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSchedRun(t, 1, 10, time.Minute)
		start := time.Now()
		r.send(t.Context(), "stuck", 2, time.Second)
		r.send(t.Context(), "quick", 1, time.Millisecond)
		var quickAt time.Duration
		require.Eventually(t, func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.order) >= 2 {
				quickAt = time.Since(start)
				return true
			}
			return false
		}, time.Minute, time.Millisecond)
		assert.LessOrEqual(t, quickAt, 2*overtime, "the quick app ran once the stuck handler was overdue")
		assert.Equal(t, "stuck quick stuck", r.admitted())
		assert.Zero(t, r.s.running)
	})
}

// A turn freed while requests wait is handed out only after the network was polled (kick, then
// afterPoll), so a quiet app's request that arrives in between competes for it: here b's one request
// runs before a's second, which was already waiting when a's first finished. Handed out at once (as
// when the announcement cannot be made), the turn would go to a's second.
// pollRun is a schedRun whose scheduler announces freed turns (pollBeforeDispatch) to a dispatcher
// that hands them out when told (poll), and counts the announcements.
type pollRun struct {
	*schedRun
	kicks chan struct{}
	n     int // announcements
}

func newPollRun(t *testing.T, announce bool) *pollRun {
	p := &pollRun{schedRun: newSchedRun(t, 1, 10, time.Minute), kicks: make(chan struct{}, 1)}
	p.s.kick = func() bool {
		p.n++
		if announce {
			p.kicks <- struct{}{}
		}
		return announce
	}
	return p
}

// poll hands out the announced turn, as the dispatcher does after the network was polled.
func (p *pollRun) poll() {
	select {
	case <-p.kicks:
		p.s.afterPoll()
	default:
		p.t.Fatal("no turn was announced")
	}
	synctest.Wait()
}

// dispatch hands out every turn announced from now on at once, until stop is called.
func (p *pollRun) dispatch() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-p.kicks:
				p.s.afterPoll()
			case <-done:
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

const (
	// Costs of the requests below: longer than pollInterval, well under quietPollInterval, so that
	// only the apps seen lately decide whether a turn waits for a poll.
	cheap = 60 * time.Microsecond
	dear  = 100 * time.Microsecond
)

// A freed turn waits for the network poll while an app that asked lately, and has used less, has
// nothing waiting: its next request may be on its way. Handed out at once, the turn would go to the
// busy app's next request.
func TestSchedulerPollBeforeDispatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		announce bool
		want     string
	}{
		{"announced: the freed turn waits for the poll", true, "b a b a a"},
		{"not announced: the freed turn is handed out at once", false, "b a a b a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPollRun(t, tc.announce)
				p.send(t.Context(), "b", 1, cheap)
				time.Sleep(cheap) // b has used less than a will have, and has nothing waiting
				p.send(t.Context(), "a", 3, dear)
				time.Sleep(dear) // a's first is done; its turn is announced, not given
				synctest.Wait()
				p.send(t.Context(), "b", 1, cheap) // arrives before the poll: it goes first
				if tc.announce {
					p.poll()
				}
				stop := p.dispatch()
				assert.Equal(t, tc.want, p.admitted())
				stop()
				assert.Empty(t, p.errs)
				// Once more when a's second is done: b, which has used less, has nothing waiting.
				assert.Equal(t, 2, p.n)
				assert.Zero(t, p.s.running)
				assert.False(t, p.s.kicked)
			})
		})
	}
}

// No turn waits for a poll when none could change who goes next: while every app seen lately has a
// request waiting, or has used more than the app whose request is first in line.
func TestSchedulerPollsOnlyWhenAnAppCouldComeFirst(t *testing.T) {
	t.Run("every app has a request waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newPollRun(t, true)
			p.send(t.Context(), "a", 3, dear)
			p.send(t.Context(), "b", 3, dear)
			assert.Equal(t, "a b a b a b", p.admitted())
			assert.Zero(t, p.n, "no poll")
		})
	})
	t.Run("the app with nothing waiting has used more", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newPollRun(t, true)
			p.send(t.Context(), "b", 1, 4*dear)
			time.Sleep(4 * dear)
			p.send(t.Context(), "a", 3, dear)
			assert.Equal(t, "b a a a", p.admitted())
			assert.Zero(t, p.n, "b would not come before a: no poll")
		})
	})
}

// With turns to spare, an app's second request waits for its first (one handler per app) and asks
// for no poll: there is no one waiting to hand a turn to.
func TestSchedulerSecondRequestOfARunningApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPollRun(t, true)
		p.s.limit = 3
		p.send(t.Context(), "b", 1, 3*dear)
		p.send(t.Context(), "a", 1, 3*dear)
		time.Sleep(cheap) // past pollInterval, both still running
		p.send(t.Context(), "a", 1, dear)
		assert.Equal(t, "b a a", p.admitted())
		assert.Zero(t, p.n)
		assert.Empty(t, p.errs)
	})
}

// An app alone on the runtime runs its requests at once. Once two apps ask for turns within
// contendWindow of each other, a request that finds a turn free waits for the network poll too while
// the other app, which has used less, may send one, until contendHold passes without contention.
func TestSchedulerContention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPollRun(t, true)
		admitted := func() int {
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.order)
		}

		p.send(t.Context(), "b", 1, dear)
		assert.Equal(t, 1, admitted(), "alone: at once")
		p.wg.Wait()
		p.send(t.Context(), "a", 1, cheap) // within contendWindow of b
		assert.Equal(t, 2, admitted(), "a has used less than b: at once")
		p.wg.Wait()
		p.send(t.Context(), "b", 1, dear)
		assert.Equal(t, 2, admitted(), "contended: b waits for the poll although the turn is free")
		assert.Equal(t, 1, p.n)
		p.poll()
		assert.Equal(t, 3, admitted())
		p.wg.Wait()

		time.Sleep(contendHold)
		p.send(t.Context(), "b", 1, dear)
		assert.Equal(t, 4, admitted(), "contention is over: at once again")
		assert.Equal(t, "b a b b", p.admitted())
		assert.Equal(t, 1, p.n)
		assert.Zero(t, p.s.running)
	})
}

// BenchmarkAdmitUncontended is the scheduler's cost to a request when nothing waits.
func BenchmarkAdmitUncontended(b *testing.B) {
	s := newScheduler(4, 10, time.Second)
	q := &turnQueue{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.admit(context.Background(), q); err != nil {
			b.Fatal(err)
		}
		s.done(q)
	}
}
