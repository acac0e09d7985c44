package apphost

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	gopath "path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

// maxRecordBytes bounds a record's JSON body.
const maxRecordBytes = 1 << 20

// serveApp answers one request of an app's traffic; path is the request's path without the
// /apps/{app} prefix (the whole path when the app was addressed by header or hostname).
//
// What is cheap and needs no turn is decided here, in this order: the app exists and runs, its
// limits.maxInFlight is not already reached (a flood is turned away before anything is spent on it),
// the API key, the request rate. The route is then chosen by dataMux; each handler reads its input,
// and only then asks the scheduler for a turn (appWriter.enter), so a client that is slow to send its
// body holds no slot of the app and no turn of the runtime.
func (rt *Runtime) serveApp(w http.ResponseWriter, r *http.Request, name, path string) {
	a := rt.lookup(name)
	if a == nil || a.current().entry.Generation == 0 {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("app %q does not exist", name), nil)
		return
	}
	start := time.Now()
	a.stats.lastRequest.Store(start.UnixNano())
	st := a.current()
	if st.status != api.StatusRunning && (st.status != api.StatusError || !a.wakeFailed.Load()) {
		a.stats.requests.Add(1)
		msg := fmt.Sprintf("app %q is %s", name, st.status)
		if st.err != "" {
			msg += ": " + st.err
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, msg, nil)
		return
	}
	if st.maxInFlight > 0 && a.inFlight.Load() >= st.maxInFlight {
		a.refuse(w, st, refusedInFlight, start)
		return
	}
	if !a.authorized(r, st) {
		a.stats.requests.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+name+`"`)
		writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, fmt.Sprintf("app %q needs one of its API keys (Authorization: Bearer <key>)", name), nil)
		return
	}
	if st.limiter != nil && !st.limiter.AllowN(start, 1) {
		a.refuse(w, st, refusedRate, start)
		return
	}
	aw := &appWriter{ResponseWriter: w, rt: rt, a: a, st: st}
	defer aw.finish(r, path, start)
	if path != r.URL.Path {
		if gopath.Clean(path) != path {
			// The mux would redirect to the cleaned path, which lacks the /apps/{app} prefix.
			aw.routed = true
			writeError(aw, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no such path in app %q: %s", name, path), nil)
			return
		}
		r = withPath(r, path)
	}
	rt.dataMux.ServeHTTP(aw, r)
	if !aw.routed {
		aw.answerUnrouted(r, path)
	}
}

// withPath is a shallow copy of r whose URL path is path (as http.StripPrefix makes it).
func withPath(r *http.Request, path string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path, r2.URL.RawPath = path, ""
	return r2
}

// appWriter is the ResponseWriter of one request of an app's traffic. It carries the app and the
// state the request started with to the handlers of dataMux, remembers the status answered, and
// holds the request's turn between enter and leave.
type appWriter struct {
	http.ResponseWriter
	rt     *Runtime
	a      *app
	st     *appState
	status int
	// routed is set by every handler of dataMux. While it is false, what is written is the mux's own
	// plain-text 404 or 405, which answerUnrouted replaces by the JSON error every answer uses.
	routed  bool
	entered bool
	// internal is the error behind a 500 that writeInternal answered with requestID, for the log.
	internal  error
	requestID string
}

func (aw *appWriter) WriteHeader(code int) {
	if aw.status == 0 {
		aw.status = code
	} else if !aw.routed {
		return
	}
	if aw.routed {
		aw.ResponseWriter.WriteHeader(code)
	}
}

func (aw *appWriter) Write(b []byte) (int, error) {
	if !aw.routed {
		return len(b), nil
	}
	if aw.status == 0 {
		aw.status = http.StatusOK
	}
	return aw.ResponseWriter.Write(b)
}

func (aw *appWriter) Unwrap() http.ResponseWriter { return aw.ResponseWriter }

