package fleet

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// environments is how many local environments every benchmark fleet spreads its apps over.
const environments = 10

// appliedFixture is a generated fleet of a given size, applied once per run and kept running for every
// benchmark that plans against it.
type appliedFixture struct {
	once      sync.Once
	err       error
	apps      int
	manifests string
	state     string
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*appliedFixture{}
)

// fleetFixture returns the fleet of n written apps in 10 local environments, generating and applying it
// on first use and checking that a plan of it then changes nothing.
func fleetFixture(tb testing.TB, n int) *appliedFixture {
	tb.Helper()
	return appliedFleetFixture(tb, fmt.Sprintf("fleet-%d", n), n, environments, WriteManifests)
}

// appliedFleetFixture returns the fleet that write generates into a directory named key (n apps over
// envs local environments), generating and applying it on first use and checking that a plan of it then
// changes nothing.
func appliedFleetFixture(tb testing.TB, key string, n, envs int, write func(dir string, apps, envs int) error) *appliedFixture {
	tb.Helper()
	bin := appfleetBinary(tb)
	root := runRoot(tb)
	fixturesMu.Lock()
	fx, ok := fixtures[key]
	if !ok {
		fx = &appliedFixture{
			apps:      n,
			manifests: filepath.Join(root, key),
			state:     filepath.Join(root, "state-"+key),
		}
		fixtures[key] = fx
	}
	fixturesMu.Unlock()
	fx.once.Do(func() {
		if fx.err = write(fx.manifests, n, envs); fx.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		track(fx.manifests, fx.state)
		res, err := Run(ctx, fx.manifests, appfleetEnv(), bin, fx.args("apply", "--yes")...)
		if err == nil && res.Exit != 0 {
			err = fmt.Errorf("apply %d apps: exit %d:\n%s", n, res.Exit, Tail(res.Stderr, 30))
		}
		if err != nil {
			fx.err = err
			return
		}
		tb.Logf("setup: applied %d apps in %d environments in %s", n, envs, res.Duration.Round(1e6))
		res, err = Run(ctx, fx.manifests, appfleetEnv(), bin, fx.args("plan", "--detailed-exitcode")...)
		if err == nil && res.Exit != 0 {
			err = fmt.Errorf("the plan after applying %d apps is not a no-op: exit %d:\n%s\n%s", n, res.Exit, Tail(res.Stdout, 30), Tail(res.Stderr, 10))
		}
		fx.err = err
	})
	if fx.err != nil {
		tb.Fatal(fx.err)
	}
	return fx
}

// args is an appfleet command line against the fixture: verb, the manifests, its state dir, extra flags.
func (fx *appliedFixture) args(verb string, extra ...string) []string {
	return append([]string{verb, fx.manifests, "--state-dir", fx.state}, extra...)
}

// planNoop runs `appfleet plan --detailed-exitcode` against the fixture and fails unless it reports no
// changes: a benchmark of a plan that does work would measure the wrong thing.
func (fx *appliedFixture) planNoop(b *testing.B) Result {
	b.Helper()
	res, err := Run(b.Context(), fx.manifests, appfleetEnv(), binary.path, fx.args("plan", "--detailed-exitcode")...)
	if err != nil {
		b.Fatal(err)
	}
	if res.Exit != 0 {
		b.Fatalf("appfleet plan of %d apps: exit %d, want 0 (no changes):\n%s\n%s", fx.apps, res.Exit, Tail(res.Stdout, 30), Tail(res.Stderr, 10))
	}
	return res
}

// terraformModule is a Terraform root module of terraform_data resources, initialised once per run.
type terraformModule struct {
	once sync.Once
	err  error
	bin  string
	dir  string
	env  []string
	// write generates the module (WriteTerraform when nil) for envs environments (10 when 0).
	write func(dir string, n, envs int) error
	envs  int
	// timeout bounds each terraform command (setupTimeout when 0).
	timeout time.Duration
}

var (
	tfPlanModule  terraformModule // applied once; the no-op plan baseline
	tfApplyModule terraformModule // initialised only; each apply starts from an empty state
	// tfForEachModule is for_each over 10,000 tenants, applied once: its apply takes Terraform many
	// minutes on two shared cores.
	tfForEachModule = terraformModule{write: WriteTerraformForEach, envs: appSetEnvironments, timeout: 50 * time.Minute}
)

// terraformEnv keeps Terraform off the network and away from the user's configuration: an empty CLI
// config, no version check, no prompts.
func terraformEnv(root string) ([]string, error) {
	rc := filepath.Join(root, "terraformrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		return nil, err
	}
	return []string{"TF_CLI_CONFIG_FILE=" + rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0"}, nil
}

// setup returns the module of n terraform_data resources in the run's directory name, initialised and,
// when applied is true, applied; nil when terraform is not installed.
func (m *terraformModule) setup(tb testing.TB, name string, n int, applied bool) *terraformModule {
	tb.Helper()
	bin := terraformPath(tb)
	if bin == "" {
		return nil
	}
	root := runRoot(tb)
	m.once.Do(func() {
		m.bin = bin
		m.dir = filepath.Join(root, name)
		if m.env, m.err = terraformEnv(root); m.err != nil {
			return
		}
		write, envs := m.write, m.envs
		if write == nil {
			write = WriteTerraform
		}
		if envs == 0 {
			envs = environments
		}
		if m.err = write(m.dir, n, envs); m.err != nil {
			return
		}
		if _, m.err = m.run(context.Background(), "init", "-input=false", "-no-color"); m.err != nil || !applied {
			return
		}
		var res Result
		if res, m.err = m.run(context.Background(), "apply", "-auto-approve", "-input=false", "-no-color"); m.err == nil {
			tb.Logf("setup: terraform applied %d terraform_data in %s", n, res.Duration.Round(1e6))
		}
	})
	if m.err != nil {
		tb.Fatal(m.err)
	}
	return m
}

// run runs terraform in the module and fails unless it exits 0.
func (m *terraformModule) run(ctx context.Context, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(m.timeout, setupTimeout))
	defer cancel()
	res, err := Run(ctx, m.dir, m.env, m.bin, args...)
	if err == nil && res.Exit != 0 {
		err = fmt.Errorf("terraform %s: exit %d:\n%s", args[0], res.Exit, Tail(res.Stderr+res.Stdout, 30))
	}
	return res, err
}
