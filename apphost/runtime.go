package apphost

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/registry"
	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/appfleet/appfleet/apphost/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Runtime.
type Config struct {
	// DataDir holds the registry, every app's SQLite database and the archive. Created with mode 0700.
	DataDir string
	// Name is shown in GET /v1/runtime; empty means the data dir's base name.
	Name string
	// Token is the management API's bearer token. Required.
	Token string
	// MaxApps bounds how many apps the runtime holds; creating one more is refused with 409. 0 means no bound.
	MaxApps int
	// MaxOpenDatabases bounds how many apps have their database open at once: opening one more first
	// hibernates the least recently used apps that no request is using. 0 derives it from the limit on
	// open files (DefaultMaxOpenDatabases).
	MaxOpenDatabases int
	// IdleTimeout is how long an app may go without a request before its database is closed; 0 never.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight after ctx ends (default 10s).
	ShutdownTimeout time.Duration
	// NoKeptAnswers stops apps on SQLite from keeping the answers to reads asked for twice until
	// their next write (store.KeepAnswers, DefaultKeptAnswers bytes per app).
	NoKeptAnswers bool
	// MaxRestoreBytes bounds the body of PUT /v1/apps/{name}/restore, checked while it streams in
	// (default DefaultMaxRestoreBytes).
	MaxRestoreBytes int64
	// Version is reported in GET /v1/runtime.
	Version string
	// MaxRunning bounds the handlers of app traffic that run at once over all apps (0: GOMAXPROCS);
	// requests beyond it wait for a turn, given to apps in fair order (admission.go).
	MaxRunning int
	// QueueDepth bounds each app's requests waiting for a turn (0: 128); QueueTimeout bounds each
	// wait (0: 5s). Past either the request is answered 503 with Retry-After.
	QueueDepth   int
	QueueTimeout time.Duration
	// ReadTimeout bounds how long a client may take to send a request's headers, and a record's body
	// (0: 10s). A client slower than that is answered 408, and holds nothing of its app meanwhile.
	ReadTimeout time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// DefaultMaxRestoreBytes is the largest snapshot a restore takes unless configured otherwise: 1 GiB.
const DefaultMaxRestoreBytes = 1 << 30

// Runtime hosts apps. Create it with New, serve it with Serve.
type Runtime struct {
	cfg       Config
	log       *slog.Logger
	reg       *registry.Registry
	lock      *runtimelock.Lock // held from New to Close: one runtime per data dir
	dataDir   string            // absolute
	id        string            // short random id of this data dir, part of PostgreSQL database names
	fpKey     []byte            // the secret of API-key fingerprints (fingerprint); never leaves the data dir
	startedAt time.Time
	metrics   *prometheus.Registry

	mu    sync.RWMutex // guards apps, hosts and claims only; never held during I/O
	apps  map[string]*app
	hosts map[string]*app // hostname -> the app its requests go to
	// claims are hostnames that a put in flight is about to give its app: no other app may take them.
	claims map[string]*app

	events       *eventHub      // nil until the registry is loaded: restoring apps is not a change
	mux          *http.ServeMux // the management API, health and metrics
	dataMux      *http.ServeMux // every app's data API, as paths without the /apps/{app} prefix
	sched        *scheduler
	stopSched    func()       // stops the scheduler's dispatcher (Close)
	openDBs      atomic.Int64 // apps whose database is open (app.setDB, app.closeDB)
	shuttingDown atomic.Bool
	// opsCtx ends when a shutdown gives up waiting: lifecycle operations, which outlive the request
	// that asked for them, end with it.
	opsCtx    context.Context
	cancelOps context.CancelFunc
	panics    atomic.Int64
}

// New opens (creating when needed) the data dir, takes its lock (runtimelock: a second runtime on the
// same dir gets a *runtimelock.HeldError naming the first), opens its registry and restores every app
// to its desired state. Apps' databases are opened lazily, on their first request.
func New(ctx context.Context, cfg Config) (rt *Runtime, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("a data dir is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("a token is required")
	}
	if cfg.Name == "" {
		abs, _ := filepath.Abs(cfg.DataDir)
		cfg.Name = filepath.Base(abs)
	}
	if cfg.MaxOpenDatabases <= 0 {
		cfg.MaxOpenDatabases = DefaultMaxOpenDatabases()
	}
	if cfg.MaxRestoreBytes <= 0 {
		cfg.MaxRestoreBytes = DefaultMaxRestoreBytes
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Nothing in the data dir is touched before the lock is ours: a second runtime must not archive,
	// clean up or open what the first one is using.
	lk, err := runtimelock.Acquire(dataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lk.Release()
		}
	}()
	for _, d := range []string{filepath.Join(cfg.DataDir, "apps"), filepath.Join(cfg.DataDir, "archive"), filepath.Join(cfg.DataDir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// Leftovers of backups and restores that a killed process did not finish.
	if ents, err := os.ReadDir(filepath.Join(cfg.DataDir, "tmp")); err == nil {
		for _, e := range ents {
			_ = os.RemoveAll(filepath.Join(cfg.DataDir, "tmp", e.Name()))
		}
	}
	reg, err := registry.Open(ctx, filepath.Join(cfg.DataDir, "registry.db"))
	if err != nil {
		return nil, err
	}
	rt = &Runtime{
		cfg: cfg, log: cfg.Logger, reg: reg, lock: lk, dataDir: dataDir, startedAt: time.Now(),
		apps: map[string]*app{}, hosts: map[string]*app{}, claims: map[string]*app{},
		sched: newScheduler(cfg.MaxRunning, cfg.QueueDepth, cfg.QueueTimeout),
	}
	if rt.id, err = reg.Meta(ctx, "runtime_id"); err == nil && rt.id == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		rt.id = hex.EncodeToString(b)
		err = reg.SetMeta(ctx, "runtime_id", rt.id)
	}
	if err == nil {
		rt.fpKey, err = fingerprintSecret(ctx, reg)
	}
	if err != nil {
		_ = reg.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := rt.reconcilePending(ctx); err != nil {
		_ = reg.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	entries, err := reg.Load(ctx)
	if err != nil {
		_ = reg.Close()
		return nil, err
	}
	for _, e := range entries {
		a := newApp(rt, e.Name)
		status := api.StatusStopped
		if wantsRunning(e.Spec) {
			status = api.StatusRunning
			a.closed = false // opened on the first request
		}
		a.setEntry(e, status, "")
		rt.apps[e.Name] = a
		for _, h := range e.Spec.Hostnames {
			if owner := rt.hosts[h]; owner != nil {
				// Claims are atomic, so only a registry written by an older runtime can hold this.
				rt.log.Warn("hostname claimed by two apps; it stays with the first", "hostname", h, "owner", owner.name, "app", e.Name)
				continue
			}
			rt.hosts[h] = a
		}
	}
	rt.opsCtx, rt.cancelOps = context.WithCancel(context.Background())
	rt.events = newEventHub(rt.startedAt)
	rt.metrics = newMetrics(rt)
	rt.mux = rt.routes()
	rt.dataMux = rt.dataRoutes()
	if rt.stopSched, err = rt.sched.pollBeforeDispatch(); err != nil {
		_ = reg.Close()
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	rt.log.Info("runtime ready", "apps", len(entries), "maxOpenDatabases", cfg.MaxOpenDatabases, "dataDir", dataDir, "instance", lk.Info().Instance)
	return rt, nil
}

// Serve answers HTTP on ln until ctx ends, then shuts down in this order: it stops accepting
// connections, cancels the context of every request in flight (a query or a row iteration stops at
// once), waits for the handlers within Config.ShutdownTimeout, cancels the lifecycle operations still
// running, and closes every database that no request or operation is using.
func (rt *Runtime) Serve(ctx context.Context, ln net.Listener) error {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           rt,
		ReadHeaderTimeout: rt.cfg.ReadTimeout,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(rt.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	if err := rt.lock.SetAddress(ln.Addr().String()); err != nil {
		rt.log.Warn("could not record the address in the data dir's lock file", "error", err)
	}
	srv.RegisterOnShutdown(rt.events.close)
	// Requests are cancelled from Shutdown's own hooks, which run once the listeners are closed: cancelled
	// first, a GET whose connection closed without an answer is retried by its client on a new connection,
	// and Shutdown then waits 5 s for that connection's first request.
	srv.RegisterOnShutdown(cancelRequests)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	stopReaper := rt.startReaper()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	rt.shuttingDown.Store(true)
	rt.log.Info("shutting down", "timeout", rt.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.cfg.ShutdownTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }() // closes the listeners, cancels requests, waits for handlers
	if err := <-shut; err != nil {
		rt.log.Warn("requests still in flight at the shutdown deadline; closing their connections", "error", err)
		_ = srv.Close()
	}
	rt.cancelOps()
	stopReaper()
	closeErr := rt.Close(context.WithoutCancel(ctx))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return closeErr
}

// closeGrace is how long Close waits for a database that a request or an operation still uses: they
// were cancelled, and an interrupted query returns within milliseconds.
const closeGrace = 3 * time.Second

// Close closes every app's database and the registry, and gives the data dir's lock up. A database
// still in use after closeGrace is left open rather than closed under its query: the process is
// about to end, and SQLite and PostgreSQL both roll back what was not committed.
func (rt *Runtime) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, closeGrace)
	defer cancel()
	busy := 0
	for _, a := range rt.snapshot() {
		if err := a.acquireIdleFirst(ctx); err != nil {
			busy++
			a.log.Warn("database still in use at shutdown; left open, its transaction is rolled back when the process ends")
			continue
		}
		a.closed = true
		a.closeDB()
		a.release()
	}
	rt.log.Info("databases closed", "leftOpen", busy)
	rt.stopSched()
	err := rt.reg.Close()
	return errors.Join(err, rt.lock.Release())
}

// Instance is the random id this runtime made at start: GET /v1/runtime reports it and the data dir's
// lock file records it.
func (rt *Runtime) Instance() string { return rt.lock.Info().Instance }

// makeRoom hibernates the least recently used apps when the open databases reach
// Config.MaxOpenDatabases, so that a's database can be opened without running out of file
// descriptors. It frees a sixteenth of the bound at once, so that waking apps in turn does not scan
// every app for each wake. Apps in use are skipped: the bound can be exceeded by the apps serving
// requests at this instant, never by idle ones.
func (rt *Runtime) makeRoom(a *app) {
	limit := int64(rt.cfg.MaxOpenDatabases)
	if rt.openDBs.Load() < limit {
		return
	}
	type cand struct {
		a    *app
		used int64
	}
	var cands []cand
	rt.mu.RLock()
	for _, o := range rt.apps {
		if o != a && o.dbOpen.Load() && o.inFlight.Load() == 0 {
			cands = append(cands, cand{o, o.lastUsed.Load()})
		}
	}
	rt.mu.RUnlock()
	slices.SortFunc(cands, func(x, y cand) int { return cmp.Compare(x.used, y.used) })
	want := max(1, limit/16)
	n := int64(0)
	for _, c := range cands {
		if n >= want {
			break
		}
		if c.a.hibernate(math.MaxInt64) {
			n++
		}
	}
	if n > 0 {
		rt.log.Debug("hibernated the least recently used apps to stay within the open databases bound", "count", n, "bound", limit)
	}
}

// fdsPerDatabase is what one open app database costs in file descriptors: an SQLite file, its
// write-ahead log and its shared-memory index (a PostgreSQL connection costs one).
const fdsPerDatabase = 3

// fdReserve is kept for everything else: listeners, client connections, the registry, backups. Under a
// large limit an eighth of it is kept instead, so that a runtime whose databases fill their share still
// has room for its clients' connections.
const fdReserve = 256

// DefaultMaxOpenDatabases is the bound on open app databases that fits the process's limit on open
// files (after RaiseOpenFileLimit): what is left after the reserve, fdsPerDatabase each, at least 16.
func DefaultMaxOpenDatabases() int { return maxOpenDatabasesFor(openFileLimit()) }

// maxOpenDatabasesFor is DefaultMaxOpenDatabases for a limit of n open files.
func maxOpenDatabasesFor(n int) int { return max(16, (n-max(fdReserve, n/8))/fdsPerDatabase) }

// startReaper starts the one goroutine that hibernates idle apps.
func (rt *Runtime) startReaper() func() {
	idle := rt.cfg.IdleTimeout
	if idle <= 0 {
		return func() {}
	}
	tick := min(max(idle/4, 50*time.Millisecond), 30*time.Second)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				cutoff := now.Add(-idle).UnixNano()
				n := 0
				for _, a := range rt.snapshot() {
					if a.hibernate(cutoff) {
						n++
					}
				}
				if n > 0 {
					rt.log.Debug("hibernated idle apps", "count", n)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (rt *Runtime) snapshot() []*app {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	out := make([]*app, 0, len(rt.apps))
	for _, a := range rt.apps {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *app) int {
		if x.name < y.name {
			return -1
		}
		if x.name > y.name {
			return 1
		}
		return 0
	})
	return out
}

func (rt *Runtime) lookup(name string) *app {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.apps[name]
}

func (rt *Runtime) appDir(name string) string { return filepath.Join(rt.cfg.DataDir, "apps", name) }

func (rt *Runtime) appDBPath(name string) string { return filepath.Join(rt.appDir(name), "app.db") }

// openStore opens an app's database, creating it when create is true; a database just created must be
// closed once its schema is built (store.CreateNew).
func (rt *Runtime) openStore(ctx context.Context, name string, e registry.Entry, create bool) (store.Conn, error) {
	if driverOf(e.Spec) == "postgres" {
		return store.OpenPostgres(ctx, pgTarget(e), create)
	}
	if create {
		if err := os.MkdirAll(rt.appDir(name), 0o700); err != nil {
			return nil, err
		}
	}
	mode := store.OpenExisting
	if create {
		mode = store.CreateNew
	}
	c, err := store.OpenSQLite(rt.appDBPath(name), mode)
	if err == nil && !rt.cfg.NoKeptAnswers {
		store.KeepAnswers(c, store.DefaultKeptAnswers)
	}
	return c, err
}

func pgTarget(e registry.Entry) store.PGTarget {
	t := store.PGTarget{Isolation: isolationOf(e.Spec), Name: e.Storage}
	if e.Spec.Database.DSN != nil {
		t.DSN = e.Spec.Database.DSN.Value
	}
	return t
}

// runtimeInfo is the body of GET /v1/runtime.
func (rt *Runtime) runtimeInfo() api.Runtime {
	counts := map[string]int{"total": 0}
	for _, a := range rt.snapshot() {
		counts[a.current().status]++
		counts["total"]++
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return api.Runtime{
		Name:          rt.cfg.Name,
		Version:       rt.cfg.Version,
		Instance:      rt.Instance(),
		DataDir:       rt.dataDir,
		StartedAt:     rt.startedAt.UTC(),
		UptimeSeconds: time.Since(rt.startedAt).Seconds(),
		Apps:          counts,
		MemoryBytes:   residentBytes(ms),
	}
}

// residentBytes is the process's resident set size where the system reports it, else what Go holds.
func residentBytes(ms runtime.MemStats) uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, rss uint64
		if _, err := fmt.Sscan(string(b), &size, &rss); err == nil {
			return rss * uint64(os.Getpagesize())
		}
	}
	return ms.Sys
}