// answerUnrouted answers a request no route took, with what the mux found: the path is not the app's
// (404), or it is but takes other methods (405, with the Allow header the mux set).
func (aw *appWriter) answerUnrouted(r *http.Request, path string) {
	aw.routed = true
	status := aw.status
	aw.status = 0
	h := aw.Header()
	h.Del("X-Content-Type-Options")
	if status == http.StatusMethodNotAllowed {
		allowed := h.Get("Allow")
		writeError(aw, http.StatusMethodNotAllowed, api.CodeMethod, fmt.Sprintf("%s is not allowed here; use %s", r.Method, strings.ReplaceAll(allowed, ", ", " or ")), nil)
		return
	}
	h.Del("Allow")
	writeError(aw, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no such path in app %q: %s", aw.a.name, path), nil)
}

// finish, deferred by serveApp, contains a panic of the request to its app and counts the request.
func (aw *appWriter) finish(r *http.Request, path string, start time.Time) {
	a := aw.a
	if p := recover(); p != nil {
		aw.leave()
		if p == http.ErrAbortHandler {
			panic(p)
		}
		a.stats.panics.Add(1)
		aw.rt.panics.Add(1)
		a.log.Error("panic in request; recovered", "method", r.Method, "path", path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if aw.status == 0 {
			aw.routed = true
			writeError(aw, http.StatusInternalServerError, api.CodeInternal, "internal error in app "+strconv.Quote(a.name), nil)
		}
	}
	a.stats.requests.Add(1)
	if aw.status >= 500 {
		a.stats.errors.Add(1)
	}
	if aw.internal != nil {
		a.log.Error("request failed", "requestId", aw.requestID, "method", r.Method, "path", path, "error", aw.internal)
	}
	a.stats.latency.observe(time.Since(start))
}

// enter takes one of the app's limits.maxInFlight slots and waits for a turn of the runtime's
// scheduler. When it returns false the request was refused and answered (503 with Retry-After).
// A handler calls it once its input is read and calls leave as soon as the app's work is done.
func (aw *appWriter) enter(r *http.Request) bool {
	a, st := aw.a, aw.st
	n := a.inFlight.Add(1)
	if st.maxInFlight > 0 && n > st.maxInFlight {
		a.inFlight.Add(-1)
		a.refuse(aw, st, refusedInFlight, time.Now())
		return false
	}
	waited, err := aw.rt.sched.admit(r.Context(), &a.turns)
	a.stats.queueWait.observe(waited)
	if err != nil {
		a.inFlight.Add(-1)
		switch {
		case errors.Is(err, errQueueFull):
			a.refuse(aw, st, refusedQueueFull, time.Now())
		case errors.Is(err, errQueueTimeout):
			a.refuse(aw, st, refusedQueueTimeout, time.Now())
		default:
			writeDataError(aw, err) // the client went away while it waited
		}
		return false
	}
	aw.entered = true
	return true
}

// leave gives back what enter took; it may be called more than once.
func (aw *appWriter) leave() {
	if aw.entered {
		aw.entered = false
		aw.rt.sched.done(&aw.a.turns)
		aw.a.inFlight.Add(-1)
	}
}

// authorized reports whether the request may use the app: always when it declares no keys, else
// when it carries one of them. Keys are compared by salted hash (the salt is the app's name, so a key
// of another app never matches) in constant time.
func (a *app) authorized(r *http.Request, st *appState) bool {
	if len(st.keys) == 0 {
		return true
	}
	tok, ok := bearer(r)
	if !ok {
		return false
	}
	h := []byte(spec.SecretHash(a.name, tok))
	match := 0
	for _, k := range st.keys {
		match |= subtle.ConstantTimeCompare(h, []byte(k))
	}
	return match == 1
}

// dataRoutes is the data API of every app, as paths without the /apps/{app} prefix. The mux answers
// 405 with Allow for a known path and another method; answerUnrouted turns that into JSON.
func (rt *Runtime) dataRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(aw *appWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			aw := w.(*appWriter)
			aw.routed = true
			h(aw, r)
		})
	}
	handle("GET /openapi.json", func(aw *appWriter, r *http.Request) {
		if !aw.enter(r) {
			return
		}
		b, err := json.Marshal(openAPI(aw.a.name, aw.st))
		aw.leave()
		if err != nil {
			writeDataError(aw, err)
			return
		}
		writeEncoded(aw, http.StatusOK, b)
	})
	handle("GET /api/_settings", func(aw *appWriter, _ *http.Request) {
		settings := aw.st.entry.Spec.Settings
		if settings == nil {
			settings = map[string]string{}
		}
		writeJSON(aw, http.StatusOK, settings)
	})
	handle("GET /api/{collection}", rt.listRecords)
	handle("POST /api/{collection}", rt.createRecord)
	handle("GET /api/{collection}/{id}", rt.getRecord)
	handle("PATCH /api/{collection}/{id}", rt.updateRecord)
	handle("DELETE /api/{collection}/{id}", rt.deleteRecord)
	if TestHooksBuilt {
		handle("GET /api/_test/{hook}", rt.testHook)
	}
	return mux
}

