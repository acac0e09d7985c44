//go:build !appfleet_testhooks

package apphost

import (
	"net/http"

	"github.com/appfleet/appfleet/apphost/api"
)

// TestHooksBuilt is false: this binary has no test hooks (see hooks.go, built with appfleet_testhooks).
const TestHooksBuilt = false

func crashPoint(string) {}

func (rt *Runtime) testHook(w *appWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, api.CodeNotFound, "no such path", nil)
}
