package apphost

import (
	"container/heap"
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"time"
)

// Fair admission: an app's share of a busy runtime does not depend on how many connections it opens.
//
// Every request of app traffic that does an app's work (its database, its OpenAPI document) asks the
// scheduler for a turn once its input is read, and gives the turn back as soon as that work is done,
// before its answer is written to the client. The scheduler
//
//   - lets at most limit handlers run at once over all apps (default: the CPUs the process may use, as
//     many as can be on a CPU at once, so that the scheduler, not the order of Go's run queue, decides
//     who runs next), and at most one per app: an app has one database connection, so a second handler would only wait for it while
//     holding a turn another app could use;
//   - queues what cannot run yet in one FIFO queue per app and, whenever a turn frees, gives it to the
//     waiting app that has used the least handler time (start-time fair queueing: each app carries a
//     virtual time that grows by the time its handlers ran; an app that had nothing waiting comes back
//     at the clock of the last admission, so being idle banks no credit). With equal costs this is
//     round robin; with measured costs it is the equivalent of deficit round robin, so an app with
//     heavy requests does not get more of the CPU by them than an app with light ones;
//   - in a running runtime, hands out a turn freed while requests wait only after the network was
//     polled (pollBeforeDispatch), so a quiet app's request that arrived meanwhile competes for it;
//     while apps contend, a request that finds a turn free waits for that poll too (arrive), which
//     is what makes the order fair when the Go runtime has a single P and the handlers never block.
//     A turn waits for a poll only when the poll could change who goes next: while an app seen
//     lately, that has used less than the first one waiting, has nothing waiting (couldComeFirst).
//     A request that waits costs more than one that runs at once (it parks, and net/http's
//     background read of its connection then reads and parks too);
//   - bounds each app's queue (depth) and each wait (timeout); past either the request is refused,
//     and the caller answers 503 with Retry-After;
//   - takes the turn back from a handler that has run longer than overtime (a slow database, a held
//     lock) and gives it to the next app, so a stuck app never holds the runtime's turns.
//
// The scheduler knows nothing of HTTP. Requests that are not an app's traffic (management, health,
// metrics) never pass through it and so never wait behind apps.

// Reasons a request is not admitted.
var (
	errQueueFull    = errors.New("queue full")
	errQueueTimeout = errors.New("queue wait timed out")
)

// Defaults of the scheduler.
const (
	defaultQueueDepth   = 128
	defaultQueueTimeout = 5 * time.Second
	// overtime is how long a handler keeps its turn before the scheduler counts it as waiting on
	// something other than the CPU and lets another app run beside it.
	overtime = 10 * time.Millisecond
	// initialCost is the estimate of a request's handler time before one of the app's was measured.
	initialCost = int64(100 * time.Microsecond)
	// Requests of two apps that arrive within contendWindow make the runtime contended for
	// contendHold (scheduler.arrive).
	contendWindow = 10 * time.Millisecond
	contendHold   = time.Second
	// pollInterval bounds how often a freed turn waits for a network poll (pollBeforeDispatch). A
	// poll costs a pipe write, a read and a few goroutine switches, several microseconds. With
	// requests answered from memory in a few microseconds, a poll before every turn left the quiet
	// app of BenchmarkFairShare 31 % of its throughput under the flood; at most one per 50 µs, 43 %.
	// A quiet app's request that arrives just after a poll waits at most this long to be seen.
	pollInterval = 50 * time.Microsecond
	// A poll is needed only while an app that asked for a turn within contendWindow has no request
	// waiting: its next one may be on its way. While every such app has one waiting, the fair order
	// is known without a poll, and one is made only once per quietPollInterval, for an app that was
	// not seen lately. Under BenchmarkFairShare's flood most polls were of that needless kind.
	quietPollInterval = time.Millisecond
	// maxRecent bounds the apps the scheduler remembers as having asked lately (scheduler.recent);
	// past it, every freed turn may wait for a poll, as if one of them had nothing waiting.
	maxRecent = 64
)

// defaultMaxRunning is the number of handlers that run at once over all apps unless configured: the
// CPUs the process may use.
func defaultMaxRunning() int { return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0))) }

