package apphost_test

import (
	"bytes"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	put(t, p, "crm", appSpec(customers(), orders()))
	for i := range 50 {
		create(t, p, "crm", "customers", "", map[string]any{"name": "before", "score": i})
	}

	// A backup taken while the app is written to is a consistent snapshot.
	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, _ := p.do(http.MethodPost, "/apps/crm/api/orders", "", map[string]any{"total": 1})
			if code == http.StatusCreated {
				writes.Add(1)
			}
		}
	})
	var snap bytes.Buffer
	require.NoError(t, p.client.Backup(ctx, "crm", &snap))
	close(stop)
	wg.Wait()
	assert.True(t, bytes.HasPrefix(snap.Bytes(), []byte("SQLite format 3\x00")))

	// Change the data, then restore.
	create(t, p, "crm", "customers", "", map[string]any{"name": "after"})
	code, _ := p.do(http.MethodDelete, "/apps/crm/api/customers/1", "", nil)
	require.Equal(t, http.StatusNoContent, code)
	require.NoError(t, p.client.Restore(ctx, "crm", bytes.NewReader(snap.Bytes())))
	l := listOf(t, p, "/apps/crm/api/customers?limit=1000", "")
	assert.Equal(t, 50, l.Total)
	for _, it := range l.Items {
		assert.Equal(t, "before", it["name"])
	}
	nOrders := listOf(t, p, "/apps/crm/api/orders", "").Total
	assert.LessOrEqual(t, int64(nOrders), writes.Load(), "the snapshot holds only committed writes")
	// The restored app keeps working and assigns fresh ids.
	rec := create(t, p, "crm", "customers", "", map[string]any{"name": "new"})
	assert.EqualValues(t, 51, rec["id"], "ids continue from the restored data")

	// A snapshot moves an app: restore it into another app with the same collections.
	put(t, p, "copy", appSpec(customers(), orders()))
	require.NoError(t, p.client.Restore(ctx, "copy", bytes.NewReader(snap.Bytes())))
	assert.Equal(t, 50, listOf(t, p, "/apps/copy/api/customers", "").Total)

	// A snapshot that does not fit the app's collections would lose data: refused unless allowed.
	put(t, p, "narrow", appSpec(spec.Collection{Name: "customers", Fields: []spec.Field{{Name: "name", Type: spec.TypeString}}}))
	err := p.client.Restore(ctx, "narrow", bytes.NewReader(snap.Bytes()))
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, api.CodeDataLoss, ae.Code)

	code, body := p.do(http.MethodPut, "/v1/apps/crm/restore", p.token, "not a database")
	assert.Equal(t, http.StatusBadRequest, code, string(body))
	assert.Equal(t, 51, listOf(t, p, "/apps/crm/api/customers?limit=1", "").Total, "a bad snapshot changes nothing")
	assert.True(t, api.IsNotFound(p.client.Restore(ctx, "nope", bytes.NewReader(snap.Bytes()))))

	// Backup of a stopped app works too; restart after kill -9 keeps the restored data.
	_, err = p.client.StopApp(ctx, "copy")
	require.NoError(t, err)
	var again bytes.Buffer
	require.NoError(t, p.client.Backup(ctx, "copy", &again))
	p.kill9()
	p.start()
	assert.Equal(t, 51, listOf(t, p, "/apps/crm/api/customers", "").Total)
}
