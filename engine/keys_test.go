package engine_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/plan"
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
