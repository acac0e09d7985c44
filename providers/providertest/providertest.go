package providertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/internal/testbin"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Target is one provider under test and what the suite needs to drive it. Each call of the factory given
// to Run must return a fresh one: a provider whose fleet owns nothing yet.
type Target struct {
	Provider providers.Provider
	// Fleet is the fleet the provider was configured with.
	Fleet string
	// Env is a valid environment for this provider that does not exist yet.
	Env spec.Environment
	// Change returns env with settings changed so that its spec hash differs and the runtime must be
	// reconfigured. Nil means: add a minute to spec.runtime.idleTimeout.
	Change func(env spec.Environment) spec.Environment
	// Crash kills the runtime abruptly, as kill -9 or a host crash would. Nil skips the crash case.
	Crash func(t *testing.T, obs providers.Observed)
	// Conflict returns an environment that Apply must refuse, and a text the error must contain so that a
	// person can tell the cause (for example the listen address already in use). Nil skips the case.
	Conflict func(t *testing.T) (env spec.Environment, wantInError string)
}

// Run runs the conformance suite against the targets newTarget builds. Every runtime the suite creates
// is destroyed when the test ends, whatever the outcome.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	t.Run("Lifecycle", func(t *testing.T) { lifecycle(t, setUp(t, newTarget)) })
	t.Run("CrashedRuntimeComesBack", func(t *testing.T) {
		tg := setUp(t, newTarget)
		if tg.Crash == nil {
			t.Skip("the provider gives no way to crash its runtime")
		}
		crash(t, tg)
	})
	t.Run("ConflictIsNamed", func(t *testing.T) {
		tg := setUp(t, newTarget)
		if tg.Conflict == nil {
			t.Skip("the provider declares no conflicting environment")
		}
		conflict(t, tg)
	})
}

func setUp(t *testing.T, newTarget func(t *testing.T) Target) Target {
	t.Helper()
	tg := newTarget(t)
	require.NotNil(t, tg.Provider)
	if tg.Change == nil {
		tg.Change = func(env spec.Environment) spec.Environment {
			env.Spec.Runtime.IdleTimeout.Duration += time.Minute
			return env
		}
	}
	DestroyOnCleanup(t, tg.Provider, tg.Env)
	return tg
}

// DestroyOnCleanup destroys env through p when the test ends, whatever its outcome, so that no runtime
// outlives the test. It must not use t.Context(): that context is cancelled before cleanups run, and a
// destroy given it would give up at once and leave the runtime running.
func DestroyOnCleanup(t *testing.T, p providers.Provider, env spec.Environment) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		assert.NoError(t, p.Destroy(ctx, env), "clean up environment %q", env.Metadata.Name)
	})
}

const appName = "conformance"

func lifecycle(t *testing.T, tg Target) {
	ctx := t.Context()
	p, env := tg.Provider, tg.Env

	// Absent.
	_, err := p.Observe(ctx, env)
	require.ErrorIs(t, err, providers.ErrNotFound, "Observe of an environment never applied")
	requireNotListed(t, tg)
	require.NoError(t, p.Destroy(ctx, env), "Destroy of an absent environment succeeds")

	// Apply creates it.
	ep, err := p.Apply(ctx, env)
	require.NoError(t, err)
	require.NotEmpty(t, ep.URL)
	require.NotEmpty(t, ep.Token, "the provider knows the runtime's token")
	requireAnswers(t, ep)
	present := requirePresent(t, tg, env, ep)
	requireListed(t, tg, present)

	// An app with data, to see it survive a reconfiguration.
	createApp(t, ep, env)

	// Apply again changes nothing.
	ep2, err := p.Apply(ctx, env)
	require.NoError(t, err)
	assert.Equal(t, ep, ep2, "a second Apply keeps the endpoint and token")
	again, err := p.Observe(ctx, env)
	require.NoError(t, err)
	assert.Equal(t, present, again, "a second Apply leaves the runtime as it was")

	// A settings change converges, data kept.
	changed := tg.Change(env)
	require.NotEqual(t, env.SpecHash(), changed.SpecHash(), "Change must change the spec hash")
	ep3, err := p.Apply(ctx, changed)
	require.NoError(t, err)
	requireAnswers(t, ep3)
	requirePresent(t, tg, changed, ep3)
	requireApp(t, ep3)

	// Destroy removes it, and again is fine.
	require.NoError(t, p.Destroy(ctx, changed))
	_, err = p.Observe(ctx, changed)
	require.ErrorIs(t, err, providers.ErrNotFound, "Observe after Destroy")
	requireNotListed(t, tg)
	_, err = api.NewClient(ep3.URL, ep3.Token).ListApps(quick(t))
	require.Error(t, err, "the runtime no longer answers after Destroy")
	require.NoError(t, p.Destroy(ctx, changed), "Destroy twice succeeds")
}

func crash(t *testing.T, tg Target) {
	ctx := t.Context()
	ep, err := tg.Provider.Apply(ctx, tg.Env)
	require.NoError(t, err)
	createApp(t, ep, tg.Env)
	obs, err := tg.Provider.Observe(ctx, tg.Env)
	require.NoError(t, err)

	tg.Crash(t, obs)
	require.Eventually(t, func() bool {
		o, err := tg.Provider.Observe(ctx, tg.Env)
		return err == nil && !o.Running
	}, 5*time.Second, 20*time.Millisecond, "Observe exists but not running after a crash")

	ep2, err := tg.Provider.Apply(ctx, tg.Env)
	require.NoError(t, err, "Apply brings a crashed runtime back")
	requireAnswers(t, ep2)
	requirePresent(t, tg, tg.Env, ep2)
	requireApp(t, ep2)
}

