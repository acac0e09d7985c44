package apply

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// fakeRuntime implements the few management API endpoints FleetPerformer uses. A written or started app
// passes through "starting" before it is "running"; an app whose settings say fail=yes goes into error.
type fakeRuntime struct {
	mu      sync.Mutex
	apps    map[string]*api.App
	bodies  []string
	deleted []string
	// data is each app's database, as its backup reads it and a restore writes it.
	data map[string]string
	// onRestore, when set, is called as a restore arrives.
	onRestore func()
}

func newFakeRuntime(t *testing.T) (*fakeRuntime, *httptest.Server) {
	rt := &fakeRuntime{apps: map[string]*api.App{}, data: map[string]string{}}
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, status int, code string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: code}})
	}
	reply := func(w http.ResponseWriter, a *api.App) { _ = json.NewEncoder(w).Encode(a) }
	mux.HandleFunc("PUT /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		rt.bodies = append(rt.bodies, string(body))
		name := r.PathValue("name")
		a := rt.apps[name]
		if m := r.Header.Get(api.HeaderIfMatch); m != "" {
			want, _ := strconv.ParseInt(m, 10, 64)
			if (a == nil && want != 0) || (a != nil && a.Generation != want) {
				fail(w, http.StatusConflict, api.CodeConflict)
				return
			}
		}
		var req api.PutAppRequest
		if err := json.Unmarshal(body, &req); err != nil {
			fail(w, http.StatusBadRequest, api.CodeInvalid)
			return
		}
		if a == nil {
			a = &api.App{Name: name}
			rt.apps[name] = a
		}
		a.Spec, a.Labels = req.Spec, req.Labels
		a.Generation++
		a.Status = api.StatusStopped
		if cmpState(req.Spec.State) == spec.StateRunning {
			a.Status = api.StatusStarting
		}
		reply(w, a)
	})
	mux.HandleFunc("GET /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		a := rt.apps[r.PathValue("name")]
		if a == nil {
			fail(w, http.StatusNotFound, api.CodeNotFound)
			return
		}
		if a.Status == api.StatusStarting {
			a.Status = api.StatusRunning
			if a.Spec.Settings["fail"] == "yes" {
				a.Status, a.Error = api.StatusError, "migration failed: column total"
			}
		}
		reply(w, a)
	})
	mux.HandleFunc("POST /v1/apps/{name}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		a := rt.apps[r.PathValue("name")]
		if a == nil {
			fail(w, http.StatusNotFound, api.CodeNotFound)
			return
		}
		if r.PathValue("verb") == "start" {
			a.Status = api.StatusStarting
		} else {
			a.Status = api.StatusStopped
		}
		reply(w, a)
	})
	mux.HandleFunc("DELETE /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		name := r.PathValue("name")
		if rt.apps[name] == nil {
			fail(w, http.StatusNotFound, api.CodeNotFound)
			return
		}
		delete(rt.apps, name)
		delete(rt.data, name)
		rt.deleted = append(rt.deleted, name)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/apps/{name}/backup", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		name := r.PathValue("name")
		if rt.apps[name] == nil {
			fail(w, http.StatusNotFound, api.CodeNotFound)
			return
		}
		_, _ = io.WriteString(w, rt.data[name])
	})
	mux.HandleFunc("PUT /v1/apps/{name}/restore", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		name := r.PathValue("name")
		a := rt.apps[name]
		if a == nil {
			fail(w, http.StatusNotFound, api.CodeNotFound)
			return
		}
		if rt.onRestore != nil {
			rt.onRestore()
		}
		body, _ := io.ReadAll(r.Body)
		rt.data[name] = string(body)
		reply(w, a)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return rt, srv
}

func cmpState(s string) string {
	if s == "" {
		return spec.StateRunning
	}
	return s
}

// fakeProvider hands out the fake runtime's endpoint and records what it is asked.
type fakeProvider struct {
	url       string
	applied   []string
	destroyed []string
}

