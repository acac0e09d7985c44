//go:build !appfleet_testhooks

package apphost

import (
	"net/http"

	"github.com/appfleet/appfleet/apphost/api"
)

// TestHooksBuilt is false: this binary has no test hooks (see hooks.go, built with appfleet_testhooks).
const TestHooksBuilt = false

func crashPoint(string) {}

func (rt *Runtime) testHook(w http.ResponseWriter, _ *http.Request, _ *app, _ string) {
	writeError(w, http.StatusNotFound, api.CodeNotFound, "no such path", nil)
}
