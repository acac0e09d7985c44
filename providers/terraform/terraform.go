package terraform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Bounds of a runtime's answers. A probe is short: a runtime that runs answers /readyz at once.
const (
	defaultReadyTimeout = 60 * time.Second
	probeTimeout        = 3 * time.Second
)

// Provider runs runtimes through Terraform modules.
type Provider struct {
	fleet    string
	stateDir string // absolute
	appfleet string // the appfleet binary, for modules that start a runtime on this machine

	readyTimeout time.Duration

	mu       sync.Mutex
	versions map[string]*version.Version // checked terraform binaries by path
}

var (
	_ providers.Provider    = (*Provider)(nil)
	_ providers.PlanApplier = (*Provider)(nil)
)

// planID is the form of the ids of kept plan files.
var planID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// keptPlans is how many plan files an environment's working dir keeps for saved plans to apply.
const keptPlans = 20

// New returns the terraform provider for cfg. cfg.Binary, when empty, is this process's own executable.
func New(cfg providers.Config) (providers.Provider, error) {
	if cfg.Fleet == "" {
		return nil, errors.New("terraform provider: no fleet name")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("terraform provider: no state dir")
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("terraform provider: state dir: %w", err)
	}
	bin := cfg.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("terraform provider: find the appfleet executable: %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("terraform provider: binary: %w", err)
	}
	return &Provider{fleet: cfg.Fleet, stateDir: stateDir, appfleet: bin, readyTimeout: defaultReadyTimeout,
		versions: map[string]*version.Version{}}, nil
}

func (p *Provider) envDir(name string) (string, error) { return providers.EnvDir(p.stateDir, name) }

// record is environment.json: what the last successful apply made, for List. Observe never reads it:
// it reads Terraform's state.
type record struct {
	Fleet       string                `json:"fleet"`
	Environment string                `json:"environment"`
	SpecHash    string                `json:"specHash"`
	Spec        *spec.EnvironmentSpec `json:"spec,omitempty"`
	Endpoint    string                `json:"endpoint"`
}

// stateView is what Terraform's (refreshed) state says of an environment.
type stateView struct {
	exists   bool
	fleet    string
	specHash string
	spec     *spec.EnvironmentSpec
	endpoint string
	token    string
	// module are the addresses of the module's managed resources, which a replace re-creates.
	module []string
}