// scheduler admits requests of all apps to run, in fair order. Its zero value is not usable; see
// newScheduler.
type scheduler struct {
	limit   int           // handlers running at once, over all apps
	depth   int           // waiting requests per app
	timeout time.Duration // longest wait
	epoch   time.Time     // virtual and run times are nanoseconds since epoch (monotonic)

	mu      sync.Mutex
	running int          // handlers holding a turn (those past overtime no longer count)
	vclock  int64        // virtual time of the last admission
	ready   readyHeap    // apps with a waiting request and no running handler, by virtual time
	active  []*turnQueue // apps with a running handler
	// watchdog, while armed, fires when the oldest counted handler reaches overtime (see watch).
	watchdog *time.Timer
	armed    bool

	waiters sync.Pool // of *waiter, so that waiting allocates nothing in the steady state

	// kick, when set, announces a turn freed while requests wait instead of handing it out at once;
	// afterPoll hands it out (see pollBeforeDispatch). kicked says an announcement is on its way.
	// kick returns false when it could not announce.
	kick   func() bool
	kicked bool
	// The last app that asked for a turn and when, and until when apps count as contending (arrive).
	lastArrival    *turnQueue
	lastArrivalAt  int64
	contendedUntil int64
	// recent are the apps that asked for a turn within contendWindow, or a little longer: they are
	// forgotten when next looked at (arrive, couldComeFirst). When more than maxRecent asked, recent
	// is emptied and tooRecent set until no app asked for contendWindow.
	recent    []*turnQueue
	tooRecent bool
	// polledAt is when announced turns were last handed out: within pollInterval of it, a freed
	// turn is handed out at once, since the network was polled a moment ago.
	polledAt int64
}

func newScheduler(limit, depth int, timeout time.Duration) *scheduler {
	if limit <= 0 {
		limit = defaultMaxRunning()
	}
	if depth <= 0 {
		depth = defaultQueueDepth
	}
	if timeout <= 0 {
		timeout = defaultQueueTimeout
	}
	s := &scheduler{limit: limit, depth: depth, timeout: timeout, epoch: time.Now()}
	s.waiters.New = func() any { return &waiter{admitted: make(chan struct{}, 1)} }
	return s
}

// turnQueue is one app's place in the scheduler. Its zero value is an app that never asked; every
// field is guarded by the scheduler's mu.
type turnQueue struct {
	vt      int64     // virtual time: handler time charged so far, in ns
	est     int64     // estimated handler time of the app's next request, in ns (0: none measured)
	waiters []*waiter // FIFO
	heapIdx int       // index in scheduler.ready, plus one; 0 when not there

	running   bool  // a handler of the app holds (or held, if overdue) a turn
	overdue   bool  // that handler ran past overtime and no longer counts against limit
	startedAt int64 // when it was admitted, ns since epoch

	arrivedAt int64 // when it last asked for a turn, ns since epoch
	isRecent  bool  // it is in scheduler.recent
}

// waiter is one request waiting for a turn.
type waiter struct {
	admitted chan struct{} // receives once when the request is admitted
}

func (s *scheduler) now() int64 { return int64(time.Since(s.epoch)) }

// admit waits until the app of q may run a handler and returns how long it waited. Unless it returns
// an error, the caller must call done exactly once when the handler's work is over. It returns
// errQueueFull at once when the app already has depth requests waiting, errQueueTimeout after the
// scheduler's timeout, and ctx's error when ctx ends first.
func (s *scheduler) admit(ctx context.Context, q *turnQueue) (time.Duration, error) {
	s.mu.Lock()
	start := s.now()
	contended := s.arrive(q, start)
	if !contended && !q.running && len(q.waiters) == 0 && len(s.ready) == 0 && s.running < s.limit {
		s.start(q, start)
		s.mu.Unlock()
		return 0, nil
	}
	if len(q.waiters) >= s.depth {
		s.mu.Unlock()
		return 0, errQueueFull
	}
	w := s.waiters.Get().(*waiter)
	q.waiters = append(q.waiters, w)
	if !q.running && q.heapIdx == 0 {
		q.vt = max(q.vt, s.vclock) // an app that had nothing waiting banks no credit
		heap.Push(&s.ready, q)
	}
	var kick func() bool
	switch {
	case s.running >= s.limit:
	case (contended || s.kicked) && s.waitForPoll(start):
		// A free turn, but another app's request that would come first may be on its way: it is
		// read in the same poll as the announcement, and the turn goes to the app that has used
		// the least.
		if !s.kicked {
			s.kicked, kick = true, s.kick
		}
	default:
		s.dispatch(start)
	}
	s.watch(start)
	s.mu.Unlock()
	if kick != nil && !kick() {
		s.afterPoll()
	}

	select {
	case <-w.admitted: // admitted at once, in fair order among those waiting: no timer needed
		s.waiters.Put(w)
		return time.Duration(s.now() - start), nil
	default:
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case <-w.admitted:
		s.waiters.Put(w)
		return time.Duration(s.now() - start), nil
	case <-ctx.Done():
		return s.abandon(q, w, start, ctx.Err())
	case <-t.C:
		return s.abandon(q, w, start, errQueueTimeout)
	}
}

