package apphost_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nextEvent reads the stream's next event, failing the test when none comes within 10 seconds.
func nextEvent(t *testing.T, s *api.EventStream) api.Event {
	t.Helper()
	type result struct {
		ev  api.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := s.Next()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r.ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return api.Event{}
	}
}

// eventsUntil reads events until one of type typ about app name and returns every event read.
func eventsUntil(t *testing.T, s *api.EventStream, typ, name string) []api.Event {
	t.Helper()
	var out []api.Event
	for {
		ev := nextEvent(t, s)
		out = append(out, ev)
		if ev.Type == typ && ev.Name == name {
			return out
		}
	}
}

func types(evs []api.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func TestEventsStreamEveryChange(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()

	s, err := p.client.Events(ctx, "")
	require.NoError(t, err)
	defer s.Close()
	ready := nextEvent(t, s)
	require.Equal(t, api.EventReady, ready.Type, "a fresh stream starts with ready")
	require.NotEmpty(t, ready.ID)

	put(t, p, "crm", appSpec(customers()))
	created := eventsUntil(t, s, api.EventCreated, "crm")
	require.Equal(t, []string{api.EventCreated}, types(created), "a create is one event; its placeholder is not an app")
	ev := created[0]
	assert.Equal(t, int64(1), ev.Generation)
	require.NotNil(t, ev.App)
	assert.Equal(t, api.StatusRunning, ev.App.Status)
	assert.Equal(t, "crm", ev.App.Name)

	sp := appSpec(customers(), orders())
	sp.APIKeys = []spec.APIKey{{Name: "k", Value: spec.SecretRef{Value: "secret-value-xyz"}}}
	put(t, p, "crm", sp)
	updated := eventsUntil(t, s, api.EventUpdated, "crm")
	assert.Equal(t, []string{api.EventStatus, api.EventUpdated}, types(updated), "migrating, then the new generation")
	assert.Equal(t, api.StatusMigrating, updated[0].App.Status)
	assert.Equal(t, int64(2), updated[1].Generation)
	assert.Len(t, updated[1].App.Spec.Collections, 2)
	assert.Empty(t, updated[1].App.Spec.APIKeys[0].Value.Value, "secrets travel as hashes only")
	fps, err := p.client.Fingerprints(ctx, "crm", []string{spec.SecretHash("crm", "secret-value-xyz")})
	require.NoError(t, err)
	assert.Equal(t, fps[0], updated[1].App.Spec.APIKeys[0].Value.SHA256, "keys travel as the runtime's fingerprints")

	_, err = p.client.StopApp(ctx, "crm")
	require.NoError(t, err)
	stopped := eventsUntil(t, s, api.EventUpdated, "crm")
	assert.Equal(t, []string{api.EventStatus, api.EventUpdated}, types(stopped))
	assert.Equal(t, api.StatusStopped, stopped[1].App.Status)
	assert.Equal(t, spec.StateStopped, stopped[1].App.Spec.State, "a stop changes the desired state without a new generation")
	assert.Equal(t, int64(2), stopped[1].Generation)

	require.NoError(t, p.client.DeleteApp(ctx, "crm", false))
	deleted := eventsUntil(t, s, api.EventDeleted, "crm")
	assert.Equal(t, int64(2), deleted[len(deleted)-1].Generation)

	// A refused create (invalid spec) is no event at all: the next event is the next real change.
	bad := appSpec(spec.Collection{Name: "x", Fields: []spec.Field{{Name: "id", Type: spec.TypeString}}})
	_, err = p.client.PutApp(ctx, "bad", api.PutAppRequest{Spec: bad}, api.PutOptions{})
	require.Error(t, err)
	put(t, p, "shop", appSpec(orders()))
	ev = nextEvent(t, s)
	assert.Equal(t, api.EventCreated, ev.Type)
	assert.Equal(t, "shop", ev.Name)
}

// createSeen creates app name while a stream listens and returns the id of its created event.
func createSeen(t *testing.T, p *runtimeProc, name string) string {
	t.Helper()
	s, err := p.client.Events(t.Context(), "")
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, api.EventReady, nextEvent(t, s).Type)
	put(t, p, name, appSpec(customers()))
	ev := nextEvent(t, s)
	require.Equal(t, api.EventCreated, ev.Type)
	require.Equal(t, ev.ID, s.LastID)
	return ev.ID
}

func TestEventsResumeFromLastID(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()

	last := createSeen(t, p, "a")

	// Changes while no one listens...
	put(t, p, "b", appSpec(customers()))
	require.NoError(t, p.client.DeleteApp(ctx, "a", false))

	// ...are replayed, in order, to the client that comes back with its last id.
	s, err := p.client.Events(ctx, last)
	require.NoError(t, err)
	defer s.Close()
	got := eventsUntil(t, s, api.EventDeleted, "a")
	names := make([]string, len(got))
	for i, e := range got {
		names[i] = e.Type + " " + e.Name
	}
	assert.Equal(t, []string{"created b", "status a", "deleted a"}, names)

	// An id the runtime cannot resume from asks the client to list again.
	for _, id := range []string{"0-1", "garbage", last[:len(last)-1] + "999999"} {
		r, err := p.client.Events(ctx, id)
		require.NoError(t, err)
		ev := nextEvent(t, r)
		assert.Equal(t, api.EventReset, ev.Type, "id %q", id)
		assert.NotEmpty(t, ev.ID)
		require.NoError(t, r.Close())
	}
}

func TestEventsTooOldIDGetsReset(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	ctx := t.Context()
	old := createSeen(t, p, "x")

	// More changes than the runtime keeps: start and stop (two status and one updated event each).
	for range 400 {
		_, err := p.client.StopApp(ctx, "x")
		require.NoError(t, err)
		_, err = p.client.StartApp(ctx, "x")
		require.NoError(t, err)
	}
	s, err := p.client.Events(ctx, old)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, api.EventReset, nextEvent(t, s).Type)
}

func TestEventsNeedTheToken(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "")
	_, err := api.NewClient(p.addr, "wrong").Events(t.Context(), "")
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, api.StatusOf(err))
	code, _ := p.do(http.MethodGet, "/v1/events", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
}

func TestEventsEndAtShutdown(t *testing.T) {
	t.Parallel()
	p := startRuntime(t, "", "--shutdown-timeout", "30s")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := p.client.Events(ctx, "")
	require.NoError(t, err)
	nextEvent(t, s)
	start := time.Now()
	require.NoError(t, p.term())
	assert.Less(t, time.Since(start), 20*time.Second, "an open stream does not hold the shutdown to its deadline")
	_, err = s.Next()
	assert.Error(t, err, "the stream ends with the runtime")
}
