package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

func environment(name string, maxApps int, labels map[string]string) spec.Environment {
	return spec.Environment{Metadata: spec.Metadata{Name: name, Labels: labels},
		Spec: spec.EnvironmentSpec{Provider: spec.ProviderLocal, Runtime: spec.RuntimeSpec{MaxApps: maxApps}}}
}

var prod = map[string]string{"tier": "prod"}

func placed(name, strategy string) spec.App {
	return spec.App{Metadata: spec.Metadata{Name: name, Labels: map[string]string{spec.LabelAppSet: "tenants"}},
		Source: spec.Source{File: "tenants.yaml", Line: 9, Column: 11},
		Spec:   spec.AppSpec{Placement: &spec.Placement{Selector: prod, Strategy: strategy}}}
}

func fixed(name, env string) spec.App {
	return spec.App{Metadata: spec.Metadata{Name: name}, Spec: spec.AppSpec{Environment: env}}
}

func tenants(n int, strategy string) []spec.App {
	apps := make([]spec.App, n)
	for i := range apps {
		apps[i] = placed(fmt.Sprintf("t%02d", i), strategy)
	}
	return apps
}

// observed is a snapshot where every named environment runs and reports the apps listed for it.
func observed(apps map[string][]string) plan.Snapshot {
	s := plan.Snapshot{Fleet: "f", Environments: map[string]plan.EnvironmentState{}}
	for env, names := range apps {
		st := plan.EnvironmentState{Name: env, Provider: spec.ProviderLocal, Exists: true, Running: true, Reachable: true}
		for _, n := range names {
			st.Apps = append(st.Apps, api.App{Name: n, Status: api.StatusRunning})
		}
		s.Environments[env] = st
	}
	return s
}

// where maps each app to its environment.
func where(t *testing.T, r Result) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range r.Apps {
		require.Nil(t, a.Spec.Placement, "a placed app carries no placement")
		require.NotEmpty(t, a.Spec.Environment)
		out[a.Metadata.Name] = a.Spec.Environment
	}
	return out
}

func counts(m map[string]string) map[string]int {
	out := map[string]int{}
	for _, e := range m {
		out[e]++
	}
	return out
}

func TestPlace_SpreadEvensOut(t *testing.T) {
	envs := []spec.Environment{environment("p1", 100, prod), environment("p2", 100, prod), environment("p3", 100, prod),
		environment("dev", 100, map[string]string{"tier": "dev"})}
	apps := append(tenants(7, spec.StrategySpread), fixed("crm", "p1"))
	r, err := Place(apps, envs, plan.Snapshot{}, Options{})
	require.NoError(t, err)
	got := where(t, r)
	// crm is pinned to p1, so p1 gets one tenant fewer; ties go to the first name.
	assert.Equal(t, map[string]int{"p1": 3, "p2": 3, "p3": 2}, counts(got))
	assert.Equal(t, "p2", got["t00"])
	assert.Equal(t, "p3", got["t01"])
	assert.Equal(t, "p1", got["t02"])
	assert.Equal(t, "placed in p2: spread over {tier=prod}, the fewest apps (0 of 100)", r.Why["t00"])
	assert.Equal(t, "placed in p1: spread over {tier=prod}, the fewest apps (1 of 100)", r.Why["t02"])
	assert.NotContains(t, r.Why, "crm")
	assert.NotNil(t, apps[0].Spec.Placement, "the input is not changed")
	assert.Empty(t, apps[0].Spec.Environment, "the input is not changed")
}

func TestPlace_BinpackFills(t *testing.T) {
	envs := []spec.Environment{environment("p2", 3, prod), environment("p1", 2, prod), environment("p3", 5, prod)}
	r, err := Place(tenants(6, spec.StrategyBinpack), envs, observed(map[string][]string{"p1": {"stranger"}}), Options{})
	require.NoError(t, err)
	got := where(t, r)
	// p1 holds an undeclared app already, so it takes one; then p2 is filled, then p3.
	assert.Equal(t, map[string]int{"p1": 1, "p2": 3, "p3": 2}, counts(got))
	assert.Equal(t, "p1", got["t00"])
	assert.Equal(t, "p2", got["t01"])
	assert.Equal(t, "p3", got["t05"])
	assert.Equal(t, "placed in p3: binpack over {tier=prod}, the first by name with room (0 of 5)", r.Why["t04"])
}

func TestPlace_FullFleetNamesTheAppSet(t *testing.T) {
	envs := []spec.Environment{environment("p1", 1, prod), environment("p2", 1, prod)}
	r, err := Place(tenants(3, spec.StrategySpread), envs, plan.Snapshot{}, Options{})
	require.ErrorIs(t, err, ErrFull)
	assert.Equal(t, `the fleet is full: app "t02" (AppSet "tenants", tenants.yaml:9:11): no environment matching {tier=prod} has room `+
		`(p1 holds 1 of 1, p2 holds 1 of 1); raise their runtime.maxApps or add an environment with matching labels`, err.Error())
	assert.Len(t, r.Apps, 2, "the apps that fit are placed")
}

