//go:build appfleet_testhooks

package apphost

import (
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/store"
)

// TestHooksBuilt is true in a binary built with the appfleet_testhooks tag (internal/testbin builds
// the tests' binary so): only such a binary has the endpoints and crash points below, which let a
// test make a runtime panic, hold a database or die at a chosen step. A release build has none.
const TestHooksBuilt = true

// CrashEnv names the crash point (see crashPoint) at which a test binary kills itself with SIGKILL.
const CrashEnv = "APPFLEET_TEST_CRASH_AT"

// crashPoint kills the process the hard way when the environment names this point: a test's way to
// stop a runtime exactly between two steps, as a power cut or kill -9 would.
func crashPoint(name string) {
	if os.Getenv(CrashEnv) == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// testHook serves /api/_test/<what> of an app:
//
//	panic          panics inside the request, to prove the panic stays in its app
//	hold?ms=N      holds the app's database for N milliseconds, like a slow database would
//	sqlerror       fails inside the database, as a bug would, with SQL in the error
func (rt *Runtime) testHook(w *appWriter, r *http.Request) {
	a := w.a
	switch r.PathValue("hook") {
	case "panic":
		if !w.enter(r) {
			return
		}
		panic("test hook: provoked panic in app " + a.name)
	case "hold":
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		if !w.enter(r) {
			return
		}
		defer w.leave()
		err := a.withDB(r.Context(), func(store.Conn) error {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
			}
			return nil
		})
		if err != nil {
			writeDataError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"heldMs": ms})
	case "sqlerror":
		if !w.enter(r) {
			return
		}
		defer w.leave()
		err := a.withDB(r.Context(), func(c store.Conn) error {
			_, err := c.Exec(r.Context(), "SELECT secret_column FROM no_such_table")
			return err
		})
		writeDataError(w, err)
	default:
		writeError(w, http.StatusNotFound, api.CodeNotFound, "no such test hook", nil)
	}
}
