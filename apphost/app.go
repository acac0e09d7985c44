package apphost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/registry"
	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

// errUnavailable means the app cannot take a request now (stopping, stopped, being deleted).
var errUnavailable = errors.New("app is not running")

// appState is an immutable snapshot of what a request needs to know about its app. Lifecycle
// operations publish a new one; requests read it without locking.
type appState struct {
	status string
	err    string
	entry  registry.Entry
	cols   map[string]*store.Collection // model.Collections
	model  *store.Model                 // shared with apps of the same collections
	keys   []string                     // salted hashes of the app's API keys
	dial   store.Dialect

	// maxInFlight is the accepted spec's limits.maxInFlight (0: no limit) and limiter its
	// limits.requestsPerSecond (nil: no limit; kept across specs that do not change it).
	maxInFlight int64
	limiter     *rate.Limiter
	// refusals are the whole answers to a refused request, one per cause, encoded once per spec so
	// that turning a request away encodes and allocates nothing while a flood lasts.
	refusals [numRefusals]refusal
}

// refusalCause is why a request was turned away before its handler ran.
type refusalCause int

const (
	refusedInFlight     refusalCause = iota // limits.maxInFlight reached
	refusedRate                             // limits.requestsPerSecond exceeded
	refusedQueueFull                        // the app's queue for a turn is full
	refusedQueueTimeout                     // the wait for a turn took too long
	numRefusals
)

// String is the cause as metrics label it.
func (c refusalCause) String() string {
	return [...]string{"max_in_flight", "rate", "queue_full", "queue_timeout"}[c]
}

// refusal is the pre-encoded answer to a refused request.
type refusal struct {
	status int
	body   []byte
	length []string // Content-Length
	logMsg string
}

func newRefusal(status int, msg, logMsg string) refusal {
	b := errorBody(api.CodeLimitExceeded, msg)
	return refusal{status: status, body: b, length: []string{strconv.Itoa(len(b))}, logMsg: logMsg}
}

// app is one hosted app.
type app struct {
	name string
	log  *slog.Logger
	rt   *Runtime

	// opMu serialises this app's lifecycle operations. It is never held by a request.
	opMu    sync.Mutex
	deleted bool // under opMu: the app was deleted while a caller waited

	state atomic.Pointer[appState]

	// sem is a one-slot semaphore that owns db: taken by a request for its database work, by
	// hibernation and by operations that open, close or replace the database.
	sem    chan struct{}
	db     store.Conn // under sem; nil while hibernating or stopped
	closed bool       // under sem: no request may open db (stopped, being changed or deleted)
	// verified is under sem: the database's tables were checked against the accepted spec in this process.
	verified bool
	// sharers is under sem: how many connections of the runtime's own, besides db, use the app's
	// SQLite file (a backup). While there are any, db does not hold its file locks (setDB).
	sharers int
	dbOpen  atomic.Bool

	// wakeFailed is set when opening the database for a request failed (the app is then in error);
	// the next request tries again, so a database that was briefly unreachable heals by itself.
	wakeFailed atomic.Bool

	// inFlight counts the requests that hold one of the app's limits.maxInFlight slots: those waiting
	// for a turn and those running, not those still reading their input.
	inFlight atomic.Int64
	turns    turnQueue    // the app's place in the runtime's scheduler
	lastUsed atomic.Int64 // unix nanoseconds of the last database use
	stats    appCounters

	// rejectLoggedAt (unix nanoseconds) and rejectLoggedCount (stats.rejected then) are the last log
	// line about the bulkhead, which is written at most once per rejectLogEvery.
	rejectLoggedAt, rejectLoggedCount atomic.Int64
}

type appCounters struct {
	requests, errors, panics, rejected atomic.Int64
	rejectedBy                         [numRefusals]atomic.Int64
	lastRequest                        atomic.Int64
	latency                            histogram
	queueWait                          histogram // time waited for a turn, by every request that asked for one
}

func newApp(rt *Runtime, name string) *app {
	a := &app{name: name, rt: rt, log: rt.log.With("app", name), sem: make(chan struct{}, 1), closed: true}
	a.state.Store(&appState{status: api.StatusPending})
	return a
}

func (a *app) current() *appState { return a.state.Load() }

// publish replaces the state snapshot: status and error, keeping the rest.
func (a *app) setStatus(status, errMsg string) {
	a.wakeFailed.Store(false)
	for {
		old := a.state.Load()
		n := *old
		n.status, n.err = status, errMsg
		if a.state.CompareAndSwap(old, &n) {
			if old.status != status || old.err != errMsg {
				a.rt.events.statusChanged(a)
			}
			if old.status != status {
				if status == api.StatusError {
					a.log.Error("app status changed", "from", old.status, "to", status, "error", errMsg)
				} else {
					a.log.Info("app status changed", "from", old.status, "to", status)
				}
			}
			return
		}
	}
}