func (p *fakeProvider) Observe(context.Context, spec.Environment) (providers.Observed, error) {
	return providers.Observed{}, providers.ErrNotFound
}
func (p *fakeProvider) Apply(_ context.Context, env spec.Environment) (providers.Endpoint, error) {
	p.applied = append(p.applied, env.Metadata.Name)
	return providers.Endpoint{URL: p.url, Token: "t"}, nil
}
func (p *fakeProvider) Destroy(_ context.Context, env spec.Environment) error {
	p.destroyed = append(p.destroyed, env.Metadata.Name)
	return providers.ErrNotFound
}
func (p *fakeProvider) List(context.Context, string) ([]providers.Observed, error) { return nil, nil }

func newPerformer(t *testing.T, apps ...spec.App) (*FleetPerformer, *fakeRuntime, *fakeProvider) {
	rt, srv := newFakeRuntime(t)
	prov := &fakeProvider{url: srv.URL}
	f := &FleetPerformer{
		Fleet:       "acme",
		Providers:   map[string]providers.Provider{"dev": prov, "old": prov},
		Envs:        map[string]spec.Environment{"dev": {Metadata: spec.Metadata{Name: "dev"}, Spec: spec.EnvironmentSpec{Provider: "local"}}},
		Apps:        map[string]spec.App{},
		WaitTimeout: 2 * time.Second, PollInterval: time.Millisecond,
	}
	for _, a := range apps {
		f.Apps[a.Metadata.Name] = a
	}
	return f, rt, prov
}

func app(name string, mod func(*spec.AppSpec)) spec.App {
	a := spec.App{Metadata: spec.Metadata{Name: name, Labels: map[string]string{"team": "sales"}}, Spec: spec.AppSpec{Environment: "dev"}}
	if mod != nil {
		mod(&a.Spec)
	}
	return a
}

func TestFleetPerformerCreateThenConverge(t *testing.T) {
	crm := app("crm", func(s *spec.AppSpec) {
		s.APIKeys = []spec.APIKey{{Name: "k", Value: spec.SecretRef{FromEnv: "K", Value: "the-key-value"}}}
	})
	wiki := app("wiki", func(s *spec.AppSpec) { s.State = spec.StateStopped })
	f, rt, prov := newPerformer(t, crm, wiki)
	ctx := t.Context()

	require.NoError(t, f.Perform(ctx, plan.Action{Address: "environment.dev", ResourceType: plan.TypeEnvironment, Name: "dev", Kind: plan.Create}))
	assert.Equal(t, []string{"dev"}, prov.applied)
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Environment: "dev", Kind: plan.Create}))
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "app.wiki", ResourceType: plan.TypeApp, Name: "wiki", Environment: "dev", Kind: plan.Create}))

	rt.mu.Lock()
	assert.Equal(t, api.StatusRunning, rt.apps["crm"].Status)
	assert.Equal(t, api.StatusStopped, rt.apps["wiki"].Status)
	assert.Equal(t, map[string]string{"team": "sales", spec.LabelFleet: "acme"}, rt.apps["crm"].Labels)
	assert.Contains(t, rt.bodies[0], `"the-key-value"`, "the secret value travels to the runtime")
	rt.mu.Unlock()

	// Update with the generation observed; a stale generation is refused.
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Environment: "dev", Kind: plan.Update, ObservedGeneration: 1}))
	err := f.Perform(ctx, plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Environment: "dev", Kind: plan.Update, ObservedGeneration: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed since the plan")

	// Stop and start reach the declared state.
	f.Apps["crm"] = app("crm", func(s *spec.AppSpec) { s.State = spec.StateStopped; s.APIKeys = crm.Spec.APIKeys })
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Environment: "dev", Kind: plan.Stop}))
	rt.mu.Lock()
	assert.Equal(t, api.StatusStopped, rt.apps["crm"].Status)
	rt.mu.Unlock()

	// Deleting twice converges; so does destroying an absent environment.
	del := plan.Action{Address: "app.wiki", ResourceType: plan.TypeApp, Name: "wiki", Environment: "dev", Kind: plan.Delete}
	require.NoError(t, f.Perform(ctx, del))
	require.NoError(t, f.Perform(ctx, del))
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "environment.old", ResourceType: plan.TypeEnvironment, Name: "old", Provider: "local", Kind: plan.Delete}))
	assert.Equal(t, []string{"old"}, prov.destroyed)
}

