package fleet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appfleet/appfleet/internal/testbin"
)

// Bounds of the work around the measurements: a fixture of 5,000 apps takes about a minute to apply on
// two cores, destroying it about as long; Terraform's setup of 1,000 resources about 30 s.
const (
	setupTimeout   = 15 * time.Minute
	destroyTimeout = 5 * time.Minute
	killGrace      = 10 * time.Second
	// watchdogMargin is how long before go test's -timeout the run cleans up and exits on its own: the
	// timeout panics the test binary, which would leave detached runtimes running.
	watchdogMargin = time.Minute
)

// run is the state of one benchmark run: its temporary root, the binary under test, and every state dir
// an apply has used, so that all of them are destroyed at the end whatever happened.
var run struct {
	mu      sync.Mutex
	root    string
	applied []appliedFleet
	done    bool
}

// appliedFleet is a fleet that an apply may have started runtimes for.
type appliedFleet struct {
	manifests, state string
}

func TestMain(m *testing.M) {
	flag.Parse()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "bench: %v: destroying the fleets this run applied\n", s)
		cleanup()
		os.Exit(130)
	}()
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 2*watchdogMargin {
			time.AfterFunc(d-watchdogMargin, func() {
				fmt.Fprintf(os.Stderr, "bench: -timeout %s is near: destroying the fleets this run applied and stopping\n", d)
				cleanup()
				os.Exit(1)
			})
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// runRoot returns the run's temporary directory, creating it on first use.
func runRoot(tb testing.TB) string {
	tb.Helper()
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.root == "" {
		dir, err := os.MkdirTemp("", "appfleet-bench-")
		if err != nil {
			tb.Fatalf("create the run's directory: %v", err)
		}
		// Resolve symlinks: the local provider recognises its runtimes by the data dir on their command
		// line, and KillRuntimes compares against that path.
		if dir, err = filepath.EvalSymlinks(dir); err != nil {
			tb.Fatalf("create the run's directory: %v", err)
		}
		run.root = dir
	}
	return run.root
}

// track records that an apply is about to use state with manifests, before it starts, so that even an
// apply that fails part-way is destroyed at the end.
func track(manifests, state string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.applied = append(run.applied, appliedFleet{manifests: manifests, state: state})
}

// cleanup destroys every fleet the run applied, kills any runtime still recorded in their state dirs,
// and removes the run's directory. It runs once, from whichever of the normal end, a signal or the
// watchdog comes first.
func cleanup() {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.done {
		return
	}
	run.done = true
	leaked := false
	for _, f := range run.applied {
		if bin := binary.path; bin != "" {
			ctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
			res, err := Run(ctx, f.manifests, appfleetEnv(), bin, "destroy", f.manifests, "--state-dir", f.state, "--yes")
			cancel()
			if err != nil || res.Exit != 0 {
				fmt.Fprintf(os.Stderr, "bench: destroy %s (state %s) failed (exit %d, %v):\n%s\n", f.manifests, f.state, res.Exit, err, Tail(res.Stderr, 20))
			}
		}
		pids, err := KillRuntimes(f.state, killGrace)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: find runtimes in %s: %v\n", f.state, err)
		}
		if len(pids) > 0 {
			leaked = true
			fmt.Fprintf(os.Stderr, "bench: killed runtimes that outlived destroy in %s: pids %v\n", f.state, pids)
		}
	}
	if run.root != "" && !leaked {
		if err := os.RemoveAll(run.root); err != nil {
			fmt.Fprintf(os.Stderr, "bench: remove %s: %v\n", run.root, err)
		}
	} else if leaked {
		fmt.Fprintf(os.Stderr, "bench: kept %s, whose runtime logs show why destroy left runtimes behind\n", run.root)
	}
}

// binary is the appfleet executable under test, built once per run from this module.
var binary struct {
	once sync.Once
	path string
	err  error
}

// appfleetBinary builds ./cmd/appfleet into the run's directory and checks that it can serve runtimes.
func appfleetBinary(tb testing.TB) string {
	tb.Helper()
	root := runRoot(tb)
	binary.once.Do(func() {
		if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
			binary.err = err
			return
		}
		path, err := testbin.Build(filepath.Join(root, "bin"))
		if err != nil {
			binary.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		res, err := Run(ctx, root, appfleetEnv(), path, "runtime", "serve", "--help")
		if err == nil && res.Exit != 0 {
			err = fmt.Errorf("this build of appfleet cannot serve runtimes ('appfleet runtime serve --help' exits %d): %s", res.Exit, Tail(res.Stderr, 5))
		}
		if err != nil {
			binary.err = err
			return
		}
		run.mu.Lock()
		binary.path = path
		run.mu.Unlock()
	})
	if binary.err != nil {
		tb.Fatal(binary.err)
	}
	return binary.path
}

// appfleetEnv is the environment every appfleet command runs with: plain output, and no state dir from
// the caller's environment (every command gets --state-dir).
func appfleetEnv() []string {
	return []string{"NO_COLOR=1", "APPFLEET_STATE_DIR="}
}

// terraformPath is terraform's path, or "" when it is not installed: only then is the baseline skipped.
func terraformPath(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("terraform")
	if err != nil {
		tb.Logf("terraform is not on PATH (%v): the Terraform baseline is skipped, appfleet is still measured", err)
		return ""
	}
	return p
}
