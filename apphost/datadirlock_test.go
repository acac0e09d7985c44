package apphost_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/runtimelock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneRuntimePerDataDir runs a second `runtime serve` on the data dir of a running one: it must exit 1
// at once, naming the first one's pid and address, and must not touch the first one's data.
func TestOneRuntimePerDataDir(t *testing.T) {
	t.Parallel()
	first := startRuntime(t, "")
	put(t, first, "crm", appSpec(customers()))
	rec := create(t, first, "crm", "customers", "", map[string]any{"name": "Ada"})

	info, held, err := runtimelock.Read(first.dataDir)
	require.NoError(t, err)
	require.True(t, held, "a running runtime holds its data dir")
	assert.Equal(t, first.cmd.Process.Pid, info.PID)
	assert.Equal(t, first.addr, info.Address)
	rtInfo, err := first.client.Runtime(t.Context())
	require.NoError(t, err)
	assert.Len(t, rtInfo.Instance, 16)
	assert.Equal(t, rtInfo.Instance, info.Instance, "GET /v1/runtime and the lock name the same instance")
	abs, err := filepath.Abs(first.dataDir)
	require.NoError(t, err)
	assert.Equal(t, abs, rtInfo.DataDir)

	second := exec.Command(binary, "runtime", "serve", "--data-dir", first.dataDir, "--listen", "127.0.0.1:0")
	start := time.Now()
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, string(out))
	assert.Equal(t, 1, exit.ExitCode(), string(out))
	assert.Less(t, time.Since(start), 10*time.Second, "a second runtime fails at once")
	assert.Contains(t, string(out), "pid "+strconv.Itoa(first.cmd.Process.Pid), string(out))
	assert.Contains(t, string(out), first.addr, string(out))

	// The first runtime's data is where it was, and it still serves it.
	entries, err := os.ReadDir(filepath.Join(first.dataDir, "archive"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the second runtime archived nothing")
	code, body := first.do(http.MethodGet, "/apps/crm/api/customers/"+strconv.Itoa(int(rec["id"].(float64))), "", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	create(t, first, "crm", "customers", "", map[string]any{"name": "Grace"})

	// A runtime killed the hard way frees its data dir: the kernel drops the lock.
	first.kill9()
	_, held, err = runtimelock.Read(first.dataDir)
	require.NoError(t, err)
	assert.False(t, held, "a dead runtime holds nothing")
	first.start()
	assert.Equal(t, 2, listOf(t, first, "/apps/crm/api/customers", "").Total, "every acknowledged write is there")
	again, err := first.client.Runtime(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, rtInfo.Instance, again.Instance, "each start is a new instance")

	// A runtime that stops gracefully gives its data dir up too.
	require.NoError(t, first.term())
	_, held, err = runtimelock.Read(first.dataDir)
	require.NoError(t, err)
	assert.False(t, held)
}

// TestReadLockOfAbsentDataDir: a dir where no runtime ever ran is not held.
func TestReadLockOfAbsentDataDir(t *testing.T) {
	t.Parallel()
	_, held, err := runtimelock.Read(t.TempDir())
	require.NoError(t, err)
	assert.False(t, held)
}