func TestFleetPerformerRefuses(t *testing.T) {
	tests := []struct {
		name   string
		app    spec.App
		action plan.Action
		allow  bool
		want   string
	}{
		{"data loss without --allow-data-loss", app("crm", nil),
			plan.Action{Kind: plan.Replace, DataLoss: true}, false, "loses data"},
		{"blocked", app("crm", nil),
			plan.Action{Kind: plan.Delete, Blocked: "app crm is protected"}, true, "protected"},
		{"unresolved secret", app("crm", func(s *spec.AppSpec) {
			s.Database.DSN = &spec.SecretRef{FromEnv: "CRM_DSN"}
		}), plan.Action{Kind: plan.Create}, false, "database.dsn (env:CRM_DSN) is not resolved"},
		{"app goes into error", app("crm", func(s *spec.AppSpec) { s.Settings = map[string]string{"fail": "yes"} }),
			plan.Action{Kind: plan.Create}, false, "migration failed: column total"},
		{"no endpoint", app("crm", func(s *spec.AppSpec) { s.Environment = "prod" }),
			plan.Action{Kind: plan.Create, Environment: "prod"}, false, "no known endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := newPerformer(t, tt.app)
			f.AllowDataLoss = tt.allow
			require.NoError(t, f.Perform(t.Context(), plan.Action{Address: "environment.dev", ResourceType: plan.TypeEnvironment, Name: "dev", Kind: plan.Create}))
			a := tt.action
			a.Address, a.ResourceType, a.Name = "app.crm", plan.TypeApp, "crm"
			if a.Environment == "" {
				a.Environment = "dev"
			}
			err := f.Perform(t.Context(), a)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "app.crm", "the error names its subject")
		})
	}
}

func TestFleetPerformerReplace(t *testing.T) {
	f, rt, _ := newPerformer(t, app("crm", nil))
	f.AllowDataLoss = true
	ctx := t.Context()
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "environment.dev", ResourceType: plan.TypeEnvironment, Name: "dev", Kind: plan.Create}))
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Environment: "dev", Kind: plan.Create}))
	require.NoError(t, f.Perform(ctx, plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Environment: "dev", Kind: plan.Replace, DataLoss: true, ObservedGeneration: 1}))
	rt.mu.Lock()
	defer rt.mu.Unlock()
	assert.Equal(t, []string{"crm"}, rt.deleted)
	assert.Equal(t, int64(1), rt.apps["crm"].Generation, "the app was created again")
	assert.Equal(t, api.StatusRunning, rt.apps["crm"].Status)
}

// TestRunWithFleetPerformer applies a planned fleet end to end against the fake runtime.
func TestRunWithFleetPerformer(t *testing.T) {
	crm := app("crm", nil)
	f, rt, _ := newPerformer(t, crm)
	d := plan.Desired{Fleet: "acme", Environments: []spec.Environment{f.Envs["dev"]}, Apps: []spec.App{crm}}
	p, err := plan.Build(d, plan.Snapshot{Fleet: "acme"}, plan.Options{})
	require.NoError(t, err)
	res := Run(t.Context(), p, f, Options{Backoff: time.Millisecond}, nil)
	require.True(t, res.OK(), "%+v", res)
	assert.Equal(t, []string{"environment.dev", "app.crm"}, res.Succeeded)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	assert.Equal(t, api.StatusRunning, rt.apps["crm"].Status)
}