func readState(vals *tfjson.StateValues) stateView {
	var v stateView
	if vals == nil || vals.RootModule == nil {
		return v
	}
	if o := vals.Outputs[outEndpoint]; o != nil {
		v.endpoint, _ = o.Value.(string)
	}
	if o := vals.Outputs[outToken]; o != nil {
		v.token, _ = o.Value.(string)
	}
	root := vals.RootModule
	v.exists = len(root.Resources) > 0 || len(root.ChildModules) > 0
	for _, r := range root.Resources {
		if r.Mode != tfjson.ManagedResourceMode || r.Type != "terraform_data" {
			continue
		}
		switch r.Name {
		case tokenResource:
			if tok, ok := r.AttributeValues["output"].(string); ok && v.token == "" {
				v.token = tok
			}
		case envResource:
			in, _ := r.AttributeValues["input"].(map[string]any)
			v.fleet, _ = in["fleet"].(string)
			v.specHash, _ = in["spec_hash"].(string)
			if s, ok := in["spec"].(string); ok {
				var es spec.EnvironmentSpec
				if json.Unmarshal([]byte(s), &es) == nil {
					v.spec = &es
				}
			}
		}
	}
	var walk func(m *tfjson.StateModule)
	walk = func(m *tfjson.StateModule) {
		for _, r := range m.Resources {
			if r.Mode == tfjson.ManagedResourceMode && strings.HasPrefix(r.Address, "module."+moduleName+".") {
				v.module = append(v.module, r.Address)
			}
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(root)
	sort.Strings(v.module)
	return v
}

// answers reports whether the runtime at url answers /readyz.
func answers(ctx context.Context, url, token string) bool {
	if url == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return api.NewClient(url, token).Ready(ctx) == nil
}

// localBackend reports whether env keeps its state in the working dir, where its absence is seen
// without running Terraform.
func localBackend(env spec.Environment) bool {
	t := env.Spec.Terraform
	return t == nil || t.Backend == nil
}

// Observe plans env with Terraform (refreshing its state) and reports what the state and the plan show.
func (p *Provider) Observe(ctx context.Context, env spec.Environment) (providers.Observed, error) {
	name := env.Metadata.Name
	fail := func(step string, err error) (providers.Observed, error) {
		return providers.Observed{}, fmt.Errorf("environment %q: %s: %w", name, step, err)
	}
	dir, err := p.envDir(name)
	if err != nil {
		return providers.Observed{}, err
	}
	if localBackend(env) {
		if _, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); errors.Is(err, fs.ErrNotExist) {
			return providers.Observed{}, fmt.Errorf("environment %q: %w", name, providers.ErrNotFound)
		}
	}
	w, err := p.prepare(ctx, env)
	if err != nil {
		return fail("prepare terraform", err)
	}
	planFile, changes, err := p.plan(ctx, w)
	if err != nil {
		return fail("plan", err)
	}
	if !changes && localBackend(env) {
		// Nothing to change: the state on disk is what the plan compared against, so it is read instead
		// of the plan (`terraform show -json` costs about as much as the plan). Drift that changes nothing
		// is then not shown, as Terraform's own plan does not make it a change.
		if vals, ok := readStateFile(filepath.Join(dir, "terraform.tfstate")); ok {
			obs, st, err := p.fromState(ctx, env, w, dir, vals)
			if err != nil || obs.Running || len(st.module) == 0 {
				return obs, err
			}
			// It does not answer: plan its replacement, below.
		}
	}
	pl, err := w.tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		return fail("read plan", tfError("show", err))
	}
	var prior *tfjson.StateValues
	if pl.PriorState != nil {
		prior = pl.PriorState.Values
	}
	obs, st, err := p.fromState(ctx, env, w, dir, prior)
	if err != nil {
		return obs, err
	}
	dead := ""
	if !obs.Running && len(st.module) > 0 {
		// The runtime does not answer: plan the module's resources replaced, which starts it again where
		// the module keeps its data. This plan is what apply carries out.
		dead = "the runtime at " + st.endpoint + " does not answer"
		if st.endpoint == "" {
			dead = "the module gives no endpoint"
		}
		if planFile, changes, err = p.plan(ctx, w, st.module...); err != nil {
			return fail("plan the runtime's replacement", err)
		}
		if pl, err = w.tf.ShowPlanFile(ctx, planFile); err != nil {
			return fail("read plan", tfError("show", err))
		}
	}
	obs.Changes = nestedChanges(pl, w.token)
	for i, c := range obs.Changes {
		if dead != "" && c.Action == "replace" && c.Reason == actionReasons[tfjson.ActionReasonReplaceByRequest] {
			obs.Changes[i].Reason = dead
		}
	}
	if changes {
		// Kept for apply to carry out exactly; a plan that changes nothing is never applied.
		if obs.Plan, err = keepPlan(dir, planFile); err != nil {
			return fail("keep the plan", err)
		}
	}
	return obs, nil
}

// fromState is what Observe reports from the state a plan started from: ErrNotFound when it holds
// nothing, else the environment as the state records it and whether its runtime answers. A token the
// state holds (another machine applied first) replaces the var file's.
func (p *Provider) fromState(ctx context.Context, env spec.Environment, w *workdir, dir string, vals *tfjson.StateValues) (providers.Observed, stateView, error) {
	name := env.Metadata.Name
	st := readState(vals)
	if !st.exists {
		return providers.Observed{}, st, fmt.Errorf("environment %q: %w", name, providers.ErrNotFound)
	}
	if st.token != "" && st.token != w.token && !declaredToken(env) {
		if err := w.setToken(st.token); err != nil {
			return providers.Observed{}, st, fmt.Errorf("environment %q: write var file: %w", name, err)
		}
	}
	obs := p.observed(name, dir, st.fleet, st.specHash, st.spec, st.endpoint, w.token)
	obs.Running = answers(ctx, st.endpoint, w.token)
	return obs, st, nil
}

