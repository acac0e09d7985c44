package apphost

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// serveApp answers one request of an app's traffic; path is what follows /apps/{app}.
func (rt *Runtime) serveApp(w http.ResponseWriter, r *http.Request, name, path string) {
	a := rt.lookup(name)
	if a == nil || a.current().entry.Generation == 0 {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("app %q does not exist", name), nil)
		return
	}
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
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
	// The bulkhead decides before anything else is spent on the request (the API key's hash, the
	// body, the per-request wrapper): under a flood, a cheap rejection is what leaves CPU to the
	// other apps.
	if st.maxInFlight > 0 && n > st.maxInFlight {
		a.reject(w, st, start.UnixNano())
		return
	}
	if !a.authorized(r, st) {
		a.stats.requests.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+name+`"`)
		writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, fmt.Sprintf("app %q needs one of its API keys (Authorization: Bearer <key>)", name), nil)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.stats.panics.Add(1)
			rt.panics.Add(1)
			a.log.Error("panic in request; recovered", "method", r.Method, "path", path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, api.CodeInternal, "internal error in app "+strconv.Quote(name), nil)
			}
		}
		a.stats.requests.Add(1)
		if sw.status >= 500 {
			a.stats.errors.Add(1)
		}
		a.stats.latency.observe(time.Since(start))
	}()
	rt.route(sw, r, a, st, path)
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

func (rt *Runtime) route(w http.ResponseWriter, r *http.Request, a *app, st *appState, path string) {
	switch {
	case path == "/openapi.json":
		if !allow(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, openAPI(a.name, st))
		return
	case path == "/api/_settings":
		if !allow(w, r, http.MethodGet) {
			return
		}
		settings := st.entry.Spec.Settings
		if settings == nil {
			settings = map[string]string{}
		}
		writeJSON(w, http.StatusOK, settings)
		return
	case TestHooksBuilt && strings.HasPrefix(path, "/api/_test/"):
		rt.testHook(w, r, a, strings.TrimPrefix(path, "/api/_test/"))
		return
	}
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no such path in app %q: %s", a.name, path), nil)
		return
	}
	collName, idText, hasID := strings.Cut(rest, "/")
	coll := st.cols[collName]
	if coll == nil {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("app %q has no collection %q", a.name, collName), nil)
		return
	}
	if !hasID {
		switch r.Method {
		case http.MethodGet:
			lq, err := coll.ParseList(r.URL.Query())
			if err != nil {
				writeDataError(w, err)
				return
			}
			buf := getBuf()
			defer putBuf(buf)
			err = a.withDB(r.Context(), func(c store.Conn) (err error) {
				*buf, err = coll.ListJSON(r.Context(), c, lq, (*buf)[:0])
				return err
			})
			if err != nil {
				writeDataError(w, err)
				return
			}
			writeEncoded(w, http.StatusOK, *buf)
		case http.MethodPost:
			in, err := readRecord(w, r)
			if err != nil {
				writeDataError(w, err)
				return
			}
			var rec store.Record
			err = a.withDB(r.Context(), func(c store.Conn) (err error) {
				rec, err = coll.Create(r.Context(), c, in)
				return err
			})
			if err != nil {
				writeDataError(w, err)
				return
			}
			if id, ok := rec.Get("id"); ok {
				w.Header().Set("Location", fmt.Sprintf("/apps/%s/api/%s/%v", a.name, collName, id))
			}
			writeRecord(w, http.StatusCreated, rec)
		default:
			allow(w, r, http.MethodGet, http.MethodPost)
		}
		return
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("collection %q has no record %q", collName, idText), nil)
		return
	}
	var rec store.Record
	var buf *[]byte
	switch r.Method {
	case http.MethodGet:
		buf = getBuf()
		defer putBuf(buf)
		err = a.withDB(r.Context(), func(c store.Conn) (err error) {
			*buf, err = coll.GetJSON(r.Context(), c, id, (*buf)[:0])
			return err
		})
	case http.MethodPatch:
		var in map[string]any
		if in, err = readRecord(w, r); err == nil {
			err = a.withDB(r.Context(), func(c store.Conn) (err error) {
				rec, err = coll.Update(r.Context(), c, id, in)
				return err
			})
		}
	case http.MethodDelete:
		err = a.withDB(r.Context(), func(c store.Conn) error { return coll.Delete(r.Context(), c, id) })
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default:
		allow(w, r, http.MethodGet, http.MethodPatch, http.MethodDelete)
		return
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("collection %q has no record %d", collName, id), nil)
			return
		}
		writeDataError(w, err)
		return
	}
	if buf != nil {
		writeEncoded(w, http.StatusOK, *buf)
		return
	}
	writeRecord(w, http.StatusOK, rec)
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
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "encode answer: "+err.Error(), nil)
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

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, api.CodeMethod, fmt.Sprintf("%s is not allowed here; use %s", r.Method, strings.Join(methods, " or ")), nil)
	return false
}

// readRecord decodes a body that is one JSON object, keeping numbers exact. A body over maxRecordBytes
// is refused with an *http.MaxBytesError.
func readRecord(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRecordBytes))
	dec.UseNumber()
	var in map[string]any
	err := dec.Decode(&in)
	if err == nil {
		if _, after := dec.Token(); after != io.EOF {
			err = errors.New("more follows the object")
			if errors.As(after, new(*http.MaxBytesError)) {
				err = after
			}
		}
	}
	if errors.As(err, new(*http.MaxBytesError)) {
		return nil, err
	}
	if err != nil || in == nil {
		msg := "the body must be a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, &store.ValidationError{Problems: []store.FieldError{{Field: "body", Reason: msg}}}
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
		writeError(w, http.StatusInternalServerError, api.CodeInternal, err.Error(), nil)
	}
}