// collection is the request's collection, or nil after answering 404.
func (aw *appWriter) collection(r *http.Request) *store.Collection {
	name := r.PathValue("collection")
	c := aw.st.cols[name]
	if c == nil {
		writeError(aw, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("app %q has no collection %q", aw.a.name, name), nil)
	}
	return c
}

// recordID is the request's record id, or false after answering 404.
func (aw *appWriter) recordID(r *http.Request, c *store.Collection) (int64, bool) {
	text := r.PathValue("id")
	id, err := strconv.ParseInt(text, 10, 64)
	if err != nil || id <= 0 {
		writeError(aw, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("collection %q has no record %q", c.Name, text), nil)
		return 0, false
	}
	return id, true
}

func (rt *Runtime) listRecords(aw *appWriter, r *http.Request) {
	coll := aw.collection(r)
	if coll == nil {
		return
	}
	lq, err := coll.ParseList(queryParams(r.URL.RawQuery))
	if err != nil {
		writeDataError(aw, err)
		return
	}
	aw.readJSON(r, coll, 0, func(ctx context.Context, c store.Conn, dst []byte) ([]byte, error) {
		return coll.ListJSON(ctx, c, lq, dst)
	})
}

func (rt *Runtime) getRecord(aw *appWriter, r *http.Request) {
	coll := aw.collection(r)
	if coll == nil {
		return
	}
	id, ok := aw.recordID(r, coll)
	if !ok {
		return
	}
	aw.readJSON(r, coll, id, func(ctx context.Context, c store.Conn, dst []byte) ([]byte, error) {
		return coll.GetJSON(ctx, c, id, dst)
	})
}

// readJSON answers 200 with what read appends to a pooled buffer, read with a turn and the app's
// database. id names the record read, if one is (for a 404).
func (aw *appWriter) readJSON(r *http.Request, coll *store.Collection, id int64, read func(context.Context, store.Conn, []byte) ([]byte, error)) {
	if !aw.enter(r) {
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	c, err := aw.a.conn(r.Context())
	if err == nil {
		*buf, err = read(r.Context(), c, (*buf)[:0])
		aw.a.release()
	}
	aw.leave()
	if err != nil {
		writeRecordError(aw, coll, id, err)
		return
	}
	writeEncoded(aw, http.StatusOK, *buf)
}

func (rt *Runtime) createRecord(aw *appWriter, r *http.Request) {
	coll := aw.collection(r)
	if coll == nil {
		return
	}
	rt.changeRecord(aw, r, coll, 0, http.StatusCreated, coll.Create)
}

func (rt *Runtime) updateRecord(aw *appWriter, r *http.Request) {
	coll := aw.collection(r)
	if coll == nil {
		return
	}
	id, ok := aw.recordID(r, coll)
	if !ok {
		return
	}
	rt.changeRecord(aw, r, coll, id, http.StatusOK, func(ctx context.Context, c store.Conn, in map[string]any) (store.Record, error) {
		return coll.Update(ctx, c, id, in)
	})
}

// changeRecord reads a record's body, then, with a turn, applies it with op and answers the record
// with status. id is the record's (0 for a new one).
func (rt *Runtime) changeRecord(aw *appWriter, r *http.Request, coll *store.Collection, id int64, status int,
	op func(context.Context, store.Conn, map[string]any) (store.Record, error)) {
	in, err := rt.readBody(aw, r)
	if err != nil {
		writeDataError(aw, err)
		return
	}
	if !aw.enter(r) {
		return
	}
	var rec store.Record
	c, err := aw.a.conn(r.Context())
	if err == nil {
		rec, err = op(r.Context(), c, in)
		aw.a.release()
	}
	aw.leave()
	if err != nil {
		writeRecordError(aw, coll, id, err)
		return
	}
	if id == 0 {
		if v, ok := rec.Get("id"); ok {
			aw.Header().Set("Location", fmt.Sprintf("/apps/%s/api/%s/%v", aw.a.name, coll.Name, v))
		}
	}
	writeRecord(aw, status, rec)
}

func (rt *Runtime) deleteRecord(aw *appWriter, r *http.Request) {
	coll := aw.collection(r)
	if coll == nil {
		return
	}
	id, ok := aw.recordID(r, coll)
	if !ok || !aw.enter(r) {
		return
	}
	c, err := aw.a.conn(r.Context())
	if err == nil {
		err = coll.Delete(r.Context(), c, id)
		aw.a.release()
	}
	aw.leave()
	if err != nil {
		writeRecordError(aw, coll, id, err)
		return
	}
	aw.WriteHeader(http.StatusNoContent)
}

// writeRecordError answers a failed operation on one record, naming it when it does not exist.
func writeRecordError(w http.ResponseWriter, coll *store.Collection, id int64, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("collection %q has no record %d", coll.Name, id), nil)
		return
	}
	writeDataError(w, err)
}

