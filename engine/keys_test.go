package engine_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// A declared API key is compared with the app's by its runtime's fingerprint: an unchanged key plans
// nothing, a rotated one is an update that applies, and no plan or saved plan holds the key's salted
// hash (which anyone could check against guesses, its salt being the app's name).
func TestKeyRotation(t *testing.T) {
	e, _ := newEngine(t)
	t.Setenv("ENGINE_TEST_KEY", "key-one")
	m := load(t, e, manifests+"  apiKeys: [{name: web, value: {fromEnv: ENGINE_TEST_KEY}}]\n")
	noHash := func(p *plan.Plan, values ...string) {
		t.Helper()
		var b bytes.Buffer
		require.NoError(t, plan.Save(&b, p))
		require.NoError(t, plan.RenderJSON(&b, p))
		require.NoError(t, plan.RenderMarkdown(&b, p))
		b.WriteString(p.String())
		for _, v := range values {
			assert.NotContains(t, b.String(), spec.SecretHash("crm", v))
			assert.NotContains(t, b.String(), v)
		}
	}

	res, err := e.Apply(t.Context(), engine.Request{Manifests: m}, engine.NopSink{})
	require.NoError(t, err)
	require.True(t, res.Applied[0].OK())
	noHash(res.Plan, "key-one")

	res, err = e.Plan(t.Context(), engine.Request{Manifests: m}, engine.NopSink{})
	require.NoError(t, err)
	assert.False(t, res.Plan.HasChanges(), "the runtime's fingerprint of the declared key is the app's: %s", res.Plan)
	assert.Len(t, res.Snapshot.Environments["dev"].KeyFingerprints, 1)
	noHash(res.Plan, "key-one")

	t.Setenv("ENGINE_TEST_KEY", "key-two")
	res, err = e.Plan(t.Context(), engine.Request{Manifests: m}, engine.NopSink{})
	require.NoError(t, err)
	require.True(t, res.Plan.HasChanges())
	assert.Contains(t, res.Plan.String(), "apiKeys.web")
	assert.True(t, strings.Contains(res.Plan.String(), "(sensitive) -> (sensitive)"), "%s", res.Plan)
	noHash(res.Plan, "key-one", "key-two")

	res, err = e.Apply(t.Context(), engine.Request{Manifests: m}, engine.NopSink{})
	require.NoError(t, err)
	require.True(t, res.Applied[0].OK())
	res, err = e.Plan(t.Context(), engine.Request{Manifests: m}, engine.NopSink{})
	require.NoError(t, err)
	assert.False(t, res.Plan.HasChanges(), "%s", res.Plan)
}

// A runtime older than the fingerprints endpoint (it answers 404, as a runtime answers every path it
// does not know) reports keys as their salted hashes: they are compared as they are, with a warning. A
// runtime that fails otherwise cannot have its keys compared and is shown unreachable.
func TestFingerprintKeysOtherRuntimes(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error": {"code": "not_found", "message": "no such endpoint"}}`, http.StatusNotFound)
	}))
	defer old.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error": {"code": "internal", "message": "boom"}}`, http.StatusInternalServerError)
	}))
	defer broken.Close()
	o := engine.Observation{
		Snapshot: plan.Snapshot{Environments: map[string]plan.EnvironmentState{
			"old":    {Name: "old", Exists: true, Running: true, Reachable: true},
			"broken": {Name: "broken", Exists: true, Running: true, Reachable: true},
			"down":   {Name: "down", Exists: true, Running: true},
		}},
		Endpoints: map[string]providers.Endpoint{"old": {URL: old.URL}, "broken": {URL: broken.URL}, "down": {URL: broken.URL}},
	}
	key := func(env string) spec.App {
		return spec.App{Metadata: spec.Metadata{Name: "crm-" + env}, Spec: spec.AppSpec{Environment: env,
			APIKeys: []spec.APIKey{{Name: "web", Value: spec.SecretRef{Value: "s3cret"}}}}}
	}
	engine.FingerprintKeys(t.Context(), &o, []spec.App{key("old"), key("broken"), key("down")}, 0)

	h := spec.SecretHash("crm-old", "s3cret")
	assert.Equal(t, map[string]string{h: h}, o.Snapshot.Environments["old"].KeyFingerprints)
	assert.True(t, o.Snapshot.Environments["old"].Reachable)
	require.Len(t, o.Problems, 1)
	assert.Contains(t, o.Problems[0].Error(), "environment old: its runtime at "+old.URL+" predates API-key fingerprints")

	b := o.Snapshot.Environments["broken"]
	assert.False(t, b.Reachable)
	assert.Nil(t, b.KeyFingerprints)
	assert.Contains(t, b.Error, "could not fingerprint the declared API keys")
	assert.Contains(t, b.Error, "boom")
	assert.Equal(t, plan.EnvironmentState{Name: "down", Exists: true, Running: true}, o.Snapshot.Environments["down"], "an unreachable runtime is not asked")
}