// setEntry publishes a new accepted spec with the compiled data model and key hashes.
func (a *app) setEntry(e registry.Entry, status, errMsg string) {
	d := dialectOf(e.Spec)
	model := store.CompileShared(d, e.Spec.Collections)
	st := &appState{status: status, err: errMsg, entry: e, cols: model.Collections, model: model, dial: d}
	for _, k := range e.Spec.APIKeys {
		st.keys = append(st.keys, k.Value.SHA256)
	}
	lim := e.Spec.Limits
	st.maxInFlight = int64(lim.MaxInFlight)
	st.refusals = [numRefusals]refusal{
		refusedInFlight: newRefusal(http.StatusServiceUnavailable,
			fmt.Sprintf("app %q has %d requests in flight, its limit", a.name, lim.MaxInFlight),
			"requests beyond limits.maxInFlight answered 503"),
		refusedRate: newRefusal(http.StatusTooManyRequests,
			fmt.Sprintf("app %q takes at most %d requests per second (burst %d)", a.name, lim.RequestsPerSecond, burstOf(lim)),
			"requests beyond limits.requestsPerSecond answered 429"),
		refusedQueueFull: newRefusal(http.StatusServiceUnavailable,
			fmt.Sprintf("app %q has %d requests waiting for their turn, the runtime's bound; try again shortly", a.name, a.rt.sched.depth),
			"requests beyond the app's queue bound answered 503"),
		refusedQueueTimeout: newRefusal(http.StatusServiceUnavailable,
			fmt.Sprintf("app %q: the request waited %s for its turn, the runtime's bound; try again shortly", a.name, a.rt.sched.timeout),
			"requests that waited too long for their turn answered 503"),
	}
	old := a.state.Load()
	if lim.RequestsPerSecond > 0 {
		if old.limiter != nil && old.entry.Spec.Limits.RequestsPerSecond == lim.RequestsPerSecond && burstOf(old.entry.Spec.Limits) == burstOf(lim) {
			st.limiter = old.limiter // the same limit goes on counting
		} else {
			st.limiter = rate.NewLimiter(rate.Limit(lim.RequestsPerSecond), burstOf(lim))
		}
	}
	a.wakeFailed.Store(false)
	old = a.state.Swap(st)
	a.rt.events.appChanged(a, old, st)
	if old.status != status {
		a.log.Info("app status changed", "from", old.status, "to", status)
	}
}

func dialectOf(s spec.AppSpec) store.Dialect {
	if s.Database.Driver == spec.DriverPostgres {
		return store.Postgres
	}
	return store.SQLite
}

// acquire takes the database semaphore, or gives up when ctx ends.
func (a *app) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *app) release() { <-a.sem }

// acquireIdleFirst is acquire that never gives up on a free semaphore for a context already ended
// (select would pick either at random).
func (a *app) acquireIdleFirst(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	default:
		return a.acquire(ctx)
	}
}

// withDB runs fn with the app's database, opening (waking) it when hibernating.
func (a *app) withDB(ctx context.Context, fn func(store.Conn) error) error {
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	if err := a.ready(ctx); err != nil {
		return err
	}
	return fn(a.db)
}

// conn takes the app's database for one request, opening (waking) it when hibernating; the caller
// must call release when done with it. It is withDB without a closure, for the data API's handlers.
func (a *app) conn(ctx context.Context) (store.Conn, error) {
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	if err := a.ready(ctx); err != nil {
		a.release()
		return nil, err
	}
	return a.db, nil
}

// ready makes sure the database is open and verified; the caller holds sem.
func (a *app) ready(ctx context.Context) error {
	if a.closed {
		return errUnavailable
	}
	if a.db == nil || !a.verified {
		if err := a.openVerified(ctx, a.current()); err != nil {
			a.setStatus(api.StatusError, err.Error())
			a.wakeFailed.Store(true)
			return fmt.Errorf("%w: %w", errUnavailable, err)
		}
		if a.wakeFailed.Load() {
			a.setStatus(api.StatusRunning, "")
		}
	}
	a.lastUsed.Store(time.Now().UnixNano())
	return nil
}

// setDB makes c the app's open database; the caller holds sem. Unless another connection shares the
// file, c holds its locks on it (store.HoldLocks): nothing else may use an app's SQLite database
// while the runtime has it open, and every request is cheaper for it. Should that fail, c works on,
// taking its locks statement by statement.
func (a *app) setDB(c store.Conn) {
	a.db = c
	a.dbOpen.Store(true)
	a.rt.openDBs.Add(1)
	if a.sharers == 0 {
		a.holdLocks()
	}
}

// holdLocks makes the app's connection hold its file's locks; the caller holds sem.
func (a *app) holdLocks() {
	if err := store.HoldLocks(context.Background(), a.db, true); err != nil {
		a.log.Warn("cannot hold the locks of the app's database file: another program has it open; "+
			"the app is served, a little slower, until it next wakes with the file to itself", "error", err)
	}
}

