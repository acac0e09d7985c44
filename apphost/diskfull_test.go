package apphost_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyDisk mounts a tmpfs of the given size (mount(8) syntax, e.g. "16m") for the test: a disk that
// can really fill up. It skips the test where mounting is not allowed.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a full disk needs a small tmpfs, and mount failed here (it needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file on dir's disk until the disk is full, then gives back leave bytes. The
// returned function removes the file.
func fillDisk(t *testing.T, dir string, leave int64) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	var size int64
	for {
		n, err := f.Write(chunk)
		size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		require.NoError(t, err)
	}
	if leave > 0 {
		require.NoError(t, f.Truncate(max(0, size-leave)))
	}
	require.NoError(t, f.Close())
	return func() { require.NoError(t, os.Remove(path)) }
}

func requireDiskFull(t *testing.T, code int, body []byte) {
	t.Helper()
	assert.Equal(t, http.StatusInsufficientStorage, code, string(body))
	e := errorCode(t, body)
	assert.Equal(t, api.CodeDiskFull, e.Code)
	assert.Contains(t, e.Message, "disk is full")
	assert.NotContains(t, e.Message, "SQL")
}

// TestFullDisk: a migration that fills the disk halfway is refused and the app keeps serving; a
// runtime starts on a full disk and serves reads; writes fail with a clear error and work again, with
// no restart, once there is space. The disk is a real tmpfs of 16 MiB.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	disk := tinyDisk(t, "16m")
	p := startRuntime(t, filepath.Join(disk, "data"))
	notes := spec.Collection{Name: "notes", Fields: []spec.Field{{Name: "body", Type: spec.TypeText}}}
	put(t, p, "crm", appSpec(notes))
	body := strings.Repeat("x", 2000)
	for range 300 {
		create(t, p, "crm", "notes", "", map[string]any{"body": body})
	}

	// A migration that rewrites every record (about 750 KB of log) while 200 KB are free. (A restart
	// first, so that the write-ahead log starts empty rather than reusing the space of the inserts.)
	require.NoError(t, p.term())
	p.start()
	free := fillDisk(t, disk, 200<<10)
	withTag := notes
	withTag.Fields = append(withTag.Fields, spec.Field{Name: "tag", Type: spec.TypeString, Default: strings.Repeat("t", 500)})
	code, resp := p.do(http.MethodPut, "/v1/apps/crm", p.token, api.PutAppRequest{Spec: appSpec(withTag)})
	requireDiskFull(t, code, resp)
	got, err := p.client.GetApp(t.Context(), "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, got.Status)
	assert.EqualValues(t, 1, got.Generation)
	assert.Contains(t, got.Error, "disk")
	assert.Equal(t, 300, listOf(t, p, "/apps/crm/api/notes?limit=1", "").Total, "reads keep working")
	free()
	got = put(t, p, "crm", appSpec(withTag))
	assert.EqualValues(t, 2, got.Generation)
	assert.Empty(t, got.Error)

	// A runtime starts on a disk with no space left at all.
	require.NoError(t, p.term())
	free = fillDisk(t, disk, 0)
	p.start()
	l := listOf(t, p, "/apps/crm/api/notes?limit=1", "")
	assert.Equal(t, 300, l.Total, "reads work on a full disk")
	code, resp = p.do(http.MethodPost, "/apps/crm/api/notes", "", map[string]any{"body": body})
	requireDiskFull(t, code, resp)
	free()
	create(t, p, "crm", "notes", "", map[string]any{"body": body}) // no restart needed
	assert.Equal(t, 301, listOf(t, p, "/apps/crm/api/notes?limit=1", "").Total)
}
