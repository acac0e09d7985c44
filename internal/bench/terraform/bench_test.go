package terraform

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/internal/bench/fleet"
	"github.com/appfleet/appfleet/internal/testbin"
)

// run is what the run created: its directory, binary and the fleets it applied, destroyed at the end.
var run struct {
	mu     sync.Mutex
	root   string
	bin    string
	fleets []string
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// cleanup destroys every fleet the run applied, kills any runtime a data dir still records, and removes
// the run's directory.
func cleanup() {
	run.mu.Lock()
	defer run.mu.Unlock()
	for _, dir := range run.fleets {
		if run.bin != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			_, _ = fleet.Run(ctx, dir, fleet.CLIEnv, run.bin, "destroy", "--yes")
			cancel()
		}
		pids, _ := filepath.Glob(filepath.Join(dir, ".appfleet", "environments", "*", "runtime-data", "runtime.pid"))
		for _, f := range pids {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && ours(pid, filepath.Dir(f)) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if run.root != "" {
		_ = os.RemoveAll(run.root)
	}
}

// ours reports whether pid is a runtime serving dataDir (its command line names it).
func ours(pid int, dataDir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "\x00"+dataDir+"\x00")
}

// setup returns the run's directory and binary, or skips when terraform is not on the PATH.
func setup(b *testing.B) (root, bin string) {
	b.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		b.Skipf("terraform is not on the PATH (%v)", err)
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.root == "" {
		dir, err := os.MkdirTemp("", "appfleet-bench-terraform-")
		if err != nil {
			b.Fatal(err)
		}
		if dir, err = filepath.EvalSymlinks(dir); err != nil {
			b.Fatal(err)
		}
		run.root = dir
		if run.bin, err = testbin.Build(dir); err != nil {
			b.Fatal(err)
		}
	}
	return run.root, run.bin
}

// writeFleet writes fleet.WriteManifests' fleet into root/name (apps spread over envs environments),
// with provider terraform (examples/terraform-local's module) or local, and registers it for cleanup.
func writeFleet(b *testing.B, root, name string, apps, envs int, provider string) string {
	b.Helper()
	dir := filepath.Join(root, name)
	if err := fleet.WriteManifests(dir, apps, envs); err != nil {
		b.Fatal(err)
	}
	if provider == "terraform" {
		module, err := filepath.Abs("../../../examples/terraform-local/runtime")
		if err != nil {
			b.Fatal(err)
		}
		if err := fleet.SetProvider(dir, "provider: terraform\n  terraform: {module: "+module+"}"); err != nil {
			b.Fatal(err)
		}
	}
	run.mu.Lock()
	run.fleets = append(run.fleets, dir)
	run.mu.Unlock()
	return dir
}

// BenchmarkNoopPlan times `appfleet plan --detailed-exitcode` of 5 terraform environments × 100 apps
// (every environment a terraform plan with refresh, in parallel, then every runtime's
// apps), and in the same iteration, timer stopped, the same fleet on 5 local environments. Both must
// report no changes. ns/op is the terraform fleet's alone.
func BenchmarkNoopPlan(b *testing.B) {
	root, bin := setup(b)
	tfDir := writeFleet(b, root, "plan-terraform", 500, 5, "terraform")
	localDir := writeFleet(b, root, "plan-local", 500, 5, "local")
	fleet.Must(b, bin, tfDir, "apply", "--yes")
	fleet.Must(b, bin, localDir, "apply", "--yes")
	defer func() {
		fleet.Must(b, bin, tfDir, "destroy", "--yes")
		fleet.Must(b, bin, localDir, "destroy", "--yes")
	}()
	fleet.LogLoad(b)
	var tf, tfCPU, lc time.Duration
	iters := 0
	for b.Loop() {
		res := fleet.Must(b, bin, tfDir, "plan", "--detailed-exitcode")
		tf += res.Duration
		tfCPU += res.CPU
		b.StopTimer()
		res = fleet.Must(b, bin, localDir, "plan", "--detailed-exitcode")
		lc += res.Duration
		b.StartTimer()
		iters++
	}
	tfMean, lcMean := tf/time.Duration(iters), lc/time.Duration(iters)
	b.ReportMetric(fleet.Ms(tfMean), "terraform-ms/plan")
	b.ReportMetric(fleet.Ms(tfCPU/time.Duration(iters)), "terraform-cli-cpu-ms/plan")
	b.ReportMetric(fleet.Ms(lcMean), "local-ms/plan")
	b.ReportMetric(float64(tfMean)/float64(lcMean), "terraform/local")
	b.Logf("no-op plan of 5 x 100 apps: terraform %s, local %s, ratio %.2f", tfMean.Round(time.Millisecond), lcMean.Round(time.Millisecond), float64(tfMean)/float64(lcMean))
	fleet.LogLoad(b)
}

// BenchmarkApplyOne times `appfleet apply --yes` of one terraform environment with no apps from nothing
// (a fresh directory each iteration: terraform init, apply, the runtime started and answering), then,
// timer stopped, checks that a plan is a no-op and destroys it.
func BenchmarkApplyOne(b *testing.B) {
	root, bin := setup(b)
	fleet.LogLoad(b)
	var total time.Duration
	iters := 0
	for b.Loop() {
		b.StopTimer()
		dir := writeFleet(b, root, fmt.Sprintf("apply-one-%d", iters), 0, 1, "terraform")
		b.StartTimer()
		res := fleet.Must(b, bin, dir, "apply", "--yes")
		b.StopTimer()
		total += res.Duration
		iters++
		fleet.Must(b, bin, dir, "plan", "--detailed-exitcode")
		fleet.Must(b, bin, dir, "destroy", "--yes")
		b.StartTimer()
	}
	b.ReportMetric(fleet.Ms(total/time.Duration(iters)), "ms/apply")
	fleet.LogLoad(b)
}