// plan runs terraform plan (refreshing the state; replacing the given resources) into a plan file in
// the working dir; changes is whether the plan changes anything.
func (p *Provider) plan(ctx context.Context, w *workdir, replace ...string) (planFile string, changes bool, err error) {
	planFile = filepath.Join(w.dir, filePlan)
	opts := []tfexec.PlanOption{tfexec.VarFile(w.vars), tfexec.Out(planFile), tfexec.Refresh(true)}
	for _, addr := range replace {
		opts = append(opts, tfexec.Replace(addr))
	}
	if changes, err = w.tf.Plan(ctx, opts...); err != nil {
		return "", false, tfError("plan", err)
	}
	return planFile, changes, nil
}

// readStateFile reads a local state file (format version 4) into the shape `terraform show -json`
// gives, for readState; ok is false when it cannot (absent, another version).
func readStateFile(path string) (*tfjson.StateValues, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var f struct {
		Version int `json:"version"`
		Outputs map[string]struct {
			Value     any  `json:"value"`
			Sensitive bool `json:"sensitive"`
		} `json:"outputs"`
		Resources []struct {
			Module    string `json:"module"`
			Mode      string `json:"mode"`
			Type      string `json:"type"`
			Name      string `json:"name"`
			Instances []struct {
				IndexKey   any            `json:"index_key"`
				Attributes map[string]any `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if json.Unmarshal(b, &f) != nil || f.Version != 4 {
		return nil, false
	}
	vals := &tfjson.StateValues{Outputs: map[string]*tfjson.StateOutput{}, RootModule: &tfjson.StateModule{}}
	for n, o := range f.Outputs {
		vals.Outputs[n] = &tfjson.StateOutput{Value: o.Value, Sensitive: o.Sensitive}
	}
	children := map[string]*tfjson.StateModule{}
	for _, r := range f.Resources {
		mode := tfjson.ManagedResourceMode
		if r.Mode == "data" {
			mode = tfjson.DataResourceMode
		}
		for _, in := range r.Instances {
			addr := r.Type + "." + r.Name
			if mode == tfjson.DataResourceMode {
				addr = "data." + addr
			}
			switch k := in.IndexKey.(type) {
			case string:
				addr += "[" + strconv.Quote(k) + "]"
			case float64:
				addr += "[" + strconv.FormatFloat(k, 'f', -1, 64) + "]"
			}
			if r.Type == "terraform_data" {
				// Its input and output are dynamically typed: the state file wraps them with their type.
				for _, k := range []string{"input", "output"} {
					if w, ok := in.Attributes[k].(map[string]any); ok && len(w) == 2 && w["type"] != nil {
						if v, ok := w["value"]; ok {
							in.Attributes[k] = v
						}
					}
				}
			}
			res := &tfjson.StateResource{Mode: mode, Type: r.Type, Name: r.Name, AttributeValues: in.Attributes}
			if r.Module == "" {
				res.Address = addr
				vals.RootModule.Resources = append(vals.RootModule.Resources, res)
				continue
			}
			res.Address = r.Module + "." + addr
			m := children[r.Module]
			if m == nil {
				m = &tfjson.StateModule{Address: r.Module}
				children[r.Module] = m
				vals.RootModule.ChildModules = append(vals.RootModule.ChildModules, m)
			}
			m.Resources = append(m.Resources, res)
		}
	}
	return vals, true
}

// keepPlan moves a plan file to plans/<id>.tfplan in the working dir (0700; a plan file holds what the
// state holds, the token included) and returns its id, the hex of its SHA-256's first 16 bytes. Only the
// newest keptPlans files are kept.
func keepPlan(dir, planFile string) (string, error) {
	b, err := os.ReadFile(planFile)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	id := hex.EncodeToString(sum[:16])
	plans := filepath.Join(dir, dirPlans)
	if err := os.MkdirAll(plans, 0o700); err != nil {
		return "", err
	}
	if err := os.Rename(planFile, filepath.Join(plans, id+".tfplan")); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(plans)
	if err != nil || len(entries) <= keptPlans {
		return id, nil
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var files []aged
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			files = append(files, aged{e.Name(), fi.ModTime()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	for _, f := range files[min(keptPlans, len(files)):] {
		_ = os.Remove(filepath.Join(plans, f.name))
	}
	return id, nil
}

func (p *Provider) observed(name, dir, fleet, specHash string, es *spec.EnvironmentSpec, endpoint, token string) providers.Observed {
	return providers.Observed{
		Environment: name,
		Fleet:       fleet,
		Provider:    spec.ProviderTerraform,
		Endpoint:    providers.Endpoint{URL: endpoint, Token: token},
		SpecHash:    specHash,
		Spec:        es,
		Detail:      map[string]string{"workingDir": dir},
	}
}

// Apply converges env's runtime through Terraform, in steps that are each safe to repeat:
//
//  1. prepare the working dir: root module, var file, init when needed;
//  2. read the state: when it exists and its endpoint does not answer, the module's resources are to be
//     replaced (the runtime is started again where the module keeps its data);
//  3. terraform apply (with -replace for those);
//  4. read the outputs: endpoint (required) and token;
//  5. wait until the runtime answers /readyz with the token;
//  6. write environment.json, which List reads.
//
// A run interrupted anywhere leaves Terraform's state as Terraform left it; the next run plans from it.
func (p *Provider) Apply(ctx context.Context, env spec.Environment) (providers.Endpoint, error) {
	name := env.Metadata.Name
	fail := func(step string, err error) (providers.Endpoint, error) {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %s: %w", name, step, err)
	}
	w, err := p.prepare(ctx, env)
	if err != nil {
		return fail("prepare terraform", err)
	}
	state, err := w.tf.Show(ctx)
	if err != nil {
		return fail("read state", tfError("show", err))
	}
	st := readState(state.Values)
	opts := []tfexec.ApplyOption{tfexec.VarFile(w.vars), tfexec.Refresh(true)}
	if st.exists && st.token != "" && st.token != w.token && !declaredToken(env) {
		if err := w.setToken(st.token); err != nil {
			return fail("write var file", err)
		}
	}
	if st.exists && !answers(ctx, st.endpoint, w.token) {
		for _, addr := range st.module {
			opts = append(opts, tfexec.Replace(addr))
		}
	}
	if err := w.tf.Apply(ctx, opts...); err != nil {
		return fail("apply", tfError("apply", err))
	}
	return p.finish(ctx, w, env)
}

// ApplyPlan carries out exactly the Terraform plan Observe made (Observed.Plan), then steps 4 to 6 of
// Apply. Terraform refuses a plan made before its state last changed; such a plan is stale.
func (p *Provider) ApplyPlan(ctx context.Context, env spec.Environment, id string) (providers.Endpoint, error) {
	name := env.Metadata.Name
	fail := func(step string, err error) (providers.Endpoint, error) {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %s: %w", name, step, err)
	}
	if !planID.MatchString(id) {
		return fail("apply the saved Terraform plan", fmt.Errorf("%q is not a Terraform plan id", id))
	}
	w, err := p.prepare(ctx, env)
	if err != nil {
		return fail("prepare terraform", err)
	}
	path := filepath.Join(w.dir, dirPlans, id+".tfplan")
	if _, err := os.Stat(path); err != nil {
		return fail("apply the saved Terraform plan", fmt.Errorf("Terraform plan %s is not in %s: it was made with another state dir or machine, or is too old; plan again here", id, filepath.Dir(path)))
	}
	if err := w.tf.Apply(ctx, tfexec.DirOrPlan(path)); err != nil {
		if strings.Contains(err.Error(), "Saved plan is stale") {
			return fail("apply the saved Terraform plan", errors.New("it is stale: Terraform's state changed since the plan was made; plan again"))
		}
		return fail("apply", tfError("apply", err))
	}
	_ = os.Remove(path) // applied: Terraform would refuse it from now on anyway
	return p.finish(ctx, w, env)
}

// finish is what every apply ends with: read the outputs (endpoint is required), wait until the runtime
// answers with the token, and write environment.json for List.
func (p *Provider) finish(ctx context.Context, w *workdir, env spec.Environment) (providers.Endpoint, error) {
	name := env.Metadata.Name
	fail := func(step string, err error) (providers.Endpoint, error) {
		return providers.Endpoint{}, fmt.Errorf("environment %q: %s: %w", name, step, err)
	}
	outs, err := w.tf.Output(ctx)
	if err != nil {
		return fail("read outputs", tfError("output", err))
	}
	var endpoint, token string
	if o, ok := outs[outEndpoint]; ok {
		_ = json.Unmarshal(o.Value, &endpoint)
	}
	if o, ok := outs[outToken]; ok {
		_ = json.Unmarshal(o.Value, &token)
	}
	if endpoint == "" {
		return fail("read outputs", fmt.Errorf("the module's output %q is empty after apply: it must be the runtime's base URL", outEndpoint))
	}
	if token != "" && token != w.token && !declaredToken(env) {
		if err := w.setToken(token); err != nil {
			return fail("write var file", err)
		}
	}
	if err := providers.WaitReady(ctx, endpoint, w.token, nil, p.readyTimeout); err != nil {
		return fail("wait for the runtime", fmt.Errorf("%w; the module applied but its runtime does not answer", err))
	}
	es := env.Spec.Redacted()
	rec := record{Fleet: p.fleet, Environment: name, SpecHash: env.SpecHash(), Spec: &es, Endpoint: endpoint}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := writePrivate(filepath.Join(w.dir, fileRecord), append(b, '\n')); err != nil {
		return fail("write "+fileRecord, err)
	}
	return providers.Endpoint{URL: endpoint, Token: w.token}, nil
}

// Destroy runs terraform destroy and archives the working dir (state, logs and whatever data the module
// kept there). An environment that does not exist is already destroyed. An environment no longer
// declared is destroyed with the root module its last apply left.
func (p *Provider) Destroy(ctx context.Context, env spec.Environment) error {
	name := env.Metadata.Name
	dir, err := p.envDir(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && localBackend(env) {
		return nil
	}
	var w *workdir
	if env.Spec.Terraform != nil {
		w, err = p.prepare(ctx, env)
	} else {
		var bin string
		if bin, _, err = p.binary(ctx, env); err == nil {
			w, err = p.open(dir, bin)
		}
	}
	if err != nil {
		return fmt.Errorf("environment %q: prepare terraform: %w", name, err)
	}
	if _, err := os.Stat(filepath.Join(dir, fileMain)); err == nil {
		if err := w.tf.Destroy(ctx, tfexec.VarFile(w.vars), tfexec.Refresh(true)); err != nil {
			return fmt.Errorf("environment %q: destroy: %w", name, tfError("destroy", err))
		}
	}
	if _, err := providers.ArchiveEnvDir(p.stateDir, name); err != nil {
		return fmt.Errorf("environment %q: %w", name, err)
	}
	return nil
}

// List returns the terraform environments of fleet whose last apply this state dir holds, from the
// record each apply writes, with whether their runtime answers now. It runs no terraform: an
// environment whose state lives only in a shared backend is known from its manifest, not listed here.
func (p *Provider) List(ctx context.Context, fleet string) ([]providers.Observed, error) {
	entries, err := os.ReadDir(filepath.Join(p.stateDir, providers.DirEnvironments))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list terraform environments: %w", err)
	}
	var out []providers.Observed
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(p.stateDir, providers.DirEnvironments, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, fileRecord))
		if err != nil {
			continue
		}
		var rec record
		if json.Unmarshal(b, &rec) != nil || rec.Fleet != fleet || rec.Environment != e.Name() {
			continue
		}
		w := &workdir{vars: filepath.Join(dir, fileVars)}
		token := w.readToken()
		obs := p.observed(rec.Environment, dir, rec.Fleet, rec.SpecHash, rec.Spec, rec.Endpoint, token)
		obs.Running = answers(ctx, rec.Endpoint, token)
		out = append(out, obs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Environment < out[j].Environment })
	return out, nil
}
