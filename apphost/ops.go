package apphost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/registry"
	"github.com/appfleet/appfleet/apphost/store"
	"github.com/appfleet/appfleet/spec"
)

// errKind is what went wrong with an operation, in the runtime's own terms. Operations never speak
// HTTP: errKinds maps each kind to the status and code the management API answers with.
type errKind int

// The kinds of failed operations.
const (
	errInvalid   errKind = iota + 1 // the request or spec is not valid
	errTooLarge                     // a body is over its bound
	errNotFound                     // the app does not exist
	errConflict                     // If-Match does not match, or a hostname belongs to another app
	errDataLoss                     // the change loses data and the request did not allow it
	errLimit                        // the runtime holds its maximum of apps
	errMigration                    // the schema change could not run; the app keeps its accepted spec
	errBusy                         // the app's lifecycle could not take its database in time
	errDiskFull                     // the runtime's disk is full; nothing was written
	errInternal                     // a failure inside the runtime; the answer shows a request id only
)

// errKinds is the one table from a failed operation to its HTTP answer (api/types.go lists the codes).
var errKinds = map[errKind]struct {
	status int
	code   string
}{
	errInvalid:   {http.StatusBadRequest, api.CodeInvalid},
	errTooLarge:  {http.StatusRequestEntityTooLarge, api.CodeInvalid},
	errNotFound:  {http.StatusNotFound, api.CodeNotFound},
	errConflict:  {http.StatusConflict, api.CodeConflict},
	errDataLoss:  {http.StatusConflict, api.CodeDataLoss},
	errLimit:     {http.StatusConflict, api.CodeLimitExceeded},
	errMigration: {http.StatusUnprocessableEntity, api.CodeMigrationFailed},
	errBusy:      {http.StatusServiceUnavailable, api.CodeUnavailable},
	errDiskFull:  {http.StatusInsufficientStorage, api.CodeDiskFull},
	errInternal:  {http.StatusInternalServerError, api.CodeInternal},
}

// opError is a failed operation: its kind, a message for people and one line per problem.
type opError struct {
	kind    errKind
	msg     string
	details []string
}

func (e *opError) Error() string { return e.msg }

func errorf(kind errKind, format string, args ...any) *opError {
	return &opError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func notFound(name string) *opError {
	return errorf(errNotFound, "app %q does not exist", name)
}

// lifecycleTimeout bounds a lifecycle operation's wait for requests and its database work.
const lifecycleTimeout = 5 * time.Minute

// lifecycleContext is the context of a lifecycle operation: it does not end when the client that
// asked goes away, so an operation never stops halfway for that, but it ends after lifecycleTimeout
// and when a shutdown stops waiting for it (its transaction then rolls back).
func (rt *Runtime) lifecycleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycleTimeout)
	stop := context.AfterFunc(rt.opsCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// gone reports, under opMu, that the app no longer exists or does not exist yet: deleted while the
// caller waited, or the placeholder of a create in flight (or of one that is about to be refused).
func (a *app) gone() bool { return a.deleted || a.current().entry.Generation == 0 }

// getOrCreate returns the app, adding a pending one when the name is new.
func (rt *Runtime) getOrCreate(name string) *app {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if a, ok := rt.apps[name]; ok {
		return a
	}
	a := newApp(rt, name)
	rt.apps[name] = a
	return a
}

// appCount is the number of apps the runtime knows, creates in flight included.
func (rt *Runtime) appCount() int {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return len(rt.apps)
}

// forget removes the app from the maps; the caller holds its opMu.
func (rt *Runtime) forget(a *app) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.apps[a.name] == a {
		delete(rt.apps, a.name)
	}
	for h, owner := range rt.hosts {
		if owner == a {
			delete(rt.hosts, h)
		}
	}
	a.deleted = true
	rt.events.deleted(a)
}

func (rt *Runtime) setHosts(a *app, hostnames []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for h, owner := range rt.hosts {
		if owner == a {
			delete(rt.hosts, h)
		}
	}
	for _, h := range hostnames {
		rt.hosts[h] = a
	}
}

