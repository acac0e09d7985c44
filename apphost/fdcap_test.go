package apphost_test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wakeApps is how many apps TestWakingManyAppsNeverRunsOutOfFiles wakes in turn.
const wakeApps = 10_000

// TestWakingManyAppsNeverRunsOutOfFiles: with a limit of 512 open files, waking 10,000 apps one after
// another works, because the runtime keeps the number of open databases within what the limit allows
// (about 85 here) by hibernating the least recently used; no app ends in error, and the runtime still
// accepts connections. `runtime serve` without --max-apps holds no more than the default 1000 apps,
// so this runtime is given --max-apps 0.
func TestWakingManyAppsNeverRunsOutOfFiles(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("creates 10,000 apps")
	}
	p := &runtimeProc{t: t, dataDir: t.TempDir(), args: []string{"--max-apps", "0", "--log-level", "info"}, maxFiles: 512}
	p.start()
	t.Cleanup(p.stop)
	require.Contains(t, p.logText(), `"maxOpenDatabases":85`)
	notes := spec.Collection{Name: "notes", Fields: []spec.Field{{Name: "n", Type: spec.TypeInteger}}}

	forEach := func(what string, fn func(i int) error) {
		t.Helper()
		var next atomic.Int64
		var failed atomic.Int64
		var first sync.Once
		var firstErr error
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < wakeApps; i = int(next.Add(1)) - 1 {
					if err := fn(i); err != nil {
						failed.Add(1)
						first.Do(func() { firstErr = err })
					}
				}
			})
		}
		wg.Wait()
		require.Zero(t, failed.Load(), "%s: %v\n%s", what, firstErr, tail(p.logText()))
	}
	forEach("create", func(i int) error {
		_, err := p.client.PutApp(t.Context(), fmt.Sprintf("app-%05d", i), api.PutAppRequest{Spec: appSpec(notes)}, api.PutOptions{})
		return err
	})
	// Each app is woken (its database opened) by a write, then by a read, in turn.
	forEach("wake", func(i int) error {
		path := fmt.Sprintf("/apps/app-%05d/api/notes", i)
		resp, err := http.Post("http://"+p.addr+path, "application/json", strings.NewReader(`{"n":`+strconv.Itoa(i)+`}`))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("%s: %d", path, resp.StatusCode)
		}
		return nil
	})
	rt, err := p.client.Runtime(t.Context())
	require.NoError(t, err, "the runtime still accepts connections")
	assert.Equal(t, wakeApps, rt.Apps["total"])
	assert.Zero(t, rt.Apps[api.StatusError], "no app ended in error")
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err == nil {
		assert.Less(t, len(fds), 512, "within the limit")
	}
	l := listOf(t, p, "/apps/app-00000/api/notes", "")
	assert.Equal(t, 1, l.Total, "the first app, hibernated long ago, wakes again")
}

// tail is the end of a long log.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
