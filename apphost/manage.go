package apphost

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxSpecBytes bounds the body of PUT /v1/apps/{name}.
const maxSpecBytes = 4 << 20

// ServeHTTP routes app traffic (by /apps/{app}/ path, X-App header or Host) to the app and everything
// else to the management API.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/apps/"); ok {
		name, sub, _ := strings.Cut(rest, "/")
		rt.serveApp(w, r, name, "/"+sub)
		return
	}
	if path == "/openapi.json" || path == "/api" || strings.HasPrefix(path, "/api/") {
		name := r.Header.Get(api.HeaderApp)
		if name == "" {
			if a := rt.hostOwner(hostKey(r.Host)); a != nil {
				name = a.name
			}
		}
		if name == "" {
			writeError(w, http.StatusNotFound, api.CodeNotFound,
				"no app is addressed: use /apps/{app}"+path+", the "+api.HeaderApp+" header, or one of an app's hostnames", nil)
			return
		}
		rt.serveApp(w, r, name, path)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	rt.mux.ServeHTTP(sw, r)
	if sw.internal != nil {
		rt.log.Error("request failed", "requestId", sw.requestID, "method", r.Method, "path", path, "error", sw.internal)
	}
}

// hostKey is the hostname a Host header names, as apps declare hostnames: without the port, in lower
// case, and without the final dot of a fully qualified name ("crm.example.test." is "crm.example.test").
func hostKey(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func (rt *Runtime) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if rt.shuttingDown.Load() {
			writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the runtime is shutting down", nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	auth := rt.requireToken
	mux.Handle("GET /metrics", auth(promhttp.HandlerFor(rt.metrics, promhttp.HandlerOpts{})))
	mux.Handle("GET /v1/runtime", auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, rt.runtimeInfo())
	})))
	mux.Handle("GET /v1/events", auth(http.HandlerFunc(rt.handleEvents)))
	mux.Handle("GET /v1/apps", auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		apps := rt.snapshot()
		out := api.AppList{Apps: make([]api.App, 0, len(apps))}
		for _, a := range apps {
			if a.current().entry.Generation == 0 {
				continue // still being created
			}
			out.Apps = append(out.Apps, a.view())
		}
		writeJSON(w, http.StatusOK, out)
	})))
	mux.Handle("GET /v1/apps/{name}", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := rt.lookup(r.PathValue("name"))
		if a == nil || a.current().entry.Generation == 0 {
			writeOpError(w, notFound(r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, a.view())
	})))
	mux.Handle("PUT /v1/apps/{name}", auth(http.HandlerFunc(rt.handlePut)))
	mux.Handle("POST /v1/apps/{name}/start", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := rt.startApp(r.Context(), r.PathValue("name"))
		respond(w, http.StatusOK, v, err)
	})))
	mux.Handle("POST /v1/apps/{name}/stop", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := rt.stopApp(r.Context(), r.PathValue("name"))
		respond(w, http.StatusOK, v, err)
	})))
	mux.Handle("DELETE /v1/apps/{name}", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		purge, err := boolQuery(r, api.QueryPurge)
		if err != nil {
			writeOpError(w, err)
			return
		}
		if err := rt.deleteApp(r.Context(), r.PathValue("name"), purge); err != nil {
			writeOpError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("POST /v1/apps/{name}/fingerprints", auth(http.HandlerFunc(rt.handleFingerprints)))
	mux.Handle("GET /v1/apps/{name}/backup", auth(http.HandlerFunc(rt.handleBackup)))
	mux.Handle("PUT /v1/apps/{name}/restore", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allow, err := boolQuery(r, api.QueryAllowDataLoss)
		if err != nil {
			writeOpError(w, err)
			return
		}
		v, err := rt.restoreApp(r.Context(), r.PathValue("name"), r.Body, allow)
		respond(w, http.StatusOK, v, err)
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), nil)
	})
	return mux
}

// requireToken lets a request through only with the runtime's bearer token (compared in constant time).
func (rt *Runtime) requireToken(next http.Handler) http.Handler {
	want := []byte(rt.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r)
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="appfleet runtime"`)
			writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, "a valid runtime token is required (Authorization: Bearer <token>)", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func boolQuery(r *http.Request, key string) (bool, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(errInvalid, "query parameter %s: want true or false, got %q", key, v)
	}
	return b, nil
}

func (rt *Runtime) handlePut(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	allow, err := boolQuery(r, api.QueryAllowDataLoss)
	if err != nil {
		writeOpError(w, err)
		return
	}
	var ifMatch *int64
	if h := r.Header.Get(api.HeaderIfMatch); h != "" {
		g, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, api.CodeInvalid, fmt.Sprintf("%s: want a generation number, got %q", api.HeaderIfMatch, h), nil)
			return
		}
		ifMatch = &g
	}
	b, err := readStrictJSON(w, r, maxSpecBytes)
	if errors.As(err, new(*http.MaxBytesError)) {
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeInvalid, fmt.Sprintf("the body is larger than %d bytes", maxSpecBytes), nil)
		return
	}
	var req api.PutAppRequest
	if err == nil {
		err = decodeStrict(b, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeInvalid, fmt.Sprintf("app %q: the body is not a valid app request: %v", name, err), nil)
		return
	}
	v, created, err := rt.putApp(r.Context(), name, req, ifMatch, allow)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	respond(w, status, v, err)
}

func (rt *Runtime) handleBackup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	path, err := rt.backupApp(r.Context(), name)
	if err != nil {
		writeOpError(w, err)
		return
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		writeOpError(w, err)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	}
	w.Header().Set("Content-Type", "application/vnd.sqlite3")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.db"`, name))
	if _, err := io.Copy(w, f); err != nil {
		rt.log.Warn("send backup", "app", name, "error", err)
	}
}

func respond(w http.ResponseWriter, status int, v api.App, err error) {
	if err != nil {
		writeOpError(w, err)
		return
	}
	w.Header().Set(api.HeaderGeneration, `"`+strconv.FormatInt(v.Generation, 10)+`"`)
	writeJSON(w, status, v)
}

// writeOpError answers an operation's error. A 500 shows only a request id (writeInternal): its text
// may hold SQL or paths, which go to the log.
func writeOpError(w http.ResponseWriter, err error) {
	var oe *opError
	if errors.As(err, &oe) && oe.kind != errInternal {
		k := errKinds[oe.kind]
		writeError(w, k.status, k.code, oe.msg, oe.details)
		return
	}
	writeInternal(w, err)
}

func writeError(w http.ResponseWriter, status int, code, msg string, details []string) {
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg, Details: details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeInternal, Message: "encode answer: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
