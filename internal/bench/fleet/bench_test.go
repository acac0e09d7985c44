package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/appfleet/appfleet/engine"
	"github.com/appfleet/appfleet/placement"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/providers/all"
	"github.com/appfleet/appfleet/spec"
)

// Targets of issue 4, for the verdict each benchmark logs.
const (
	noopPlanTarget = 300 * time.Millisecond
	applyTarget    = 10 * time.Second
)

// BenchmarkNoopPlan times `appfleet plan --detailed-exitcode` of 1,000 applied apps in 10 local
// environments, as a process from start to exit, and in the same iteration `terraform plan
// -detailed-exitcode` of 1,000 applied terraform_data resources. ns/op is appfleet's alone (Terraform is
// timed with the benchmark's timer stopped); both must report no changes.
func BenchmarkNoopPlan(b *testing.B) {
	const n = 1000
	fx := fleetFixture(b, n)
	tf := tfPlanModule.setup(b, "tf-plan-1000", n, true)
	logLoad(b)
	var af, afCPU, tfd time.Duration
	iters := 0
	for b.Loop() {
		res := fx.planNoop(b)
		af += res.Duration
		afCPU += res.CPU
		if tf != nil {
			b.StopTimer()
			res, err := tf.run(b.Context(), "plan", "-detailed-exitcode", "-input=false", "-no-color")
			if err != nil {
				b.Fatalf("terraform plan of %d terraform_data is not a no-op: %v", n, err)
			}
			tfd += res.Duration
			b.StartTimer()
		}
		iters++
	}
	afMean := af / time.Duration(iters)
	b.ReportMetric(ms(afMean), "ms/plan")
	b.ReportMetric(ms(afCPU/time.Duration(iters)), "cpu-ms/plan")
	b.Logf("appfleet no-op plan of %d apps: %s (target %s: %s)", n, afMean.Round(time.Millisecond/10), noopPlanTarget, verdict(afMean, noopPlanTarget))
	if tf != nil {
		tfMean := tfd / time.Duration(iters)
		b.ReportMetric(ms(tfMean), "terraform-ms/plan")
		b.ReportMetric(float64(tfMean)/float64(afMean), "terraform/appfleet")
		b.Logf("terraform no-op plan of %d terraform_data: %s; appfleet is %.1fx as fast", n, tfMean.Round(time.Millisecond), float64(tfMean)/float64(afMean))
	}
	logLoad(b)
}

// BenchmarkApply times `appfleet apply --yes` of 1,000 apps in 10 local environments from nothing (a
// fresh state dir each iteration, so that every runtime starts and every app is created), and in the
// same iteration `terraform apply` of 1,000 terraform_data from an empty state. ns/op is appfleet's alone.
// Between the two, with the timer stopped, a plan checks that the apply converged and the fleet is
// destroyed, so that Terraform does not share the machine with 10 runtimes it would not have.
func BenchmarkApply(b *testing.B) {
	const n = 1000
	bin := appfleetBinary(b)
	root := runRoot(b)
	manifests := filepath.Join(root, "fleet-apply-1000")
	if err := WriteManifests(manifests, n, environments); err != nil {
		b.Fatal(err)
	}
	tf := tfApplyModule.setup(b, "tf-apply-1000", n, false)
	logLoad(b)
	var af, afCPU, rtCPU, tfd time.Duration
	iters := 0
	for b.Loop() {
		b.StopTimer()
		fx := &appliedFixture{apps: n, manifests: manifests, state: filepath.Join(root, fmt.Sprintf("state-apply-%d", iters))}
		track(fx.manifests, fx.state)
		b.StartTimer()
		res, err := Run(b.Context(), manifests, appfleetEnv(), bin, fx.args("apply", "--yes")...)
		b.StopTimer()
		if err == nil && res.Exit != 0 {
			err = fmt.Errorf("appfleet apply of %d apps: exit %d, want 0:\n%s", n, res.Exit, Tail(res.Stderr, 30))
		}
		if err != nil {
			b.Fatal(err)
		}
		af += res.Duration
		afCPU += res.CPU
		cpu, err := RuntimesCPU(fx.state)
		if err != nil {
			b.Fatal(err)
		}
		rtCPU += cpu
		fx.planNoop(b)
		destroy(b, fx)

		if tf != nil {
			for _, f := range []string{"terraform.tfstate", "terraform.tfstate.backup"} {
				if err := os.Remove(filepath.Join(tf.dir, f)); err != nil && !os.IsNotExist(err) {
					b.Fatal(err)
				}
			}
			res, err := tf.run(b.Context(), "apply", "-auto-approve", "-input=false", "-no-color")
			if err != nil {
				b.Fatal(err)
			}
			tfd += res.Duration
		}
		iters++
		b.StartTimer()
	}
	afMean := af / time.Duration(iters)
	b.ReportMetric(afMean.Seconds(), "s/apply")
	b.ReportMetric((afCPU / time.Duration(iters)).Seconds(), "cpu-s/apply")
	b.ReportMetric((rtCPU / time.Duration(iters)).Seconds(), "runtime-cpu-s/apply")
	b.Logf("appfleet apply of %d apps from nothing: %s (target %s: %s)", n, afMean.Round(time.Millisecond), applyTarget, verdict(afMean, applyTarget))
	if tf != nil {
		tfMean := tfd / time.Duration(iters)
		b.ReportMetric(tfMean.Seconds(), "terraform-s/apply")
		b.ReportMetric(float64(tfMean)/float64(afMean), "terraform/appfleet")
		b.Logf("terraform apply of %d terraform_data from nothing: %s; appfleet is %.1fx as fast", n, tfMean.Round(time.Millisecond), float64(tfMean)/float64(afMean))
	}
	logLoad(b)
}