// shareDB lets a connection other than the app's own use the app's SQLite file until the returned
// function is called: the app's connection stops holding its locks meanwhile (setDB), and goes on
// serving. It waits for the app's database like a request.
func (a *app) shareDB(ctx context.Context) (unshare func(), err error) {
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.release()
	if a.db != nil {
		if err := store.HoldLocks(ctx, a.db, false); err != nil {
			return nil, err
		}
	}
	a.sharers++
	return func() {
		_ = a.acquire(context.Background())
		defer a.release()
		a.sharers--
		if a.sharers == 0 && a.db != nil {
			a.holdLocks()
		}
	}, nil
}

// closeDB closes the database; the caller holds sem.
func (a *app) closeDB() {
	if a.db == nil {
		return
	}
	if err := a.db.Close(); err != nil {
		a.log.Warn("close database", "error", err)
	}
	a.db = nil
	a.dbOpen.Store(false)
	a.rt.openDBs.Add(-1)
}

// hibernate closes the database of an app idle since before cutoff, unless it is in use.
func (a *app) hibernate(cutoff int64) bool {
	if !a.dbOpen.Load() || a.inFlight.Load() > 0 || a.lastUsed.Load() > cutoff {
		return false
	}
	select {
	case a.sem <- struct{}{}:
	default:
		return false // in use right now
	}
	defer a.release()
	if a.db == nil || a.lastUsed.Load() > cutoff {
		return false
	}
	a.closeDB()
	a.log.Debug("app hibernated")
	return true
}

// view is what every read of the app returns, secrets replaced by their hashes, API keys by their
// fingerprints.
func (a *app) view() api.App {
	st := a.current()
	out := api.App{
		Name:       a.name,
		Labels:     st.entry.Labels,
		Spec:       a.rt.reported(a.name, st.entry.Spec),
		Generation: st.entry.Generation,
		Status:     st.status,
		Error:      st.err,
		Stats: api.AppStats{
			Requests:    a.stats.requests.Load(),
			Errors:      a.stats.errors.Load(),
			Panics:      a.stats.panics.Load(),
			Rejected:    a.stats.rejected.Load(),
			InFlight:    a.inFlight.Load(),
			Hibernating: st.status == api.StatusRunning && !a.dbOpen.Load(),
		},
	}
	if ns := a.stats.lastRequest.Load(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		out.Stats.LastRequest = &t
	}
	return out
}

// burstOf is limits.burst, or limits.requestsPerSecond when no burst is given (one second's worth).
func burstOf(l spec.Limits) int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(l.RequestsPerSecond, 1)
}

// rejectLogEvery bounds how often an app's log says that its bulkhead turns requests away: a flood
// must not cost a log line per request.
const rejectLogEvery = 10 * time.Second

// hdrRetryAfter is shared by every refusal, like contentTypeJSON: net/http only reads header
// values, and its capacity equals its length, so an append by anyone copies rather than writes into it.
var hdrRetryAfter = []string{"1"}

// refuse answers a request turned away for cause with the pre-encoded answer of st, counted in the
// app's stats. It is the whole cost of a request that a flood sends past a limit, so it encodes,
// allocates and logs nothing beyond a log line per rejectLogEvery.
func (a *app) refuse(w http.ResponseWriter, st *appState, cause refusalCause, now time.Time) {
	a.stats.requests.Add(1)
	a.stats.rejected.Add(1)
	a.stats.rejectedBy[cause].Add(1)
	ref := &st.refusals[cause]
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = ref.length
	if cause == refusedRate {
		h["Retry-After"] = []string{strconv.Itoa(retryAfterSeconds(st.limiter, now))}
	} else {
		h["Retry-After"] = hdrRetryAfter
	}
	w.WriteHeader(ref.status)
	_, _ = w.Write(ref.body)
	ns := now.UnixNano()
	if last := a.rejectLoggedAt.Load(); ns-last >= int64(rejectLogEvery) && a.rejectLoggedAt.CompareAndSwap(last, ns) {
		total := a.stats.rejected.Load()
		a.log.Warn(ref.logMsg, "cause", cause.String(), "limit", st.maxInFlight,
			"rejected", total-a.rejectLoggedCount.Swap(total)) // since the previous such line
	}
}

// retryAfterSeconds is when the rate limiter will have a token again, in whole seconds (at least 1).
func retryAfterSeconds(l *rate.Limiter, now time.Time) int {
	missing := 1 - l.TokensAt(now)
	if missing <= 0 || l.Limit() <= 0 {
		return 1
	}
	return max(1, int(math.Ceil(missing/float64(l.Limit()))))
}

// errorBody is the error document writeError sends, encoded once.
func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
	return append(b, '\n')
}