// claimHosts reserves hostnames for a while a put of it runs: it fails with 409 when another app owns
// or is claiming one of them. The returned function gives the claims up.
func (rt *Runtime) claimHosts(a *app, hostnames []string) (func(), error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, h := range hostnames {
		if owner := rt.hosts[h]; owner != nil && owner != a {
			return nil, errorf(errConflict, "hostname %q already belongs to app %q", h, owner.name)
		}
		if owner := rt.claims[h]; owner != nil && owner != a {
			return nil, errorf(errConflict, "hostname %q is being claimed by app %q", h, owner.name)
		}
	}
	for _, h := range hostnames {
		rt.claims[h] = a
	}
	return func() {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		for _, h := range hostnames {
			if rt.claims[h] == a {
				delete(rt.claims, h)
			}
		}
	}, nil
}

func (rt *Runtime) hostOwner(h string) *app {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.hosts[h]
}

// storedSpec is the spec as the registry keeps it: API keys as salted hashes, the DSN as its value.
// A key sent as its fingerprint or a DSN sent as its hash keeps the value it stands for, so a spec read
// back from GET can be PUT again.
func (rt *Runtime) storedSpec(name string, in spec.AppSpec, cur spec.AppSpec) (spec.AppSpec, error) {
	out := in
	if in.APIKeys != nil {
		out.APIKeys = make([]spec.APIKey, len(in.APIKeys))
		for i, k := range in.APIKeys {
			h := rt.keyHash(k.Value.SHA256, cur)
			if k.Value.Value != "" {
				h = spec.SecretHash(name, k.Value.Value)
			}
			out.APIKeys[i] = spec.APIKey{Name: k.Name, Value: spec.SecretRef{SHA256: h}}
		}
	}
	if in.Database.DSN != nil {
		dsn := spec.SecretRef{Value: in.Database.DSN.Value}
		if dsn.Value == "" {
			if cur.Database.DSN == nil || spec.SecretHash(name, cur.Database.DSN.Value) != in.Database.DSN.SHA256 {
				return out, errors.New("database.dsn: send the DSN's value; a hash stands only for the DSN the app already has")
			}
			dsn.Value = cur.Database.DSN.Value
		}
		out.Database.DSN = &dsn
	}
	return out, nil
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func dsnOf(s spec.AppSpec) string {
	if s.Database.DSN == nil {
		return ""
	}
	return s.Database.DSN.Value
}

// pgStorageName is the PostgreSQL database or schema of a new app: unique per data dir, at most 63 bytes.
func (rt *Runtime) pgStorageName(name string) string {
	n := "af_" + rt.id + "_" + strings.ReplaceAll(name, "-", "_")
	if len(n) > 63 {
		sum := sha256.Sum256([]byte(name))
		n = n[:50] + "_" + hex.EncodeToString(sum[:4])
	}
	return n
}

// putApp creates or updates an app. It returns the app and whether it was created.
func (rt *Runtime) putApp(ctx context.Context, name string, req api.PutAppRequest, ifMatch *int64, allowLoss bool) (api.App, bool, error) {
	if probs := validateSpec(name, req.Spec); len(probs) > 0 {
		return api.App{}, false, &opError{errInvalid, fmt.Sprintf("app %q: the spec is not valid", name), probs}
	}
	ctx, cancel := rt.lifecycleContext(ctx)
	defer cancel()
	for {
		a := rt.getOrCreate(name)
		a.opMu.Lock()
		if a.deleted {
			a.opMu.Unlock()
			continue
		}
		v, created, err := rt.putLocked(ctx, a, req, ifMatch, allowLoss)
		a.opMu.Unlock()
		return v, created, err
	}
}

func (rt *Runtime) putLocked(ctx context.Context, a *app, req api.PutAppRequest, ifMatch *int64, allowLoss bool) (api.App, bool, error) {
	cur := a.current()
	isNew := cur.entry.Generation == 0
	fail := func(err error) (api.App, bool, error) {
		if isNew {
			rt.forget(a)
		}
		return api.App{}, false, err
	}
	if ifMatch != nil && *ifMatch != cur.entry.Generation {
		return fail(errorf(errConflict, "app %q is at generation %d, not %d; observe it again and re-plan", a.name, cur.entry.Generation, *ifMatch))
	}
	if isNew && rt.cfg.MaxApps > 0 {
		// The count includes this app's placeholder and those of other creates in flight, so the limit
		// holds under concurrency (at worst a create near the limit is refused and can be retried).
		if n := rt.appCount(); n > rt.cfg.MaxApps {
			return fail(errorf(errLimit, "the runtime holds its maximum of %d apps; raise the environment's runtime.maxApps or delete an app", rt.cfg.MaxApps))
		}
	}
	stored, err := rt.storedSpec(a.name, req.Spec, cur.entry.Spec)
	if err != nil {
		return fail(&opError{errInvalid, fmt.Sprintf("app %q: the spec is not valid", a.name), []string{err.Error()}})
	}
	// Hostnames are claimed before anything else is done, atomically with the check that nobody else
	// owns or claims them, and released at the end (routed to the app if the put succeeded).
	release, err := rt.claimHosts(a, stored.Hostnames)
	if err != nil {
		return fail(err)
	}
	defer release()
	now := time.Now().UTC()
	entry := registry.Entry{
		Name: a.name, Labels: req.Labels, Spec: stored, Generation: cur.entry.Generation,
		Storage: cur.entry.Storage, CreatedAt: cur.entry.CreatedAt, UpdatedAt: now,
	}
	if isNew {
		entry.CreatedAt = now
	}
	specChanged := isNew || !sameJSON(cur.entry.Spec, stored)
	if !specChanged && cur.status != api.StatusError {
		if !maps.Equal(cur.entry.Labels, req.Labels) {
			if err := rt.reg.Put(ctx, entry); err != nil {
				return fail(errorf(errInternal, "%v", err))
			}
			a.setEntry(entry, cur.status, "")
		} else if cur.err != "" {
			a.setStatus(cur.status, "") // the refused change it tells of is no longer asked for
		}
		return a.view(), false, nil
	}

	dbChanged := !isNew && (driverOf(cur.entry.Spec) != driverOf(stored) ||
		(driverOf(stored) == spec.DriverPostgres && isolationOf(cur.entry.Spec) != isolationOf(stored)))
	if !allowLoss && !isNew {
		var lines []string
		if dbChanged {
			lines = append(lines, fmt.Sprintf("database: %s/%s -> %s/%s (the app starts empty; its data is archived)",
				driverOf(cur.entry.Spec), isolationOf(cur.entry.Spec), driverOf(stored), isolationOf(stored)))
		} else {
			for _, ch := range store.PlanMigration(cur.dial, cur.entry.Spec.Collections, stored.Collections) {
				if ch.DataLoss {
					lines = append(lines, ch.String())
				}
			}
		}
		if len(lines) > 0 {
			return fail(&opError{errDataLoss,
				fmt.Sprintf("app %q: the change loses data; repeat it with ?%s=true to allow that", a.name, api.QueryAllowDataLoss), lines})
		}
	}
	switch {
	case driverOf(stored) == spec.DriverSQLite:
		entry.Storage = ""
	case isNew || dbChanged || entry.Storage == "":
		entry.Storage = rt.pgStorageName(a.name)
	}
	if specChanged {
		entry.Generation++
	}

	// The database work: requests wait for the semaphore or see "migrating" and get 503.
	a.setStatus(api.StatusMigrating, "")
	if err := a.acquire(ctx); err != nil {
		a.setStatus(cur.status, cur.err)
		return fail(errorf(errBusy, "app %q is busy: %v", a.name, err))
	}
	defer a.release()
	wasClosed := a.closed
	a.closed = true
	restore := func() { a.closed = wasClosed; a.setStatus(cur.status, cur.err) }

	if dbChanged {
		a.closeDB()
		if err := rt.archiveStorage(ctx, a.name, cur.entry, false); err != nil {
			restore()
			return fail(errorf(errInternal, "app %q: archive the old database: %v", a.name, err))
		}
	}
	newDSN := dsnOf(cur.entry.Spec) != dsnOf(stored)
	if a.db != nil && newDSN {
		a.closeDB() // a new DSN: reconnect with it
	}
	// keepServing undoes a change that could not be made: the app goes on serving its accepted spec,
	// in the state it was in, and shows why the change was not made.
	keepServing := func(why string) {
		if newDSN {
			a.closeDB() // connected with the refused DSN; the next request reconnects with the accepted one
		}
		a.closed = wasClosed
		a.setStatus(cur.status, why)
		a.log.Warn("change refused; the app keeps its accepted spec", "generation", cur.entry.Generation, "refused", entry.Generation, "error", why)
	}
	if a.db == nil {
		rt.makeRoom(a)
		var c store.Conn
		var err error
		if isNew || dbChanged {
			err = rt.clearOrphan(ctx, a.name, entry)
		}
		if err == nil {
			c, err = rt.openStore(ctx, a.name, entry, isNew || dbChanged)
		}
		if err != nil {
			if isNew {
				return fail(errorf(errMigration, "app %q: create its database: %v", a.name, err))
			}
			a.closed = true
			a.setStatus(api.StatusError, "open database: "+err.Error())
			return fail(errorf(errMigration, "app %q: open its database: %v", a.name, err))
		}
		a.setDB(c)
	}
	// The registry learns of the migration before the database changes, and the migration records its
	// generation in the database in its own transaction: a crash between the two commits is healed at
	// the next start (reconcilePending), whichever side it left behind.
	if err := rt.reg.PutPending(ctx, entry); err != nil {
		if isNew {
			a.closeDB()
			rt.purgeNew(ctx, a.name, entry)
			return fail(storageError(a.name, err))
		}
		keepServing(err.Error())
		return api.App{}, false, storageError(a.name, err)
	}
	changes, err := store.MigrateTo(ctx, a.db, stored.Collections, store.MigrateOptions{
		AllowDataLoss: allowLoss || isNew || dbChanged, Generation: entry.Generation,
	})
	if err != nil {
		if derr := rt.reg.DropPending(context.WithoutCancel(ctx), a.name); derr != nil {
			a.log.Warn("forget the failed migration in the registry; the next start does", "error", derr)
		}
		var dl *store.DataLossError
		if errors.As(err, &dl) {
			// The accepted spec and the database disagreed; the database is the truth.
			restore()
			return fail(&opError{errDataLoss,
				fmt.Sprintf("app %q: the change loses data; repeat it with ?%s=true to allow that", a.name, api.QueryAllowDataLoss), dl.Details()})
		}
		if isNew {
			a.closeDB()
			rt.purgeNew(ctx, a.name, entry)
			return fail(migrationError(a.name, err, ""))
		}
		if dbChanged {
			// The old database is archived already: there is nothing left to serve.
			a.closeDB()
			a.closed = true
			a.setStatus(api.StatusError, err.Error())
			return api.App{}, false, migrationError(a.name, err, "")
		}
		why := fmt.Sprintf("generation %d was not applied: %v", entry.Generation, err)
		keepServing(why)
		return api.App{}, false, migrationError(a.name, err, fmt.Sprintf("; it keeps serving generation %d with its schema and data untouched", cur.entry.Generation))
	}
	a.verified = true
	crashPoint("after-migrate")
	note := ""
	if err := rt.reg.Put(ctx, entry); err != nil {
		// The database holds the new schema and records the generation, and the registry the pending
		// entry: the change is made, and the next start records it.
		note = fmt.Sprintf("generation %d is applied but the registry could not record it (%v); the next start will", entry.Generation, err)
		a.log.Error("save the accepted spec in the registry", "generation", entry.Generation, "error", err)
	}
	for _, ch := range changes {
		a.log.Info("migrated", "change", ch.String(), "generation", entry.Generation)
	}
	rt.setHosts(a, stored.Hostnames)
	if isNew || dbChanged {
		// A new database was built without fsyncs and is reopened durable on the first request; and a
		// new app opens its database only then, so creating many apps costs no memory.
		a.closeDB()
	}
	if wantsRunning(stored) {
		a.closed = false
		a.setEntry(entry, api.StatusRunning, note)
	} else {
		a.closeDB()
		a.closed = true
		a.setEntry(entry, api.StatusStopped, note)
	}
	return a.view(), isNew, nil
}

// migrationError is the answer to a schema change that could not run.
func migrationError(name string, err error, tail string) error {
	if store.IsDiskFull(err) {
		return errorf(errDiskFull, "app %q: the runtime's disk is full; the change was not made%s. Free space on the runtime's disk and retry", name, tail)
	}
	return errorf(errMigration, "app %q: %v%s", name, err, tail)
}

// storageError is the answer to a write of the runtime's own files that failed.
func storageError(name string, err error) error {
	if store.IsDiskFull(err) {
		return errorf(errDiskFull, "app %q: the runtime's disk is full; the change was not made. Free space on the runtime's disk and retry", name)
	}
	return errorf(errInternal, "app %q: %v", name, err)
}

// clearOrphan moves aside data found where a database is about to be created (left by a delete that
// was killed between the registry and the archive, or whose archive failed), so a new database never
// inherits it. When that data cannot be moved, the database must not be created.
func (rt *Runtime) clearOrphan(ctx context.Context, name string, e registry.Entry) error {
	if driverOf(e.Spec) == spec.DriverPostgres {
		t := pgTarget(e)
		exists, err := store.PostgresExists(ctx, t)
		if err != nil || !exists {
			return err
		}
		archived, err := rt.archivePostgres(ctx, name, name+"-orphan", e)
		if err != nil {
			return fmt.Errorf("move aside the %s %q left by an earlier app: %w", isolationOf(e.Spec), t.Name, err)
		}
		rt.log.Warn("moved leftover data of an unregistered app aside", "app", name, "archivedAs", archived)
		return nil
	}
	if _, err := os.Stat(rt.appDir(name)); err != nil {
		return nil
	}
	dst := rt.archiveDir(name + "-orphan")
	if err := os.Rename(rt.appDir(name), dst); err != nil {
		return fmt.Errorf("move aside the data left by an earlier app: %w", err)
	}
	rt.log.Warn("moved leftover data of an unregistered app to the archive", "app", name, "archive", dst)
	return nil
}

// purgeNew removes what a failed create made.
func (rt *Runtime) purgeNew(ctx context.Context, name string, e registry.Entry) {
	if driverOf(e.Spec) == spec.DriverPostgres {
		if err := store.PurgePostgres(ctx, pgTarget(e)); err != nil {
			rt.log.Warn("remove the database of a failed create", "app", name, "error", err)
		}
		return
	}
	_ = os.RemoveAll(rt.appDir(name))
}

func (rt *Runtime) archiveDir(prefix string) string {
	base := filepath.Join(rt.cfg.DataDir, "archive", prefix+"-"+time.Now().UTC().Format("20060102T150405Z"))
	dir := base
	for i := 2; ; i++ {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return dir
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

// archiveStorage moves an app's data out of the way (or removes it when purge). SQLite files move to
// DATA_DIR/archive/<name>-<timestamp>/; a PostgreSQL database or schema is renamed and the new name
// recorded there.
func (rt *Runtime) archiveStorage(ctx context.Context, name string, e registry.Entry, purge bool) error {
	if driverOf(e.Spec) == spec.DriverPostgres {
		t := pgTarget(e)
		if purge {
			return store.PurgePostgres(ctx, t)
		}
		_, err := rt.archivePostgres(ctx, name, name, e)
		return err
	}
	if purge {
		return os.RemoveAll(rt.appDir(name))
	}
	if _, err := os.Stat(rt.appDir(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	dst := rt.archiveDir(name)
	if err := os.Rename(rt.appDir(name), dst); err != nil {
		return err
	}
	note, _ := json.MarshalIndent(map[string]any{"driver": "sqlite", "spec": e.Spec.Redacted(name)}, "", "  ")
	return os.WriteFile(filepath.Join(dst, "archive.json"), note, 0o600)
}

// archivePostgres renames the app's PostgreSQL database or schema to a name of its own and records that
// name in DATA_DIR/archive/<prefix>-<timestamp>/archive.json. It returns the new name.
func (rt *Runtime) archivePostgres(ctx context.Context, name, prefix string, e registry.Entry) (string, error) {
	t := pgTarget(e)
	dst := rt.archiveDir(prefix)
	archived, err := store.ArchivePostgres(ctx, t, t.Name+"_"+time.Now().UTC().Format("20060102150405"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return archived, err
	}
	note, _ := json.MarshalIndent(map[string]any{"driver": "postgres", "isolation": t.Isolation, "archivedAs": archived, "spec": e.Spec.Redacted(name)}, "", "  ")
	return archived, os.WriteFile(filepath.Join(dst, "archive.json"), note, 0o600)
}

// lockApp finds an app and takes its operation lock; it answers 404 for an app that does not exist or
// whose create is still in flight or which was deleted meanwhile. The caller runs unlock when done.
func (rt *Runtime) lockApp(name string) (*app, func(), error) {
	a := rt.lookup(name)
	if a == nil {
		return nil, nil, notFound(name)
	}
	a.opMu.Lock()
	if a.gone() {
		a.opMu.Unlock()
		return nil, nil, notFound(name)
	}
	return a, a.opMu.Unlock, nil
}

// startApp brings an app to running and records that as its desired state.
func (rt *Runtime) startApp(ctx context.Context, name string) (api.App, error) {
	a, unlock, err := rt.lockApp(name)
	if err != nil {
		return api.App{}, err
	}
	defer unlock()
	ctx, cancel := rt.lifecycleContext(ctx)
	defer cancel()
	cur := a.current()
	if cur.status == api.StatusRunning && cur.entry.Spec.State != spec.StateStopped {
		return a.view(), nil
	}
	a.setStatus(api.StatusStarting, "")
	if err := a.acquire(ctx); err != nil {
		a.setStatus(cur.status, cur.err)
		return api.App{}, errorf(errBusy, "app %q is busy: %v", name, err)
	}
	err = a.openVerified(ctx, cur)
	if err == nil {
		a.closed = false
	}
	a.release()
	if err != nil {
		a.setStatus(api.StatusError, err.Error())
		return api.App{}, errorf(errInternal, "app %q cannot start: %v", name, err)
	}
	entry := cur.entry
	if entry.Spec.State == spec.StateStopped {
		entry.Spec.State = spec.StateRunning
		entry.UpdatedAt = time.Now().UTC()
		if err := rt.reg.Put(ctx, entry); err != nil {
			return api.App{}, errorf(errInternal, "%v", err)
		}
	}
	a.setEntry(entry, api.StatusRunning, "")
	return a.view(), nil
}

// openVerified opens the database when closed and checks that its tables match the accepted spec;
// the caller holds sem.
func (a *app) openVerified(ctx context.Context, st *appState) error {
	if a.db == nil {
		a.rt.makeRoom(a)
		c, err := a.rt.openStore(ctx, a.name, st.entry, false)
		if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		a.setDB(c)
	}
	if !a.verified {
		if _, err := store.Migrate(ctx, a.db, st.entry.Spec.Collections, false); err != nil {
			a.closeDB()
			return err
		}
		a.verified = true
	}
	a.lastUsed.Store(time.Now().UnixNano())
	return nil
}

// stopApp waits for the request using the database, closes it and records stopped as the desired state.
func (rt *Runtime) stopApp(ctx context.Context, name string) (api.App, error) {
	a, unlock, err := rt.lockApp(name)
	if err != nil {
		return api.App{}, err
	}
	defer unlock()
	ctx, cancel := rt.lifecycleContext(ctx)
	defer cancel()
	cur := a.current()
	if cur.status == api.StatusStopped && cur.entry.Spec.State == spec.StateStopped {
		return a.view(), nil
	}
	a.setStatus(api.StatusStopping, "")
	if err := a.acquire(ctx); err != nil {
		a.setStatus(cur.status, cur.err)
		return api.App{}, errorf(errBusy, "app %q is busy: %v", name, err)
	}
	a.closed = true
	a.closeDB()
	a.release()
	entry := cur.entry
	entry.Spec.State = spec.StateStopped
	entry.UpdatedAt = time.Now().UTC()
	if err := rt.reg.Put(ctx, entry); err != nil {
		return api.App{}, errorf(errInternal, "%v", err)
	}
	a.setEntry(entry, api.StatusStopped, "")
	return a.view(), nil
}

// deleteApp stops the app, removes it from the registry and archives (or purges) its data.
func (rt *Runtime) deleteApp(ctx context.Context, name string, purge bool) error {
	a, unlock, err := rt.lockApp(name)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := rt.lifecycleContext(ctx)
	defer cancel()
	cur := a.current()
	a.setStatus(api.StatusStopping, "")
	if err := a.acquire(ctx); err != nil {
		a.setStatus(cur.status, cur.err)
		return errorf(errBusy, "app %q is busy: %v", name, err)
	}
	a.closed = true
	a.closeDB()
	a.release()
	// Registry first: a kill between the two leaves an orphan directory that the next create moves
	// aside, never a registered app without its data.
	if err := rt.reg.Delete(ctx, name); err != nil {
		a.setStatus(api.StatusError, err.Error())
		return errorf(errInternal, "%v", err)
	}
	rt.forget(a)
	if err := rt.archiveStorage(ctx, name, cur.entry, purge); err != nil {
		a.log.Error("archive data of deleted app", "error", err)
		return errorf(errInternal, "app %q was deleted but its data could not be archived: %v", name, err)
	}
	a.log.Info("app deleted", "purged", purge)
	return nil
}

// backupApp writes a consistent snapshot of the app's data to a temporary SQLite file and returns its path.
func (rt *Runtime) backupApp(ctx context.Context, name string) (string, error) {
	a, unlock, err := rt.lockApp(name)
	if err != nil {
		return "", err
	}
	defer unlock()
	st := a.current()
	tmp, err := rt.tempPath("backup-" + name)
	if err != nil {
		return "", err
	}
	if driverOf(st.entry.Spec) == spec.DriverSQLite {
		var unshare func()
		if unshare, err = a.shareDB(ctx); err == nil {
			err = store.BackupSQLite(ctx, rt.appDBPath(name), tmp)
			unshare()
		}
	} else {
		err = rt.backupPostgres(ctx, st, tmp)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", errorf(errInternal, "app %q: back up: %v", name, err)
	}
	return tmp, nil
}

// backupPostgres copies the app's tables, read in one repeatable-read transaction, into a SQLite file:
// one snapshot format for both drivers, so an app can move between them.
func (rt *Runtime) backupPostgres(ctx context.Context, st *appState, dst string) error {
	src, err := store.OpenPostgres(ctx, pgTarget(st.entry), false)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return err
	}
	defer func() { _, _ = src.Exec(context.WithoutCancel(ctx), "ROLLBACK") }()
	cols, _, err := store.RecordedCollections(ctx, src)
	if err != nil {
		return err
	}
	out, err := store.OpenSQLite(dst, store.CreateNew)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := store.Migrate(ctx, out, cols, true); err != nil {
		return err
	}
	return store.InTx(ctx, out, func() error { return store.CopyData(ctx, src, out, cols) })
}

// buildFromSnapshot makes a new database for the app's accepted spec in the temporary directory and
// copies the records of a verified snapshot file into it. It returns the new file's path.
func (rt *Runtime) buildFromSnapshot(ctx context.Context, st *appState, snapPath string) (string, error) {
	path, err := rt.tempPath("restore-built-" + st.entry.Name)
	if err != nil {
		return "", err
	}
	c, err := store.OpenSQLite(path, store.OpenOrCreate)
	if err == nil {
		_, err = store.MigrateTo(ctx, c, st.entry.Spec.Collections, store.MigrateOptions{Generation: st.entry.Generation})
		if err == nil {
			err = store.CopySQLiteFile(ctx, c, snapPath, st.entry.Spec.Collections)
		}
		err = errors.Join(err, c.Close())
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

func (rt *Runtime) tempPath(prefix string) (string, error) {
	f, err := os.CreateTemp(filepath.Join(rt.cfg.DataDir, "tmp"), prefix+"-*.db")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_ = f.Close()
	return name, os.Remove(name) // VACUUM INTO and SQLite want to create the file themselves
}

// restoreApp replaces the app's data with a snapshot read from body.
func (rt *Runtime) restoreApp(ctx context.Context, name string, body io.Reader, allowLoss bool) (api.App, error) {
	a := rt.lookup(name)
	if a == nil {
		return api.App{}, notFound(name)
	}
	tmp, err := rt.tempPath("restore-" + name)
	if err != nil {
		return api.App{}, err
	}
	defer os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return api.App{}, err
	}
	// The bound is checked while the body streams in, so an endless body never fills the disk.
	_, err = io.Copy(f, io.LimitReader(body, rt.cfg.MaxRestoreBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if store.IsDiskFull(err) {
			return api.App{}, storageError(name, err)
		}
		return api.App{}, errorf(errInvalid, "read snapshot: %v", err)
	}
	if fi, err := os.Stat(tmp); err == nil && fi.Size() > rt.cfg.MaxRestoreBytes {
		return api.App{}, errorf(errTooLarge,
			"app %q: the snapshot is larger than this runtime takes (%d bytes; see runtime serve --max-restore-size)", name, rt.cfg.MaxRestoreBytes)
	}
	ctx, cancel := rt.lifecycleContext(ctx)
	defer cancel()
	a.opMu.Lock()
	defer a.opMu.Unlock()
	if a.gone() {
		return api.App{}, notFound(name)
	}
	st := a.current()
	snap, err := store.CheckSQLite(ctx, tmp)
	if err != nil {
		return api.App{}, errorf(errInvalid, "app %q: the body is not a usable snapshot: %v", name, err)
	}
	snapClosed := false
	defer func() {
		if !snapClosed {
			_ = snap.Close()
		}
	}()
	snapCols, ok, err := store.RecordedCollections(ctx, snap)
	if err != nil || !ok {
		return api.App{}, errorf(errInvalid, "app %q: the body is not a snapshot of an appfleet app", name)
	}
	probs, err := store.VerifySnapshot(ctx, snap, snapCols)
	if err != nil {
		return api.App{}, errorf(errInvalid, "app %q: the body is not a usable snapshot: %v", name, err)
	}
	if len(probs) > 0 {
		return api.App{}, &opError{errInvalid,
			fmt.Sprintf("app %q: the snapshot is not one this runtime could have written; nothing was changed", name), probs}
	}
	if _, err := store.Migrate(ctx, snap, st.entry.Spec.Collections, allowLoss); err != nil {
		var dl *store.DataLossError
		if errors.As(err, &dl) {
			return api.App{}, &opError{errDataLoss,
				fmt.Sprintf("app %q: the snapshot holds data this app's collections cannot keep; repeat with ?%s=true to drop it", name, api.QueryAllowDataLoss), dl.Details()}
		}
		return api.App{}, errorf(errInvalid, "app %q: the snapshot does not fit the app's collections: %v", name, err)
	}
	if err := a.acquire(ctx); err != nil {
		return api.App{}, errorf(errBusy, "app %q is busy: %v", name, err)
	}
	defer a.release()
	if driverOf(st.entry.Spec) == spec.DriverSQLite {
		snapClosed = true
		if err := snap.Close(); err != nil { // checkpoints the snapshot's log into its file
			return api.App{}, errorf(errInternal, "app %q: %v", name, err)
		}
		// The app gets a database the runtime builds itself, with the snapshot's records copied in:
		// whatever else the snapshot's file holds never becomes the app's.
		built, err := rt.buildFromSnapshot(ctx, st, tmp)
		if err != nil {
			return api.App{}, storageError(name, err)
		}
		defer os.Remove(built)
		a.closeDB()
		path := rt.appDBPath(name)
		if err := os.MkdirAll(rt.appDir(name), 0o700); err != nil {
			return api.App{}, err
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return api.App{}, errorf(errInternal, "app %q: %v", name, err)
			}
		}
		// rename(2) swaps the file in one step: the app has its old data or the new, never a mix.
		if err := os.Rename(built, path); err != nil {
			return api.App{}, errorf(errInternal, "app %q: replace database: %v", name, err)
		}
		if err := syncDir(rt.appDir(name)); err != nil {
			return api.App{}, err
		}
	} else {
		if a.db == nil {
			c, err := rt.openStore(ctx, name, st.entry, false)
			if err != nil {
				return api.App{}, errorf(errInternal, "app %q: open database: %v", name, err)
			}
			a.setDB(c)
		}
		cols := st.entry.Spec.Collections
		err := store.InTx(ctx, a.db, func() error {
			if err := store.ClearData(ctx, a.db, cols); err != nil {
				return err
			}
			return store.CopyData(ctx, snap, a.db, cols)
		})
		if a.closed {
			a.closeDB() // a stopped app keeps no connection
		}
		if err != nil {
			return api.App{}, errorf(errInternal, "app %q: restore: %v", name, err)
		}
	}
	a.verified = true
	a.log.Info("app restored from a snapshot")
	return a.view(), nil
}