// abandon removes a waiter that gives up. If it was admitted meanwhile, its turn is given back.
func (s *scheduler) abandon(q *turnQueue, w *waiter, start int64, err error) (time.Duration, error) {
	s.mu.Lock()
	now := s.now()
	i := indexOf(q.waiters, w)
	if i >= 0 {
		q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
		if len(q.waiters) == 0 && q.heapIdx != 0 {
			heap.Remove(&s.ready, q.heapIdx-1)
		}
		s.mu.Unlock()
		s.waiters.Put(w)
		return time.Duration(now - start), err
	}
	s.mu.Unlock()
	<-w.admitted // admitted just now: the turn is ours, give it back unused
	s.waiters.Put(w)
	s.finish(q, false)
	return time.Duration(now - start), err
}

func indexOf(ws []*waiter, w *waiter) int {
	for i, x := range ws {
		if x == w {
			return i
		}
	}
	return -1
}

// done gives back the turn of q's running handler and charges the app for the time it ran.
func (s *scheduler) done(q *turnQueue) { s.finish(q, true) }

// finish gives back q's turn, charging the time since it was admitted when used.
func (s *scheduler) finish(q *turnQueue, used bool) {
	s.mu.Lock()
	now := s.now()
	var cost int64
	if used {
		cost = now - q.startedAt
	}
	// The estimate was charged at admission; correct it by what the handler really took, and let the
	// estimate follow the app's recent requests.
	q.vt += cost - q.estimate()
	q.est = (3*q.estimate() + cost) / 4
	if !q.overdue {
		s.running--
	}
	q.running, q.overdue = false, false
	for i, x := range s.active {
		if x == q {
			last := len(s.active) - 1
			s.active[i] = s.active[last]
			s.active[last] = nil
			s.active = s.active[:last]
			break
		}
	}
	if len(q.waiters) > 0 {
		q.vt = max(q.vt, s.vclock)
		heap.Push(&s.ready, q)
	}
	if kick := s.kick; kick != nil && s.waitForPoll(now) {
		first := !s.kicked
		s.kicked = true
		s.mu.Unlock()
		if first && !kick() {
			s.afterPoll()
		}
		return
	}
	s.dispatch(now)
	s.watch(now)
	s.mu.Unlock()
}

// arrive notes that q asks for a turn at now and reports whether apps are contending for the runtime:
// requests of two different apps arrived within contendWindow of each other, less than contendHold
// ago. Only then may a request that finds a turn free wait for a network poll before it runs (see
// pollBeforeDispatch); an app alone on the runtime runs its requests at once. The caller holds mu.
func (s *scheduler) arrive(q *turnQueue, now int64) bool {
	if s.kick == nil {
		return false
	}
	if s.lastArrival != nil && q != s.lastArrival && now-s.lastArrivalAt < int64(contendWindow) {
		s.contendedUntil = now + int64(contendHold)
	}
	s.lastArrival, s.lastArrivalAt = q, now
	q.arrivedAt = now
	if !q.isRecent && !s.tooRecent {
		if len(s.recent) >= maxRecent {
			for _, r := range s.recent {
				r.isRecent = false
			}
			clear(s.recent)
			s.recent = s.recent[:0]
			s.tooRecent = true
		} else {
			q.isRecent = true
			s.recent = append(s.recent, q)
		}
	}
	return now < s.contendedUntil
}

// waitForPoll reports whether a free turn should go out only after a network poll (see
// pollBeforeDispatch): when a poll is on its way, as long as a request it may bring could come first
// (couldComeFirst); otherwise when one is due (pollDue). With no app waiting (an app's next request
// waits for its running one), there is nothing to hand out either way. The caller holds mu.
func (s *scheduler) waitForPoll(now int64) bool {
	if len(s.ready) == 0 {
		return false
	}
	if s.kicked {
		return s.couldComeFirst(now)
	}
	return s.pollDue(now)
}

// pollDue reports whether a free turn should wait for a network poll at now: at most once per
// pollInterval, and only while a request of an app not yet waiting could come first
// (couldComeFirst), or once per quietPollInterval for apps not seen lately. The caller holds mu, and
// ready is not empty.
func (s *scheduler) pollDue(now int64) bool {
	since := now - s.polledAt
	if since < int64(pollInterval) {
		return false
	}
	return since >= int64(quietPollInterval) || s.couldComeFirst(now)
}