func TestPlace_Stable(t *testing.T) {
	envs := []spec.Environment{environment("p1", 100, prod), environment("p2", 100, prod), environment("p3", 100, prod)}
	// Everything sits in p1: spread would pick p2 or p3 for a new app, but what runs stays.
	snap := observed(map[string][]string{"p1": {"t00", "t01", "t02", "t03"}, "p2": {}, "p3": {}})
	base, err := Place(tenants(4, spec.StrategySpread), envs, snap, Options{})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"p1": 4}, counts(where(t, base)))
	assert.Empty(t, base.Why)

	t.Run("an unrelated app is added", func(t *testing.T) {
		r, err := Place(append(tenants(4, spec.StrategySpread), fixed("crm", "p2")), envs, snap, Options{})
		require.NoError(t, err)
		got := where(t, r)
		assert.Equal(t, map[string]int{"p1": 4, "p2": 1}, counts(got))
		assert.Empty(t, r.Why)
	})
	t.Run("an unrelated environment is added and another changes", func(t *testing.T) {
		more := append(envs[:2:2], environment("p3", 7, prod), environment("dev", 100, nil))
		r, err := Place(tenants(4, spec.StrategySpread), more, snap, Options{})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"p1": 4}, counts(where(t, r)))
	})
	t.Run("a new matching environment takes new apps only", func(t *testing.T) {
		more := append(envs[:3:3], environment("p4", 100, prod))
		snap := observed(map[string][]string{"p1": {"t00", "t01"}, "p2": {"t02"}, "p3": {"t03"}})
		r, err := Place(tenants(6, spec.StrategySpread), more, snap, Options{})
		require.NoError(t, err)
		got := where(t, r)
		assert.Equal(t, map[string]string{"t00": "p1", "t01": "p1", "t02": "p2", "t03": "p3", "t04": "p4", "t05": "p2"}, got)
		assert.Equal(t, []string{"t04", "t05"}, keys(r.Why))
	})
	t.Run("an environment that stops matching gives its apps up", func(t *testing.T) {
		changed := []spec.Environment{environment("p1", 100, nil), envs[1], envs[2]}
		r, err := Place(tenants(4, spec.StrategySpread), changed, snap, Options{})
		require.NoError(t, err)
		got := where(t, r)
		assert.Equal(t, map[string]int{"p2": 2, "p3": 2}, counts(got))
		assert.Equal(t, "placed in p2: p1 no longer matches {tier=prod}; spread over {tier=prod}, the fewest apps (0 of 100)", r.Why["t00"])
	})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestPlace_Rebalance(t *testing.T) {
	envs := []spec.Environment{environment("p1", 100, prod), environment("p2", 100, prod), environment("p3", 100, prod)}
	snap := observed(map[string][]string{"p1": {"t00", "t01", "t02", "t03", "t04", "t05", "t06"}, "p2": {"crm"}})
	apps := append(tenants(7, spec.StrategySpread), fixed("crm", "p2"))

	r, err := Place(apps, envs, snap, Options{})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"p1": 7, "p2": 1}, counts(where(t, r)), "without --rebalance nothing moves")

	r, err = Place(apps, envs, snap, Options{Rebalance: true})
	require.NoError(t, err)
	got := where(t, r)
	// 8 apps over 3 environments: 3, 3, 2, reached with the fewest moves (4), the last names first.
	assert.Equal(t, map[string]int{"p1": 3, "p2": 3, "p3": 2}, counts(got))
	assert.Equal(t, []string{"t03", "t04", "t05", "t06"}, keys(r.Why))
	assert.Equal(t, "p3", got["t06"])
	assert.Equal(t, "rebalanced from p1 to p3: spread over {tier=prod}, p1 held 7 apps and p3 0", r.Why["t06"])

	again, err := Place(apps, envs, observed(map[string][]string{"p1": {"t00", "t01", "t02"}, "p2": {"crm", "t03", "t05"}, "p3": {"t04", "t06"}}), Options{Rebalance: true})
	require.NoError(t, err)
	assert.Empty(t, again.Why, "a balanced fleet plans no move")
}

func TestPlace_UnreachableAndMoving(t *testing.T) {
	envs := []spec.Environment{environment("p1", 100, prod), environment("p2", 100, prod)}
	snap := observed(map[string][]string{"p2": {"t00"}})
	snap.Environments["p1"] = plan.EnvironmentState{Name: "p1", Exists: true, Running: true, Reachable: false}
	r, err := Place(tenants(3, spec.StrategySpread), envs, snap, Options{Rebalance: true})
	require.NoError(t, err)
	// p1 does not answer: its apps are unknown, so new apps go to p2 although it holds more.
	assert.Equal(t, map[string]string{"t00": "p2", "t01": "p2", "t02": "p2"}, where(t, r))

	// An app a move is bringing into p2 stays there, though the source still reports it.
	snap = observed(map[string][]string{"p1": {"t00"}, "p2": {}})
	st := snap.Environments["p2"]
	st.Apps = []api.App{{Name: "t00", Labels: map[string]string{spec.LabelMoveFrom: "p1"}}}
	snap.Environments["p2"] = st
	r, err = Place(tenants(1, spec.StrategySpread), envs, snap, Options{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"t00": "p2"}, where(t, r))
}