// destroy runs `appfleet destroy --yes` on the fixture, then kills whatever runtime outlived it (and
// fails the benchmark, since destroy must stop them).
func destroy(b *testing.B, fx *appliedFixture) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), destroyTimeout)
	defer cancel()
	res, err := Run(ctx, fx.manifests, appfleetEnv(), binary.path, fx.args("destroy", "--yes")...)
	if err == nil && res.Exit != 0 {
		err = fmt.Errorf("appfleet destroy of %d apps: exit %d:\n%s", fx.apps, res.Exit, Tail(res.Stderr, 30))
	}
	pids, kerr := KillRuntimes(fx.state, killGrace)
	if err != nil {
		b.Fatal(err)
	}
	if kerr != nil {
		b.Fatal(kerr)
	}
	if len(pids) > 0 {
		b.Fatalf("appfleet destroy left runtimes running in %s: killed pids %v", fx.state, pids)
	}
}

// planSizes are the fleet sizes whose plan times show how planning grows.
var planSizes = []int{100, 1000, 5000}

// BenchmarkPlanScaling times a no-op `appfleet plan` as a process for 100, 1,000 and 5,000 apps in 10
// local environments. Linear growth shows as a µs/app that stays flat from 1,000 to 5,000 apps (at 100
// apps the process's fixed start-up cost dominates), and as the same marginal cost per added app from
// 100 to 1,000 as from 1,000 to 5,000, which the last size logs.
func BenchmarkPlanScaling(b *testing.B) {
	means := map[int]time.Duration{}
	for _, n := range planSizes {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			fx := fleetFixture(b, n)
			logLoad(b)
			var total, cpu time.Duration
			iters := 0
			for b.Loop() {
				res := fx.planNoop(b)
				total += res.Duration
				cpu += res.CPU
				iters++
			}
			mean := total / time.Duration(iters)
			b.ReportMetric(ms(mean), "ms/plan")
			b.ReportMetric(ms(cpu/time.Duration(iters)), "cpu-ms/plan")
			b.ReportMetric(float64(mean.Microseconds())/float64(n), "µs/app")
			means[n] = mean
			// Logged by the last size: a parent benchmark's own log is not printed.
			if len(means) == len(planSizes) {
				b.Logf("growth: %s", growthText(means))
			}
		})
	}
}

