package apphost

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An app whose create is still in flight exists for nobody: the lifecycle operations that find its
// placeholder answer 404 and write nothing, so the registry never holds an entry without a spec.
func TestOperationsOnAnAppBeingCreated(t *testing.T) {
	ctx := t.Context()
	rt, err := New(ctx, Config{DataDir: t.TempDir(), Token: "token"})
	require.NoError(t, err)
	defer func() { require.NoError(t, rt.Close(context.Background())) }()
	rt.getOrCreate("fresh") // what putApp holds before it takes the app's lock

	isNotFound := func(what string, err error) {
		t.Helper()
		var oe *opError
		if assert.ErrorAs(t, err, &oe, what) {
			assert.Equal(t, errNotFound, oe.kind, "%s: %v", what, err)
		}
	}
	_, err = rt.stopApp(ctx, "fresh")
	isNotFound("stop", err)
	_, err = rt.startApp(ctx, "fresh")
	isNotFound("start", err)
	_, err = rt.backupApp(ctx, "fresh")
	isNotFound("backup", err)
	_, err = rt.restoreApp(ctx, "fresh", strings.NewReader("SQLite format 3\x00"), false)
	isNotFound("restore", err)
	isNotFound("delete", rt.deleteApp(ctx, "fresh", false))

	entries, err := rt.reg.Load(ctx)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing reached the registry")
	assert.Equal(t, 1, rt.appCount(), "the create in flight keeps its placeholder")
}

// TestEveryErrorKindHasOneAnswer: the table from failed operations to HTTP answers covers every kind,
// and an internal error's text never reaches the answer.
func TestEveryErrorKindHasOneAnswer(t *testing.T) {
	for k := errInvalid; k <= errInternal; k++ {
		ans, ok := errKinds[k]
		require.True(t, ok, "kind %d has no answer", k)
		w := httptest.NewRecorder()
		writeOpError(w, errorf(k, "secret detail SELECT 1"))
		assert.Equal(t, ans.status, w.Code)
		assert.Contains(t, w.Body.String(), `"code":"`+ans.code+`"`)
		if k == errInternal {
			assert.NotContains(t, w.Body.String(), "SELECT")
			assert.NotEmpty(t, w.Header().Get(HeaderRequestID))
		} else {
			assert.Contains(t, w.Body.String(), "secret detail")
		}
	}
	w := httptest.NewRecorder()
	writeOpError(w, errors.New("disk I/O error in SELECT"))
	assert.Equal(t, 500, w.Code, "an error of no kind is internal")
	assert.NotContains(t, w.Body.String(), "SELECT")
}
