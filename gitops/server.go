package gitops

import (
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/appfleet/appfleet/gitops/webhook"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AddrFile is the file in STATE_DIR/watch that holds the address the daemon's HTTP server listens on.
const AddrFile = "addr"

// Handler serves the daemon's HTTP API: webhooks, health, metrics, the status as JSON and as a page.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{source}", d.handleHook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.board.get().Ready {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: the branch has not been fetched and handled yet"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.board.get())
	})
	mux.HandleFunc("GET /{$}", d.handlePage)
	return mux
}

// Serve listens on addr (loopback unless told otherwise), records the address in STATE_DIR/watch/addr
// and serves Handler until the returned stop function is called.
func (d *Daemon) Serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	bound := ln.Addr().String()
	if err := os.WriteFile(filepath.Join(d.cfg.StateDir, "watch", AddrFile), []byte(bound+"\n"), 0o600); err != nil {
		ln.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "error", err)
		}
	}()
	d.log.Info("serving status, webhooks and metrics", "addr", "http://"+bound)
	return bound, func() {
		_ = srv.Close()
		<-done
	}, nil
}

// handleHook verifies a webhook and, for a push to the followed branch (or an event naming no branch),
// triggers a fetch at once. A request that does not verify triggers nothing and is answered 401.
func (d *Daemon) handleHook(w http.ResponseWriter, r *http.Request) {
	source := r.PathValue("source")
	push, err := webhook.Verify(source, d.cfg.WebhookSecret, r)
	switch {
	case errors.Is(err, webhook.ErrUnauthorized):
		d.log.Warn("webhook refused", "source", source, "remote", r.RemoteAddr, "error", err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if b := push.Branch(); push.Ref != "" && b != d.repo.Branch() {
		writeJSON(w, http.StatusAccepted, map[string]any{"triggered": false, "reason": "a push to " + push.Ref + ", not to the followed branch " + d.repo.Branch()})
		return
	}
	d.log.Info("webhook: fetching now", "source", source, "event", push.Event, "ref", push.Ref)
	d.kick(triggerWebhook)
	writeJSON(w, http.StatusAccepted, map[string]any{"triggered": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

//go:embed status.html
var pageText string

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t any) string {
		var tt time.Time
		switch v := t.(type) {
		case time.Time:
			tt = v
		case *time.Time:
			if v == nil {
				return ""
			}
			tt = *v
		}
		if tt.IsZero() {
			return ""
		}
		return time.Since(tt).Round(time.Second).String() + " ago"
	},
	"until": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return time.Until(*t).Round(time.Second).String()
	},
	"ms": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	// diffClass colours a line of a text plan by its first symbol.
	"diffClass": func(line string) string {
		switch t := strings.TrimLeft(line, " "); {
		case strings.HasPrefix(t, "+"):
			return "add"
		case strings.HasPrefix(t, "-/+"), strings.HasPrefix(t, "-"):
			return "del"
		case strings.HasPrefix(t, "~"), strings.HasPrefix(t, ">"):
			return "chg"
		}
		return ""
	},
	"lines": func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
	"appClass": func(a AppStatus) string {
		switch {
		case a.Status == "error" || a.Status == "absent" || a.Status == "unknown":
			return "bad"
		case len(a.Drift) > 0 && a.Policy != "ignore":
			return "warn"
		case a.Status == "running" || a.Status == "stopped":
			return "ok"
		}
		return "warn"
	},
}).Parse(pageText))

// handlePage renders the status page: no script, it refreshes itself.
func (d *Daemon) handlePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := page.Execute(w, d.board.get()); err != nil {
		d.log.Warn("render status page", "error", err)
	}
}