// BenchmarkPlanPhases does in-process what `appfleet plan` does, phase by phase, for 100, 1,000 and
// 5,000 apps, and reports each phase's time: reading and validating the manifests (spec.Load and
// ResolveSecrets), observing every environment and runtime (engine.Observe), computing the plan
// (plan.Build) and writing it (plan.RenderText). start-ms is `appfleet version` as a process, the floor
// any command pays to start. Run it with -cpuprofile or -memprofile to see what dominates.
func BenchmarkPlanPhases(b *testing.B) {
	for _, n := range planSizes {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			fx := fleetFixture(b, n)
			bin := binary.path
			var load, observe, build, render, start time.Duration
			iters := 0
			for b.Loop() {
				t0 := time.Now()
				m, resolved := fx.load(b)
				t1 := time.Now()
				o := fx.observe(b, resolved)
				t2 := time.Now()
				p, err := plan.Build(plan.Desired{
					Fleet:        resolved.Name,
					Environments: resolved.Environments,
					Apps:         resolved.Apps,
					Digest:       resolved.Digest,
				}, o.Snapshot, plan.Options{Prune: m.Prune()})
				if err != nil {
					b.Fatal(err)
				}
				if p.HasChanges() {
					b.Fatalf("in-process plan of %d apps has changes:\n%s", n, Tail(p.String(), 30))
				}
				t3 := time.Now()
				if err := plan.RenderText(io.Discard, p, plan.TextOptions{}); err != nil {
					b.Fatal(err)
				}
				t4 := time.Now()

				b.StopTimer()
				res, err := Run(b.Context(), fx.manifests, appfleetEnv(), bin, "version")
				if err != nil || res.Exit != 0 {
					b.Fatalf("appfleet version: exit %d, %v", res.Exit, err)
				}
				start += res.Duration
				b.StartTimer()

				load += t1.Sub(t0)
				observe += t2.Sub(t1)
				build += t3.Sub(t2)
				render += t4.Sub(t3)
				iters++
			}
			per := func(d time.Duration) float64 { return ms(d / time.Duration(iters)) }
			b.ReportMetric(per(load), "load-ms")
			b.ReportMetric(per(observe), "observe-ms")
			b.ReportMetric(per(build), "build-ms")
			b.ReportMetric(per(render), "render-ms")
			b.ReportMetric(per(start), "start-ms")
		})
	}
}

// appSetEnvironments is how many local environments the AppSet benchmark places its apps over.
const appSetEnvironments = 20

// appSetTarget is issue 12's goal for a no-op plan of 10,000 generated apps over 20 environments.
const appSetTarget = time.Second

// BenchmarkAppSetNoopPlan times, as processes from start to exit, `appfleet validate` and `appfleet plan
// --detailed-exitcode` of 10,000 apps generated by AppSets (5 files of 2,000 tenants) and placed by
// spread over 20 local environments, applied once before. ns/op is validate and plan together; the plan
// must report no changes. BenchmarkAppSetTerraformForEach is the Terraform counterpart, run after it: its
// setup takes Terraform many minutes, which must not hold appfleet's figures hostage.
func BenchmarkAppSetNoopPlan(b *testing.B) {
	const n = 10_000
	fx := appliedFleetFixture(b, "appset-10000", n, appSetEnvironments, WriteAppSetManifests)
	bin := binary.path
	logLoad(b)
	var val, valCPU, pl, plCPU time.Duration
	iters := 0
	for b.Loop() {
		res, err := Run(b.Context(), fx.manifests, appfleetEnv(), bin, "validate", fx.manifests)
		if err != nil || res.Exit != 0 {
			b.Fatalf("appfleet validate of %d generated apps: exit %d, %v:\n%s", n, res.Exit, err, Tail(res.Stderr, 10))
		}
		val += res.Duration
		valCPU += res.CPU
		res = fx.planNoop(b)
		pl += res.Duration
		plCPU += res.CPU
		iters++
	}
	per := func(d time.Duration) time.Duration { return d / time.Duration(iters) }
	b.ReportMetric(ms(per(val)), "validate-ms")
	b.ReportMetric(ms(per(valCPU)), "validate-cpu-ms")
	b.ReportMetric(ms(per(pl)), "ms/plan")
	b.ReportMetric(ms(per(plCPU)), "cpu-ms/plan")
	b.Logf("appfleet validate of %d generated apps: %s (cpu %s); no-op plan over %d environments: %s (cpu %s; target %s: %s)",
		n, per(val).Round(time.Millisecond), per(valCPU).Round(time.Millisecond), appSetEnvironments,
		per(pl).Round(time.Millisecond), per(plCPU).Round(time.Millisecond), appSetTarget, verdict(per(pl), appSetTarget))
	logLoad(b)
}

