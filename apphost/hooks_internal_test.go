package apphost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseBuildHasNoTestHooks: a build without the appfleet_testhooks tag (this test's, as every
// release) answers the hook endpoints 404 and never panics for them, whatever its environment says.
func TestReleaseBuildHasNoTestHooks(t *testing.T) {
	if TestHooksBuilt {
		t.Skip("this test binary was built with the appfleet_testhooks tag")
	}
	t.Setenv("APPFLEET_RUNTIME_TEST_HOOKS", "1") // what once enabled them
	ctx := t.Context()
	rt, err := New(ctx, Config{DataDir: t.TempDir(), Token: "token"})
	require.NoError(t, err)
	defer func() { require.NoError(t, rt.Close(context.Background())) }()
	_, _, err = rt.putApp(ctx, "crm", api.PutAppRequest{Spec: spec.AppSpec{Environment: "dev"}}, nil, false)
	require.NoError(t, err)
	for _, hook := range []string{"panic", "hold?ms=10"} {
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/apps/crm/api/_test/"+hook, nil))
		assert.Equal(t, http.StatusNotFound, w.Code, hook)
	}
	assert.Zero(t, rt.panics.Load())
}