// TestFleetPerformerMove moves an app between two runtimes, and checks that every state an interrupted
// move can leave behind converges, and that a target holding an app of its own is never restored over.
func TestFleetPerformerMove(t *testing.T) {
	crm := app("crm", nil)
	move := plan.Action{Address: "app.crm", ResourceType: plan.TypeApp, Name: "crm", Kind: plan.Move,
		Environment: "dev", FromEnvironment: "old", ObservedGeneration: 3}
	put := func(rt *fakeRuntime, labels map[string]string, state, data string) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		s := crm.Spec
		s.State = state
		rt.apps["crm"] = &api.App{Name: "crm", Generation: 3, Status: state, Spec: s, Labels: labels}
		rt.data["crm"] = data
	}
	setup := func(t *testing.T) (*FleetPerformer, *fakeRuntime, *fakeRuntime) {
		f, dst, _ := newPerformer(t, crm)
		src, srcSrv := newFakeRuntime(t)
		f.Endpoints = map[string]providers.Endpoint{"old": {URL: srcSrv.URL, Token: "t"}}
		require.NoError(t, f.Perform(t.Context(), plan.Action{Address: "environment.dev", ResourceType: plan.TypeEnvironment, Name: "dev", Kind: plan.Create}))
		return f, src, dst
	}
	moved := func(t *testing.T, src, dst *fakeRuntime, data string) {
		t.Helper()
		src.mu.Lock()
		assert.Nil(t, src.apps["crm"], "the app is gone from the source")
		assert.Equal(t, []string{"crm"}, src.deleted, "archived in the source, once")
		src.mu.Unlock()
		dst.mu.Lock()
		defer dst.mu.Unlock()
		require.NotNil(t, dst.apps["crm"])
		assert.Equal(t, api.StatusRunning, dst.apps["crm"].Status)
		assert.Equal(t, map[string]string{"team": "sales", spec.LabelFleet: "acme"}, dst.apps["crm"].Labels, "the switch drops the move label")
		assert.Equal(t, data, dst.data["crm"])
	}

	t.Run("fresh, then again", func(t *testing.T) {
		f, src, dst := setup(t)
		put(src, map[string]string{spec.LabelFleet: "acme"}, api.StatusRunning, "customers: ada, bob")
		require.NoError(t, f.Perform(t.Context(), move))
		moved(t, src, dst, "customers: ada, bob")
		require.NoError(t, f.Perform(t.Context(), move), "a finished move is done")
		moved(t, src, dst, "customers: ada, bob")
	})
	t.Run("resumes over its own staged copy", func(t *testing.T) {
		f, src, dst := setup(t)
		put(src, map[string]string{spec.LabelFleet: "acme"}, api.StatusStopped, "customers: ada, bob")
		put(dst, map[string]string{spec.LabelFleet: "acme", spec.LabelMoveFrom: "old"}, api.StatusStopped, "")
		require.NoError(t, f.Perform(t.Context(), move))
		moved(t, src, dst, "customers: ada, bob")
	})
	t.Run("finishes once the source is archived", func(t *testing.T) {
		f, src, dst := setup(t)
		src.deleted = []string{"crm"}
		put(dst, map[string]string{spec.LabelFleet: "acme", spec.LabelMoveFrom: "old"}, api.StatusStopped, "customers: ada, bob")
		require.NoError(t, f.Perform(t.Context(), move))
		moved(t, src, dst, "customers: ada, bob")
	})
	t.Run("never restores over an app of its own", func(t *testing.T) {
		f, src, dst := setup(t)
		put(src, map[string]string{spec.LabelFleet: "acme"}, api.StatusRunning, "old data")
		put(dst, map[string]string{spec.LabelFleet: "acme"}, api.StatusRunning, "newer data")
		err := f.Perform(t.Context(), move)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "never restored over")
		dst.mu.Lock()
		assert.Equal(t, "newer data", dst.data["crm"])
		dst.mu.Unlock()
		src.mu.Lock()
		assert.NotNil(t, src.apps["crm"], "the source is kept")
		src.mu.Unlock()
	})
	t.Run("leaves no snapshot file behind, even if killed mid-move", func(t *testing.T) {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		f, src, dst := setup(t)
		put(src, map[string]string{spec.LabelFleet: "acme"}, api.StatusRunning, "customers: ada, bob")
		var during []os.DirEntry
		dst.onRestore = func() { during, _ = os.ReadDir(tmp) }
		require.NoError(t, f.Perform(t.Context(), move))
		moved(t, src, dst, "customers: ada, bob")
		assert.Empty(t, during, "the snapshot has no name on disk while the move runs")
		after, err := os.ReadDir(tmp)
		require.NoError(t, err)
		assert.Empty(t, after)
	})
	t.Run("refuses when the data is nowhere", func(t *testing.T) {
		f, _, _ := setup(t)
		err := f.Perform(t.Context(), move)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "found in neither old nor dev")
	})
}
