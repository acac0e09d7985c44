package gitops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/gitops/gitsync"
	"github.com/appfleet/appfleet/gitops/notify"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Heal backoff: a drift that comes back after a heal is healed again after healFirstWait, then twice as
// long each time up to healMaxWait; an address that stays healed for healForget starts afresh.
const (
	healFirstWait = time.Second
	healMaxWait   = 5 * time.Minute
	healForget    = 10 * time.Minute
)

// checkDrift plans the last good commit against what runs. Apps whose policy is heal, and every
// environment (a runtime that died is brought back as apply does), are applied again; drift of apps
// whose policy is notify is reported once per commit and address; ignore is left alone.
func (d *Daemon) checkDrift(ctx context.Context, why string) {
	start := time.Now()
	d.nextResync = start.Add(d.resyncEvery())
	res, err := d.eng.Plan(ctx, engine.Request{Manifests: d.lastGood, Prune: d.cfg.Prune}, nil)
	if err != nil && (res == nil || !errors.Is(err, plan.ErrBlocked)) {
		if ctx.Err() == nil {
			d.log.Warn("drift check: plan failed", "error", err)
		}
		return
	}
	drift := map[string][]string{}
	var heal []string
	var waiting []string
	now := time.Now()
	for _, a := range res.Plan.Actions {
		if !a.Kind.Changes() {
			continue
		}
		addr := string(a.Address)
		lines := driftLines(a)
		policy := spec.DriftHeal
		if a.ResourceType == plan.TypeApp {
			policy = d.policy(d.lastGood, a.Name)
		}
		switch policy {
		case spec.DriftIgnore:
			continue
		case spec.DriftNotify:
			drift[addr] = lines
			d.notify.Send(notify.Message{Key: "drift/" + d.lastGoodHash + "/" + addr,
				Text:    fmt.Sprintf("appfleet: drift in %s: %s no longer matches commit %s: %s", d.lastGood.Name, addr, short(d.lastGoodHash), strings.Join(lines, "; ")),
				Details: notify.Details{Kind: notify.Drift, Fleet: d.lastGood.Name, Commit: d.lastGoodHash, Address: addr, Detail: strings.Join(lines, "; ")}})
		case spec.DriftHeal:
			drift[addr] = lines
			h := d.heals[addr]
			if h != nil && now.Before(h.next) {
				if !h.said {
					waiting = append(waiting, addr)
					h.said = true
				}
				continue
			}
			heal = append(heal, addr)
		}
	}
	d.met.driftApps.Set(float64(len(drift)))
	for addr, h := range d.heals {
		if _, still := drift[addr]; !still && now.Sub(h.last) > healForget {
			delete(d.heals, addr)
		}
	}
	if len(waiting) > 0 {
		d.log.Warn("drift keeps coming back; heals are backing off", "addresses", strings.Join(waiting, ", "))
	}
	if len(heal) == 0 {
		d.recordObservation(res, drift)
		if len(drift) > 0 && why == triggerResync {
			d.board.addSync(Sync{Commit: d.lastGoodHash, Trigger: why, Started: start.UTC(), Duration: time.Since(start), Result: ResultDrift,
				Summary: strings.Join(slices.Sorted(maps.Keys(drift)), ", ")})
		}
		return
	}
	slices.Sort(heal)
	d.log.Info("healing drift", "addresses", strings.Join(heal, ", "), "trigger", why)
	ares, err := d.apply(ctx, d.lastGood, d.commitOf(d.lastGoodHash), heal)
	for _, addr := range heal {
		h := d.heals[addr]
		if h == nil {
			h = &healState{}
			d.heals[addr] = h
		}
		// A heal soon after the previous one means something undoes it: wait longer each time.
		if h.count > 0 && now.Sub(h.last) < healForget {
			wait := min(healFirstWait<<min(h.count-1, 20), healMaxWait)
			h.next = now.Add(wait)
		}
		h.count++
		h.last = now
		h.said = false
		delete(drift, addr)
	}
	result, errText := ResultHealed, ""
	if err != nil {
		result, errText = ResultFailed, err.Error()
		d.log.Error("heal failed", "addresses", strings.Join(heal, ", "), "error", err)
	} else {
		for _, addr := range heal {
			d.notify.Send(notify.Message{Key: fmt.Sprintf("healed/%s/%s/%d", d.lastGoodHash, addr, d.heals[addr].count),
				Text:    fmt.Sprintf("appfleet: healed %s in %s: put back to commit %s", addr, d.lastGood.Name, short(d.lastGoodHash)),
				Details: notify.Details{Kind: notify.Healed, Fleet: d.lastGood.Name, Commit: d.lastGoodHash, Address: addr}})
		}
		d.met.heals.Add(float64(len(heal)))
	}
	d.recordPlan(d.commitOf(d.lastGoodHash), ares)
	d.board.addSync(Sync{Commit: d.lastGoodHash, Trigger: why, Started: start.UTC(), Duration: time.Since(start), Result: result,
		Summary: strings.Join(heal, ", "), Error: errText})
	d.observe(ctx)
	if len(drift) > 0 {
		d.board.mu.Lock()
		for addr, lines := range drift {
			if a, ok := d.board.apps[strings.TrimPrefix(addr, "app.")]; ok {
				a.Drift = lines
			}
		}
		d.board.mu.Unlock()
	}
}

