package apphost_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireServing checks that an app answers reads and writes.
func requireServing(t *testing.T, p *runtimeProc, app, coll string, rec map[string]any) {
	t.Helper()
	before := listOf(t, p, "/apps/"+app+"/api/"+coll, "").Total
	create(t, p, app, coll, "", rec)
	assert.Equal(t, before+1, listOf(t, p, "/apps/"+app+"/api/"+coll, "").Total)
}

// TestRefusedMigrationKeepsAppServing: a change the database cannot take is refused cleanly, the app
// keeps serving its accepted spec, and the reason is on the app without putting it in error.
func TestRefusedMigrationKeepsAppServing(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	put(t, p, "crm", appSpec(customers()))
	create(t, p, "crm", "customers", "", map[string]any{"name": "Ada", "email": "ada@x"})

	// A required field without a default cannot be added to a collection that holds records.
	c := customers()
	c.Fields = append(c.Fields, spec.Field{Name: "vat", Type: spec.TypeString, Required: true})
	_, err := p.client.PutApp(ctx, "crm", api.PutAppRequest{Spec: appSpec(c)}, api.PutOptions{})
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusUnprocessableEntity, ae.Status)
	assert.Equal(t, api.CodeMigrationFailed, ae.Code)
	assert.Contains(t, ae.Message, "collections.customers.vat")
	assert.Contains(t, ae.Message, "give it a default")
	assert.Contains(t, ae.Message, "it keeps serving generation 1")

	got, err := p.client.GetApp(ctx, "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, got.Status, "a refused migration does not take the app offline")
	assert.EqualValues(t, 1, got.Generation)
	assert.Contains(t, got.Error, "generation 2 was not applied")
	requireServing(t, p, "crm", "customers", map[string]any{"name": "Grace"})

	// Asking for the accepted spec again clears the note; with a default the field is added.
	got = put(t, p, "crm", appSpec(customers()))
	assert.Empty(t, got.Error)
	c.Fields[len(c.Fields)-1].Default = "none"
	got = put(t, p, "crm", appSpec(c))
	assert.EqualValues(t, 2, got.Generation)
	assert.Empty(t, got.Error)

	// No user name collides with an internal one: customers.email's unique index had the name a
	// collection may take.
	clash := spec.Collection{Name: "uq_customers_email", Fields: []spec.Field{{Name: "note", Type: spec.TypeText}}}
	got = put(t, p, "crm", appSpec(c, clash))
	assert.Equal(t, api.StatusRunning, got.Status)
	requireServing(t, p, "crm", "uq_customers_email", map[string]any{"note": "fine"})
	code, body := p.do(http.MethodPost, "/apps/crm/api/customers", "", map[string]any{"name": "Dup", "email": "ada@x"})
	assert.Equal(t, http.StatusConflict, code, "email is still unique: %s", body)

	// A field renamed only in case keeps its values, and is no data loss.
	renamed := c
	renamed.Fields = append([]spec.Field(nil), c.Fields...)
	renamed.Fields[3].Name = "Score" // was score
	create(t, p, "crm", "customers", "", map[string]any{"name": "Scored", "score": 7})
	got = put(t, p, "crm", appSpec(renamed, clash))
	assert.Equal(t, api.StatusRunning, got.Status)
	l := listOf(t, p, "/apps/crm/api/customers?Score=7", "")
	require.Equal(t, 1, l.Total)
	assert.EqualValues(t, 7, l.Items[0]["Score"])
}

// TestHostnameClaimsAreAtomic: apps racing for one hostname, exactly one wins; routing is the same
// after a restart, and a fully qualified Host (trailing dot), another case or a port route alike.
func TestHostnameClaimsAreAtomic(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	const racers = 8
	var wg sync.WaitGroup
	codes := make([]int, racers)
	for i := range racers {
		wg.Go(func() {
			s := appSpec(customers())
			s.Hostnames = []string{"shop.example.test"}
			s.Settings = map[string]string{"who": fmt.Sprint(i)}
			_, err := p.client.PutApp(t.Context(), fmt.Sprintf("shop-%d", i), api.PutAppRequest{Spec: s}, api.PutOptions{})
			codes[i] = api.StatusOf(err)
		})
	}
	wg.Wait()
	winner := -1
	for i, c := range codes {
		switch c {
		case 0:
			require.Equal(t, -1, winner, "two apps got the hostname: %v", codes)
			winner = i
		default:
			assert.Equal(t, http.StatusConflict, c, "a loser gets 409: %v", codes)
		}
	}
	require.NotEqual(t, -1, winner, "one app gets the hostname: %v", codes)
	apps, err := p.client.ListApps(t.Context())
	require.NoError(t, err)
	assert.Len(t, apps, 1, "the losers were not created")

	routed := func(host string) string {
		t.Helper()
		code, body := p.do(http.MethodGet, "/api/_settings", "", nil, "Host", host)
		require.Equal(t, http.StatusOK, code, "%s: %s", host, body)
		return string(body)
	}
	want := fmt.Sprintf(`{"who":"%d"}`+"\n", winner)
	for _, h := range []string{"shop.example.test", "shop.example.test.", "SHOP.Example.Test:8080", "shop.example.test.:80"} {
		assert.Equal(t, want, routed(h), h)
	}
	p.kill9()
	p.start()
	assert.Equal(t, want, routed("shop.example.test."), "the same app after a restart")
}

// TestCrashBetweenMigrationAndRegistryHeals: a runtime killed after a migration committed but before
// the registry recorded the new spec comes back with the new spec, running, its data whole.
func TestCrashBetweenMigrationAndRegistryHeals(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	put(t, p, "crm", appSpec(customers()))
	create(t, p, "crm", "customers", "", map[string]any{"name": "Ada"})
	require.NoError(t, p.term())

	p.env = []string{"APPFLEET_TEST_CRASH_AT=after-migrate"} // apphost.CrashEnv, in the binary testbin builds with its hooks
	p.start()
	c := customers()
	c.Fields = append(c.Fields, spec.Field{Name: "vat", Type: spec.TypeString, Default: "none"})
	_, err := p.client.PutApp(t.Context(), "crm", api.PutAppRequest{Spec: appSpec(c, orders())}, api.PutOptions{})
	require.Error(t, err, "the runtime died in the middle of the put")
	p.waitExit(10 * time.Second)

	p.env = nil
	p.start()
	got, err := p.client.GetApp(t.Context(), "crm")
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, got.Status, got.Error)
	assert.EqualValues(t, 2, got.Generation, "the committed migration's spec is the app's")
	require.Len(t, got.Spec.Collections, 2)
	assert.Contains(t, p.logText(), "recovered a migration that committed")
	l := listOf(t, p, "/apps/crm/api/customers", "")
	require.Equal(t, 1, l.Total)
	assert.Equal(t, "none", l.Items[0]["vat"])
	requireServing(t, p, "crm", "orders", map[string]any{"total": 3})

	// Restarting again changes nothing.
	p.kill9()
	p.start()
	got, err = p.client.GetApp(t.Context(), "crm")
	require.NoError(t, err)
	assert.EqualValues(t, 2, got.Generation)
	assert.Equal(t, api.StatusRunning, got.Status)
}