// BenchmarkAppSetTerraformForEach times `terraform plan -detailed-exitcode` of one terraform_data
// resource with for_each over 10,000 tenants (taken from a variable), applied once before: the
// counterpart of BenchmarkAppSetNoopPlan's plan. The plan must report no changes.
func BenchmarkAppSetTerraformForEach(b *testing.B) {
	const n = 10_000
	tf := tfForEachModule.setup(b, "tf-foreach-10000", n, true)
	if tf == nil {
		b.Skip("terraform is not on the PATH")
	}
	logLoad(b)
	var d, cpu time.Duration
	iters := 0
	for b.Loop() {
		res, err := tf.run(b.Context(), "plan", "-detailed-exitcode", "-input=false", "-no-color")
		if err != nil {
			b.Fatalf("terraform plan of for_each over %d terraform_data is not a no-op: %v", n, err)
		}
		d += res.Duration
		cpu += res.CPU
		iters++
	}
	mean := d / time.Duration(iters)
	b.ReportMetric(ms(mean), "ms/plan")
	b.ReportMetric(ms(cpu/time.Duration(iters)), "cpu-ms/plan")
	b.Logf("terraform no-op plan of for_each over %d terraform_data: %s (cpu %s)", n, mean.Round(time.Millisecond), (cpu / time.Duration(iters)).Round(time.Millisecond))
	logLoad(b)
}

// BenchmarkAppSetPhases does in-process what `appfleet plan` does for 10,000 generated apps over 20
// environments, phase by phase: load (spec.Load: parse, expand the AppSets, validate; and
// ResolveSecrets), observe (engine.Observe), place (placement.Place) and build (plan.Build).
func BenchmarkAppSetPhases(b *testing.B) {
	const n = 10_000
	fx := appliedFleetFixture(b, "appset-10000", n, appSetEnvironments, WriteAppSetManifests)
	var load, observe, place, build time.Duration
	iters := 0
	for b.Loop() {
		t0 := time.Now()
		_, resolved := fx.load(b)
		t1 := time.Now()
		o := fx.observe(b, resolved)
		t2 := time.Now()
		res, err := placement.Place(resolved.Apps, resolved.Environments, o.Snapshot, placement.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		p, err := plan.Build(plan.Desired{Fleet: resolved.Name, Environments: resolved.Environments, Apps: res.Apps,
			Digest: resolved.Digest, Placement: res.Why, AppSets: resolved.AppSetNames()}, o.Snapshot, plan.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if p.HasChanges() {
			b.Fatalf("in-process plan of %d generated apps has changes:\n%s", n, Tail(p.String(), 30))
		}
		t4 := time.Now()
		load += t1.Sub(t0)
		observe += t2.Sub(t1)
		place += t3.Sub(t2)
		build += t4.Sub(t3)
		iters++
	}
	per := func(d time.Duration) float64 { return ms(d / time.Duration(iters)) }
	b.ReportMetric(per(load), "load-ms")
	b.ReportMetric(per(observe), "observe-ms")
	b.ReportMetric(per(place), "place-ms")
	b.ReportMetric(per(build), "build-ms")
}

// load reads and validates the fixture's manifests in-process, as a command does, secrets resolved.
func (fx *appliedFixture) load(b *testing.B) (m, resolved *spec.Manifests) {
	b.Helper()
	m, diags := spec.Load([]string{fx.manifests}, nil)
	if diags.HasErrors() {
		b.Fatal(diags.Err())
	}
	resolved, err := m.ResolveSecrets()
	if err != nil {
		b.Fatal(err)
	}
	return m, resolved
}

// observe observes the fixture's environments and runtimes in-process and fails unless all answered.
func (fx *appliedFixture) observe(b *testing.B, resolved *spec.Manifests) engine.Observation {
	b.Helper()
	cfg := providers.Config{Fleet: resolved.Name, StateDir: fx.state, Binary: binary.path}
	o := engine.Observe(b.Context(), all.Registry(), cfg, resolved.Environments, engine.DefaultObserveTimeout)
	for name, st := range o.Snapshot.Environments {
		if st.Error != "" || !st.Reachable {
			b.Fatalf("environment %s was not observed: %q", name, st.Error)
		}
	}
	return o
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func verdict(got, target time.Duration) string {
	if got <= target {
		return "met"
	}
	return "missed"
}

// growthText gives the marginal cost of an app between consecutive sizes: linear growth shows as the
// same marginal cost at every step, whatever the fixed cost of starting a process.
func growthText(means map[int]time.Duration) string {
	s := ""
	for i := 1; i < len(planSizes); i++ {
		lo, hi := planSizes[i-1], planSizes[i]
		if i > 1 {
			s += "; "
		}
		marginal := float64((means[hi] - means[lo]).Microseconds()) / float64(hi-lo)
		s += fmt.Sprintf("%d -> %d apps: %.0f µs per added app", lo, hi, marginal)
	}
	return s
}

// logLoad records the machine's load average, which the figures depend on: the machine is shared.
func logLoad(b *testing.B) {
	b.Helper()
	b.Logf("load average %s at %s", LoadAverage(), time.Now().Format(time.RFC3339))
}