// healDue reports whether a heal that was backing off may run now.
func (d *Daemon) healDue(now time.Time) bool {
	for _, h := range d.heals {
		if !h.next.IsZero() && !now.Before(h.next) {
			h.next = time.Time{}
			return true
		}
	}
	return false
}

func (d *Daemon) commitOf(hash string) (c gitsync.Commit) {
	st := d.board.get()
	if st.Applied != nil && st.Applied.Hash == hash {
		return *st.Applied
	}
	return gitsync.Commit{Hash: hash, Short: short(hash)}
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// driftLines says what an action would change, one line per field.
func driftLines(a *plan.Action) []string {
	if len(a.Diffs) == 0 {
		return []string{a.Kind.String() + ": " + a.Reason}
	}
	out := make([]string, 0, len(a.Diffs))
	for _, f := range a.Diffs {
		switch {
		case f.Before != "" && f.After != "":
			out = append(out, fmt.Sprintf("%s: %s -> %s", f.Path, f.Before, f.After))
		case f.After != "":
			out = append(out, fmt.Sprintf("%s: missing, want %s", f.Path, f.After))
		default:
			out = append(out, fmt.Sprintf("%s: %s, not declared", f.Path, f.Before))
		}
	}
	return out
}

// driftWatch follows every runtime's event stream and asks the loop for a drift check when an app of
// the fleet changes while the daemon is not applying, or when a stream breaks (a runtime that died).
type driftWatch struct {
	d        *Daemon
	applying atomic.Bool

	mu      sync.Mutex
	streams map[string]*stream // by environment
}

type stream struct {
	ep       providers.Endpoint
	cancel   context.CancelFunc
	done     chan struct{}
	watching atomic.Bool
}

func newDriftWatch(d *Daemon) *driftWatch {
	return &driftWatch{d: d, streams: map[string]*stream{}}
}

func (w *driftWatch) setApplying(v bool) { w.applying.Store(v) }

func (w *driftWatch) watching(env string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.streams[env]
	return s != nil && s.watching.Load()
}

// sync starts a stream for every endpoint not yet followed and stops those no longer observed.
func (w *driftWatch) sync(endpoints map[string]providers.Endpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for env, s := range w.streams {
		if ep, ok := endpoints[env]; !ok || ep != s.ep {
			s.cancel()
			<-s.done
			delete(w.streams, env)
		}
	}
	for env, ep := range endpoints {
		if _, ok := w.streams[env]; ok || ep.URL == "" {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		s := &stream{ep: ep, cancel: cancel, done: make(chan struct{})}
		w.streams[env] = s
		go func() {
			defer close(s.done)
			w.follow(ctx, env, s)
		}()
	}
}

func (w *driftWatch) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for env, s := range w.streams {
		s.cancel()
		<-s.done
		delete(w.streams, env)
	}
}

// follow reads one runtime's events until ctx ends, reconnecting (resuming from the last event id)
// with backoff when the stream breaks.
func (w *driftWatch) follow(ctx context.Context, env string, s *stream) {
	c := api.NewClient(s.ep.URL, s.ep.Token)
	log := w.d.log.With("environment", env)
	last := ""
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		es, err := c.Events(ctx, last)
		if err == nil {
			wait = 200 * time.Millisecond
			s.watching.Store(true)
			last, err = w.read(env, es)
			_ = es.Close()
			s.watching.Store(false)
		}
		if ctx.Err() != nil {
			return
		}
		// A stream that breaks may mean a runtime that died: have it checked (and brought back).
		log.Debug("event stream ended; reconnecting", "error", err, "in", wait)
		w.d.kick(triggerEvent)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// read handles events until the stream ends and returns the last event id.
func (w *driftWatch) read(env string, es *api.EventStream) (string, error) {
	for {
		ev, err := es.Next()
		if err != nil {
			return es.LastID, err
		}
		switch ev.Type {
		case api.EventReady:
		case api.EventReset:
			w.d.kick(triggerEvent) // changes may have been missed: check everything
		default:
			w.d.board.appEvent(env, ev)
			if !w.applying.Load() {
				w.d.kick(triggerEvent)
			}
		}
	}
}