// readBody reads a record's JSON body within the runtime's read timeout: a client that sends its
// body slower than that is answered 408 and its connection closed.
func (rt *Runtime) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(rt.cfg.ReadTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, err
	}
	return readRecord(w, r)
}

// queryParams splits a raw query into its parameters, in order, unescaped. A parameter whose escapes
// are invalid is kept with its raw text, so that the list's validation names it.
func queryParams(raw string) []store.Param {
	if raw == "" {
		return nil
	}
	out := make([]store.Param, 0, strings.Count(raw, "&")+1)
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		out = append(out, store.Param{Key: unescapeQuery(k), Value: unescapeQuery(v)})
	}
	return out
}

func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// bufPool holds the buffers records are encoded into. A page of 20 short records is a few KiB; a
// buffer grown past maxPooledBuf by a huge page is left to the GC rather than kept for every request.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

const maxPooledBuf = 256 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// writeRecord answers with one record, encoded by the store.
func writeRecord(w http.ResponseWriter, status int, rec store.Record) {
	buf := getBuf()
	defer putBuf(buf)
	b, err := rec.AppendJSON((*buf)[:0])
	if err != nil {
		writeInternal(w, fmt.Errorf("encode answer: %w", err))
		return
	}
	*buf = b
	writeEncoded(w, status, b)
}

// writeEncoded answers with JSON the store already encoded, as writeJSON would (a final newline),
// written as it is: passing it through encoding/json would validate and copy it again.
func writeEncoded(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body) + 1)}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// contentTypeJSON is shared by every answer; net/http only reads header values.
var contentTypeJSON = []string{"application/json"}

// readRecord decodes a body that is one JSON object, keeping numbers exact. A body over maxRecordBytes
// is refused with an *http.MaxBytesError.
func readRecord(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	b, err := readStrictJSON(w, r, maxRecordBytes)
	if errors.As(err, new(*http.MaxBytesError)) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, err
	}
	var in map[string]any
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err = dec.Decode(&in); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				err = fmt.Errorf("the body must be a JSON object, not %s", valueWord(te.Value))
			} else {
				err = jsonProblem(err)
			}
		} else if _, after := dec.Token(); after != io.EOF {
			err = errors.New("the body must be one JSON object; more follows it")
		}
	}
	if err == nil && in == nil {
		err = errors.New("the body must be a JSON object, not null")
	}
	if err != nil {
		return nil, &store.ValidationError{Problems: []store.FieldError{{Field: "body", Reason: err.Error()}}}
	}
	return in, nil
}

func writeDataError(w http.ResponseWriter, err error) {
	var ve *store.ValidationError
	var ue *store.UniqueError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeInvalid, fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit), nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, api.CodeInvalid, "the body did not arrive in time", nil)
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, api.CodeInvalid, "invalid input: "+ve.Error(), ve.Details())
	case errors.As(err, &ue):
		writeError(w, http.StatusConflict, api.CodeDuplicate, ue.Error(), nil)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, api.CodeNotFound, err.Error(), nil)
	case errors.Is(err, errUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error(), nil)
	case store.IsDiskFull(err):
		writeError(w, http.StatusInsufficientStorage, api.CodeDiskFull, "the runtime's disk is full; nothing was written. Reads keep working; free space on the runtime's disk and retry", nil)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the request ended before the app could serve it", nil)
	default:
		writeInternal(w, err)
	}
}
