package apphost

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
)

// GET /v1/events: every change of an app (created, updated, status, deleted) as server-sent events, so a
// control plane sees an out-of-band change at once without polling every app.
//
// Each event has an id "<epoch>-<seq>": epoch is this process's start, seq counts events. The last
// eventRingSize events are kept, so a client that reconnects with Last-Event-ID gets what it missed; an
// id the ring no longer covers (too old, from before a restart, or unknown) gets a "reset" event telling
// the client to list the apps again. A subscriber that falls eventSubBuffer events behind is
// disconnected rather than buffered without bound; it resumes from its last id.

const (
	eventRingSize  = 1024
	eventSubBuffer = 256
	// eventKeepAlive is how often an idle stream gets a comment line, so that proxies and clients can
	// tell a quiet stream from a dead connection.
	eventKeepAlive = 15 * time.Second
)

// sseEvent is one encoded event.
type sseEvent struct {
	seq  uint64
	typ  string
	data []byte
}

// eventHub records app changes in a ring and fans them out to subscribers. A nil hub records nothing
// (the apps a runtime loads at start are not changes).
type eventHub struct {
	epoch string

	mu     sync.Mutex
	seq    uint64
	ring   [eventRingSize]sseEvent
	subs   map[*eventSub]struct{}
	closed bool
}

type eventSub struct {
	ch chan sseEvent
}

func newEventHub(start time.Time) *eventHub {
	return &eventHub{epoch: strconv.FormatInt(start.UnixNano(), 36), subs: map[*eventSub]struct{}{}}
}

func (h *eventHub) id(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// appChanged records a new accepted entry of a: created when it had none, updated when its entry
// changed, status when only its status did.
func (h *eventHub) appChanged(a *app, old, cur *appState) {
	switch {
	case h == nil || cur.entry.Generation == 0:
	case old.entry.Generation == 0:
		h.publish(a, api.EventCreated)
	case old.entry.Generation != cur.entry.Generation || !old.entry.UpdatedAt.Equal(cur.entry.UpdatedAt):
		h.publish(a, api.EventUpdated)
	case old.status != cur.status || old.err != cur.err:
		h.publish(a, api.EventStatus)
	}
}

// statusChanged records a new status of a.
func (h *eventHub) statusChanged(a *app) {
	if h != nil && a.current().entry.Generation != 0 {
		h.publish(a, api.EventStatus)
	}
}

// deleted records that a was deleted; a placeholder of a refused create was never an app.
func (h *eventHub) deleted(a *app) {
	if h == nil {
		return
	}
	if g := a.current().entry.Generation; g != 0 {
		h.record(api.EventDeleted, api.Event{Type: api.EventDeleted, Name: a.name, Generation: g})
	}
}

// publish records a change of a with the app as it is now: two changes published out of order by
// racing callers both carry the latest state, so a client's view always ends right.
func (h *eventHub) publish(a *app, typ string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := a.view()
	h.recordLocked(typ, api.Event{Type: typ, Name: a.name, Generation: v.Generation, App: &v})
}

func (h *eventHub) record(typ string, ev api.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recordLocked(typ, ev)
}

func (h *eventHub) recordLocked(typ string, ev api.Event) {
	if h.closed {
		return
	}
	ev.Time = time.Now().UTC()
	data, err := json.Marshal(ev)
	if err != nil {
		return // an api.Event always encodes
	}
	h.seq++
	e := sseEvent{seq: h.seq, typ: typ, data: data}
	h.ring[h.seq%eventRingSize] = e
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			// Too far behind: end its stream; it resumes from its last id, from the ring or with a reset.
			close(s.ch)
			delete(h.subs, s)
		}
	}
}

// subscribe registers a subscriber and returns what it must be sent first: the events after lastID, or
// a reset (lastID cannot be resumed from) or a ready event (no lastID). ok is false after close.
func (h *eventHub) subscribe(lastID string) (s *eventSub, first []sseEvent, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	s = &eventSub{ch: make(chan sseEvent, eventSubBuffer)}
	h.subs[s] = struct{}{}
	switch seq, resumable := h.resumeFrom(lastID); {
	case lastID == "":
		first = []sseEvent{h.control(api.EventReady)}
	case !resumable:
		first = []sseEvent{h.control(api.EventReset)}
	default:
		for n := seq + 1; n <= h.seq; n++ {
			first = append(first, h.ring[n%eventRingSize])
		}
	}
	return s, first, true
}

// resumeFrom parses a last event id and reports whether the ring still holds every event after it.
func (h *eventHub) resumeFrom(lastID string) (uint64, bool) {
	epoch, n, ok := strings.Cut(lastID, "-")
	if !ok || epoch != h.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil || seq > h.seq || h.seq-seq > eventRingSize {
		return 0, false
	}
	return seq, true
}

// control is a ready or reset event at the current position: resuming from its id misses nothing after it.
func (h *eventHub) control(typ string) sseEvent {
	data, _ := json.Marshal(api.Event{Type: typ, Time: time.Now().UTC()})
	return sseEvent{seq: h.seq, typ: typ, data: data}
}

func (h *eventHub) unsubscribe(s *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// close ends every stream; the server's shutdown would otherwise wait for them until its deadline.
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.ch)
	}
	clear(h.subs)
}

// handleEvents serves GET /v1/events.
func (rt *Runtime) handleEvents(w http.ResponseWriter, r *http.Request) {
	last := r.Header.Get(api.HeaderLastEventID)
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	sub, first, ok := rt.events.subscribe(last)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the runtime is shutting down", nil)
		return
	}
	defer rt.events.unsubscribe(sub)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(e sseEvent) bool {
		_, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", rt.events.id(e.seq), e.typ, e.data)
		return err == nil
	}
	for _, e := range first {
		if !write(e) {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	keepAlive := time.NewTicker(eventKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case e, open := <-sub.ch:
			if !open {
				return
			}
			if !write(e) {
				return
			}
			for more := true; more; { // send what else is queued in one flush
				select {
				case e, open := <-sub.ch:
					if !open || !write(e) {
						_ = rc.Flush()
						return
					}
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}
