package apphost

import (
	"net/http"
	"strconv"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/apphost/store"
)

// TestHooksEnv is the environment variable that, set to 1, makes `appfleet runtime serve` enable the
// test-only endpoints below. It exists for the runtime's own process tests and must never be set in
// production.
const TestHooksEnv = "APPFLEET_RUNTIME_TEST_HOOKS"

// testHook serves /api/_test/<what> of an app when Config.TestHooks is set:
//
//	panic          panics inside the request, to prove the panic stays in its app
//	hold?ms=N      holds the app's database for N milliseconds, like a slow database would
func (rt *Runtime) testHook(w http.ResponseWriter, r *http.Request, a *app, what string) {
	switch what {
	case "panic":
		panic("test hook: provoked panic in app " + a.name)
	case "hold":
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
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
	default:
		writeError(w, http.StatusNotFound, api.CodeNotFound, "no such test hook", nil)
	}
}