func conflict(t *testing.T, tg Target) {
	env, want := tg.Conflict(t)
	_, err := tg.Provider.Apply(t.Context(), env)
	require.Error(t, err, "Apply of a conflicting environment")
	assert.Contains(t, err.Error(), want)
	assert.Contains(t, err.Error(), env.Metadata.Name, "the error names the environment")
	// A refused apply leaves nothing running.
	if obs, err := tg.Provider.Observe(t.Context(), env); err == nil {
		assert.False(t, obs.Running, "nothing runs after a refused Apply")
	}
}

// quick bounds one call to a runtime, so that a hung runtime fails the test instead of stalling it.
func quick(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func requireAnswers(t *testing.T, ep providers.Endpoint) {
	t.Helper()
	c := api.NewClient(ep.URL, ep.Token)
	require.NoError(t, c.Ready(quick(t)), "GET %s/readyz", ep.URL)
	_, err := c.ListApps(quick(t))
	require.NoError(t, err, "the management API accepts the provider's token")
	_, err = api.NewClient(ep.URL, "not-"+ep.Token).ListApps(quick(t))
	require.Equal(t, 401, api.StatusOf(err), "the management API refuses a wrong token (got %v)", err)
}

func requirePresent(t *testing.T, tg Target, env spec.Environment, ep providers.Endpoint) providers.Observed {
	t.Helper()
	obs, err := tg.Provider.Observe(t.Context(), env)
	require.NoError(t, err)
	assert.True(t, obs.Running, "Running")
	assert.Equal(t, env.Metadata.Name, obs.Environment)
	assert.Equal(t, tg.Fleet, obs.Fleet)
	assert.Equal(t, env.Spec.Provider, obs.Provider)
	assert.Equal(t, env.SpecHash(), obs.SpecHash, "Observe reports the spec hash Apply ran with")
	if obs.Spec != nil {
		assert.Equal(t, env.Spec, *obs.Spec, "Observe reports the spec Apply ran with")
	}
	assert.Equal(t, ep, obs.Endpoint, "Observe reports the endpoint Apply returned")
	return obs
}

func requireListed(t *testing.T, tg Target, want providers.Observed) {
	t.Helper()
	list, err := tg.Provider.List(t.Context(), tg.Fleet)
	require.NoError(t, err)
	require.Len(t, list, 1, "List returns the fleet's one environment")
	assert.Equal(t, want, list[0])

	other, err := tg.Provider.List(t.Context(), "not-"+tg.Fleet)
	require.NoError(t, err)
	assert.Empty(t, other, "List of another fleet")
}

func requireNotListed(t *testing.T, tg Target) {
	t.Helper()
	list, err := tg.Provider.List(t.Context(), tg.Fleet)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// createApp creates an app with one record in it, which requireApp finds again after the runtime was
// restarted or brought back: the app's definition and its data both live in the data the provider keeps.
func createApp(t *testing.T, ep providers.Endpoint, env spec.Environment) {
	t.Helper()
	app := spec.AppSpec{
		Environment: env.Metadata.Name,
		State:       spec.StateRunning,
		Database:    spec.Database{Driver: spec.DriverSQLite},
		Collections: []spec.Collection{{
			Name:   "notes",
			Fields: []spec.Field{{Name: "title", Type: spec.TypeString, Required: true}},
		}},
	}
	_, err := api.NewClient(ep.URL, ep.Token).PutApp(quick(t), appName, api.PutAppRequest{Spec: app}, api.PutOptions{})
	require.NoError(t, err, "create app %q", appName)
	waitAppRunning(t, ep)

	resp, err := httpClient.Post(ep.URL+"/apps/"+appName+"/api/notes", "application/json", strings.NewReader(`{"title": "kept"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "create a record: %s", body)
}

func requireApp(t *testing.T, ep providers.Endpoint) {
	t.Helper()
	app, err := api.NewClient(ep.URL, ep.Token).GetApp(quick(t), appName)
	require.NoError(t, err, "app %q survives", appName)
	require.Len(t, app.Spec.Collections, 1)
	assert.Equal(t, "notes", app.Spec.Collections[0].Name)
	waitAppRunning(t, ep)

	resp, err := httpClient.Get(ep.URL + "/apps/" + appName + "/api/notes")
	require.NoError(t, err)
	defer resp.Body.Close()
	var list struct {
		Items []map[string]any `json:"items"`
		Total int              `json:"total"`
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	require.Equal(t, 1, list.Total, "the app's data survives")
	assert.Equal(t, "kept", list.Items[0]["title"])
}

// waitAppRunning waits until the runtime reports the app running: a runtime brings its apps back to
// their desired state after it starts, not before it answers.
func waitAppRunning(t *testing.T, ep providers.Endpoint) {
	t.Helper()
	c := api.NewClient(ep.URL, ep.Token)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		app, err := c.GetApp(quick(t), appName)
		require.NoError(ct, err)
		require.Equal(ct, api.StatusRunning, app.Status, "app %q status (error %q)", appName, app.Error)
	}, 10*time.Second, 20*time.Millisecond)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// BuildAppfleet builds the appfleet command into dir and returns the binary's path. A provider's TestMain
// calls it so that the suite runs the real runtime.
func BuildAppfleet(dir string) (string, error) { return testbin.Build(dir) }
