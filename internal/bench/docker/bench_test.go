package docker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/appfleet/appfleet/internal/bench/fleet"
	"github.com/appfleet/appfleet/internal/dockertest"
	"github.com/appfleet/appfleet/internal/testbin"
)

// The goal of issue 9: a no-op plan of docker environments within twice the time of the same fleet on local.
const planRatioGoal = 2.0

// run is what the run created, removed at the end whatever happened.
var run struct {
	mu       sync.Mutex
	root     string
	bin      string
	fleets   []string
	binaries []string // binaries whose images the run built
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// cleanup removes every container and volume of the run's fleets, the images built from the run's
// binaries, and the run's directory (local runtimes are destroyed by the benchmarks themselves).
func cleanup() {
	run.mu.Lock()
	defer run.mu.Unlock()
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		for _, f := range run.fleets {
			dockertest.RemoveFleet(cli, f)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		for _, b := range run.binaries {
			_, _ = cli.ImageRemove(ctx, "appfleet-runtime:"+digest(b)[:12], client.ImageRemoveOptions{PruneChildren: true})
		}
		cancel()
		_ = cli.Close()
	}
	if run.root != "" {
		_ = os.RemoveAll(run.root)
	}
}

// setup returns the run's directory and binary, or skips when no engine answers.
func setup(b *testing.B) (root, bin string) {
	b.Helper()
	cli, err := dockertest.Connect(b.Context())
	if err != nil {
		b.Skipf("no Docker engine answers here (%v)", err)
	}
	defer cli.Close()
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.root == "" {
		dir, err := os.MkdirTemp("", "appfleet-bench-docker-")
		if err != nil {
			b.Fatal(err)
		}
		run.root = dir
		if run.bin, err = testbin.Build(dir); err != nil {
			b.Fatal(err)
		}
		run.binaries = append(run.binaries, run.bin)
	}
	return run.root, run.bin
}

// newFleet returns a directory named after a fleet unique to the run, registered for cleanup.
func newFleet(b *testing.B, root, kind string) string {
	b.Helper()
	raw := make([]byte, 3)
	_, _ = rand.Read(raw)
	name := "bench-" + kind + "-" + hex.EncodeToString(raw)
	run.mu.Lock()
	run.fleets = append(run.fleets, name)
	run.mu.Unlock()
	return filepath.Join(root, name)
}

// writeFleet writes fleet.WriteManifests' fleet (apps spread over envs environments) with the given provider.
func writeFleet(b *testing.B, dir string, apps, envs int, provider string) {
	b.Helper()
	if err := fleet.WriteManifests(dir, apps, envs); err != nil {
		b.Fatal(err)
	}
	if provider == "local" {
		return
	}
	if err := fleet.SetProvider(dir, "provider: "+provider); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEnvironmentCreate times `appfleet apply --yes` of one docker environment with no apps, from
// nothing to a runtime that answers: with a cold image build (each iteration's binary differs by a few
// trailing bytes, so the host has no image for it) and with the image cached. The environment is
// destroyed, timer stopped, after each iteration.
func BenchmarkEnvironmentCreate(b *testing.B) {
	root, bin := setup(b)
	for _, cold := range []bool{true, false} {
		name := "cached"
		if cold {
			name = "cold"
		}
		b.Run("image="+name, func(b *testing.B) {
			fleet.LogLoad(b)
			if !cold {
				warm := newFleet(b, root, "warm")
				writeFleet(b, warm, 0, 1, "docker")
				fleet.Must(b, bin, warm, "apply", "--yes")
				fleet.Must(b, bin, warm, "destroy", "--yes")
			}
			var total time.Duration
			iters := 0
			for b.Loop() {
				b.StopTimer()
				use := bin
				if cold {
					use = variant(b, root, bin)
				}
				dir := newFleet(b, root, "create")
				writeFleet(b, dir, 0, 1, "docker")
				b.StartTimer()
				res := fleet.Must(b, use, dir, "apply", "--yes")
				b.StopTimer()
				total += res.Duration
				iters++
				fleet.Must(b, use, dir, "destroy", "--yes")
				b.StartTimer()
			}
			b.ReportMetric(fleet.Ms(total/time.Duration(iters)), "ms/create")
			fleet.LogLoad(b)
		})
	}
}

// variant copies bin with a few trailing bytes: another binary to Docker's eyes (a new image tag), the
// same program to the kernel's.
func variant(b *testing.B, root, bin string) string {
	b.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	path := filepath.Join(root, "appfleet-"+hex.EncodeToString(raw))
	if err := os.WriteFile(path, append(data, raw...), 0o755); err != nil {
		b.Fatal(err)
	}
	run.mu.Lock()
	run.binaries = append(run.binaries, path)
	run.mu.Unlock()
	return path
}

// BenchmarkApply200 times `appfleet apply --yes` of 200 apps into one docker environment from nothing
// (the image cached): the container starts and every app is created in it. A plan then must be a no-op,
// and the fleet is destroyed, timer stopped.
func BenchmarkApply200(b *testing.B) {
	root, bin := setup(b)
	fleet.LogLoad(b)
	var total, cpu time.Duration
	iters := 0
	for b.Loop() {
		b.StopTimer()
		dir := newFleet(b, root, "apply")
		writeFleet(b, dir, 200, 1, "docker")
		b.StartTimer()
		res := fleet.Must(b, bin, dir, "apply", "--yes")
		b.StopTimer()
		total += res.Duration
		cpu += res.CPU
		iters++
		fleet.Must(b, bin, dir, "plan", "--detailed-exitcode")
		fleet.Must(b, bin, dir, "destroy", "--yes")
		b.StartTimer()
	}
	b.ReportMetric(fleet.Ms(total/time.Duration(iters)), "ms/apply")
	b.ReportMetric(fleet.Ms(cpu/time.Duration(iters)), "cpu-ms/apply")
	fleet.LogLoad(b)
}

// BenchmarkNoopPlan times `appfleet plan --detailed-exitcode` of 10 docker environments of 100 apps each,
// and in the same iteration the same fleet on 10 local environments (timer stopped). Both must report no
// changes. ns/op is docker's alone, on the machine that applied (its tokens memo warm); the ratio is the
// goal's measure. A plan from a fresh checkout (no .appfleet: every token read back from its volume) is
// timed too, before each measured plan, timer stopped.
func BenchmarkNoopPlan(b *testing.B) {
	root, bin := setup(b)
	dockerDir := newFleet(b, root, "plan-docker")
	localDir := newFleet(b, root, "plan-local")
	writeFleet(b, dockerDir, 1000, 10, "docker")
	writeFleet(b, localDir, 1000, 10, "local")
	defer func() {
		fleet.Appfleet(b, bin, dockerDir, "destroy", "--yes")
		fleet.Appfleet(b, bin, localDir, "destroy", "--yes")
	}()
	fleet.Must(b, bin, dockerDir, "apply", "--yes")
	fleet.Must(b, bin, localDir, "apply", "--yes")
	fleet.LogLoad(b)
	var dk, dkCPU, dkCold, lc time.Duration
	iters := 0
	for b.Loop() {
		// First as on a fresh checkout: no memo of the tokens, each read back from its volume.
		b.StopTimer()
		if err := os.RemoveAll(filepath.Join(dockerDir, ".appfleet")); err != nil {
			b.Fatal(err)
		}
		res := fleet.Must(b, bin, dockerDir, "plan", "--detailed-exitcode")
		dkCold += res.Duration
		b.StartTimer()
		res = fleet.Must(b, bin, dockerDir, "plan", "--detailed-exitcode")
		dk += res.Duration
		dkCPU += res.CPU
		b.StopTimer()
		res = fleet.Must(b, bin, localDir, "plan", "--detailed-exitcode")
		lc += res.Duration
		b.StartTimer()
		iters++
	}
	dkMean, lcMean := dk/time.Duration(iters), lc/time.Duration(iters)
	ratio := float64(dkMean) / float64(lcMean)
	b.ReportMetric(fleet.Ms(dkMean), "docker-ms/plan")
	b.ReportMetric(fleet.Ms(dkCPU/time.Duration(iters)), "docker-cpu-ms/plan")
	b.ReportMetric(fleet.Ms(dkCold/time.Duration(iters)), "docker-fresh-checkout-ms/plan")
	b.ReportMetric(fleet.Ms(lcMean), "local-ms/plan")
	b.ReportMetric(ratio, "docker/local")
	verdict := "met"
	if ratio > planRatioGoal {
		verdict = "missed"
	}
	b.Logf("no-op plan of 10 x 100 apps: docker %s, local %s, ratio %.2f (goal <= %.1f: %s)", dkMean.Round(time.Millisecond), lcMean.Round(time.Millisecond), ratio, planRatioGoal, verdict)
	fleet.LogLoad(b)
}

func digest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("%064d", 0)
	}
	defer f.Close()
	h := sha256.New()
	_, _ = io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}
