package placement

import (
	"fmt"
	"testing"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

// BenchmarkPlace_10k places 10,000 apps over 20 environments, then plans them: once with every app
// new (each one placed), once with every app observed where it was placed (a no-op plan).
func BenchmarkPlace_10k(b *testing.B) {
	var envs []spec.Environment
	for i := range 20 {
		envs = append(envs, environment(fmt.Sprintf("env-%02d", i), 1000, prod))
	}
	apps := tenants(10_000, spec.StrategySpread)
	placedOnce, err := Place(apps, envs, plan.Snapshot{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	running := plan.Snapshot{Fleet: "f", Environments: map[string]plan.EnvironmentState{}}
	for _, e := range envs {
		running.Environments[e.Metadata.Name] = plan.EnvironmentState{Name: e.Metadata.Name, Provider: spec.ProviderLocal,
			Exists: true, Running: true, Reachable: true, SpecHash: e.SpecHash()}
	}
	for _, a := range placedOnce.Apps {
		st := running.Environments[a.Spec.Environment]
		st.Apps = append(st.Apps, api.App{Name: a.Metadata.Name, Status: api.StatusRunning, Generation: 1,
			Labels: map[string]string{spec.LabelFleet: "f", spec.LabelAppSet: "tenants"}, Spec: a.Spec})
		running.Environments[a.Spec.Environment] = st
	}
	for _, tc := range []struct {
		name string
		snap plan.Snapshot
	}{{"new", plan.Snapshot{}}, {"noop", running}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r, err := Place(apps, envs, tc.snap, Options{})
				if err != nil {
					b.Fatal(err)
				}
				p, err := plan.Build(plan.Desired{Fleet: "f", Environments: envs, Apps: r.Apps, Placement: r.Why}, tc.snap, plan.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if tc.name == "noop" && p.HasChanges() {
					b.Fatalf("not a no-op:\n%s", p.String()[:2000])
				}
			}
		})
	}
}