// couldComeFirst reports whether an app that asked for a turn lately but has nothing waiting or
// running would, were its next request read now, come before the first app waiting: its next request
// may be on its way. It forgets the apps that have not asked within contendWindow. The caller holds
// mu, and ready is not empty.
func (s *scheduler) couldComeFirst(now int64) bool {
	if s.tooRecent { // too many apps to tell
		if now-s.lastArrivalAt >= int64(contendWindow) {
			s.tooRecent = false
		}
		return true
	}
	first := s.ready[0].vt
	could := false
	kept := s.recent[:0]
	for _, q := range s.recent {
		if now-q.arrivedAt >= int64(contendWindow) {
			q.isRecent = false
			continue
		}
		kept = append(kept, q)
		// An app that had nothing waiting comes back at vclock (see admit).
		could = could || (!q.running && len(q.waiters) == 0 && max(q.vt, s.vclock) < first)
	}
	clear(s.recent[len(kept):])
	s.recent = kept
	return could
}

// afterPoll hands out the turns announced by kick.
func (s *scheduler) afterPoll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kicked = false
	now := s.now()
	s.polledAt = now
	s.dispatch(now)
	s.watch(now)
}

// pollBeforeDispatch makes the scheduler hand out a turn freed while requests wait only after the Go
// runtime has polled the network, so that a request of a quiet app that arrived meanwhile is read,
// parsed and queued before the choice is made. Handed out at once, the turn goes to a request already
// waiting (most often the busy app's), and a P that always has a goroutine to run polls the network
// only when nothing else is runnable or when the Go runtime's monitor gets to it, up to 10 ms later:
// the quiet app's requests then reach the scheduler too late to compete. The freed turn is announced
// by a byte on a pipe, so the dispatcher wakes from the network poller in the same batch as the
// connections that became readable, and it yields once so that their goroutines run first. It
// returns a function that stops the dispatcher.
func (s *scheduler) pollBeforeDispatch() (stop func(), err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.kick = func() bool { _, err := w.Write([]byte{0}); return err == nil }
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
			// The goroutines of the connections that became readable in the same poll are queued
			// behind this one: let them run (read, parse, ask for a turn) before the turn is given.
			runtime.Gosched()
			s.afterPoll()
		}
	}()
	return func() {
		s.mu.Lock()
		s.kick = nil
		s.mu.Unlock()
		s.afterPoll()
		_ = w.Close()
		<-done
		_ = r.Close()
	}, nil
}

func (q *turnQueue) estimate() int64 {
	if q.est <= 0 {
		return initialCost
	}
	return q.est
}

// start gives q a turn; the caller holds mu.
func (s *scheduler) start(q *turnQueue, now int64) {
	q.vt = max(q.vt, s.vclock)
	s.vclock = q.vt
	q.vt += q.estimate()
	q.running, q.overdue, q.startedAt = true, false, now
	s.running++
	s.active = append(s.active, q)
}

// dispatch hands free turns to waiting apps, least virtual time first; the caller holds mu.
func (s *scheduler) dispatch(now int64) {
	for s.running < s.limit && len(s.ready) > 0 {
		q := heap.Pop(&s.ready).(*turnQueue)
		w := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		if len(q.waiters) == 0 {
			q.waiters = nil
		}
		s.start(q, now)
		w.admitted <- struct{}{}
	}
}

// watch arms the watchdog when requests wait while every turn is taken: it fires when the oldest
// counted handler reaches overtime. The caller holds mu.
func (s *scheduler) watch(now int64) {
	if s.armed || len(s.ready) == 0 || s.running < s.limit {
		return
	}
	oldest := now
	for _, q := range s.active {
		if !q.overdue {
			oldest = min(oldest, q.startedAt)
		}
	}
	d := time.Duration(oldest + int64(overtime) - now)
	if s.watchdog == nil {
		s.watchdog = time.AfterFunc(d, s.overdue)
	} else {
		s.watchdog.Reset(d)
	}
	s.armed = true
}

// overdue stops counting handlers that have run past overtime and gives their turns to waiting apps.
func (s *scheduler) overdue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	now := s.now()
	for _, q := range s.active {
		if !q.overdue && now-q.startedAt >= int64(overtime) {
			q.overdue = true
			s.running--
		}
	}
	s.dispatch(now)
	s.watch(now)
}

// queued is the number of q's requests waiting for a turn.
func (s *scheduler) queued(q *turnQueue) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(q.waiters)
}

// readyHeap orders apps by virtual time (container/heap).
type readyHeap []*turnQueue

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return h[i].vt < h[j].vt }
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i+1, j+1
}

func (h *readyHeap) Push(x any) {
	q := x.(*turnQueue)
	q.heapIdx = len(*h) + 1
	*h = append(*h, q)
}

func (h *readyHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	q.heapIdx = 0
	return q
}
