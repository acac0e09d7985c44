package terraform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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

var _ providers.Provider = (*Provider)(nil)

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
	planFile := filepath.Join(dir, filePlan)
	if _, err := w.tf.Plan(ctx, tfexec.VarFile(w.vars), tfexec.Out(planFile), tfexec.Refresh(true)); err != nil {
		return fail("plan", tfError("plan", err))
	}
	pl, err := w.tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		return fail("read plan", tfError("show", err))
	}
	var prior *tfjson.StateValues
	if pl.PriorState != nil {
		prior = pl.PriorState.Values
	}
	st := readState(prior)
	if !st.exists {
		return providers.Observed{}, fmt.Errorf("environment %q: %w", name, providers.ErrNotFound)
	}
	if st.token != "" && st.token != w.token && !declaredToken(env) {
		// The state holds the token (another machine applied first): use it from now on.
		if err := w.setToken(st.token); err != nil {
			return fail("write var file", err)
		}
	}
	obs := p.observed(name, dir, st.fleet, st.specHash, st.spec, st.endpoint, w.token)
	obs.Running = answers(ctx, st.endpoint, w.token)
	obs.Changes = nestedChanges(pl, w.token)
	if !obs.Running {
		obs.Changes = replaceAll(obs.Changes, st.module, st.endpoint)
	}
	return obs, nil
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

// replaceAll marks every resource of the module replaced because the runtime does not answer: Apply
// re-creates them, which starts the runtime again where the module keeps its data.
func replaceAll(cs []providers.ResourceChange, module []string, endpoint string) []providers.ResourceChange {
	reason := "the runtime does not answer"
	if endpoint != "" {
		reason = "the runtime at " + endpoint + " does not answer"
	} else {
		reason = "the module gives no endpoint"
	}
	for _, addr := range module {
		i := -1
		for j, c := range cs {
			if c.Address == addr && !c.Drift {
				i = j
			}
		}
		if i >= 0 {
			if cs[i].Action != "create" {
				cs[i].Action, cs[i].Reason = "replace", reason
			}
			continue
		}
		typ, name := splitAddress(addr)
		cs = append(cs, providers.ResourceChange{Address: addr, Action: "replace", Reason: reason, Mode: "managed",
			Type: typ, Name: name, ProviderName: ""})
	}
	sortChanges(cs)
	return cs
}

// splitAddress returns the type and name of a resource address such as module.runtime.terraform_data.server.
func splitAddress(addr string) (typ, name string) {
	parts := strings.Split(addr, ".")
	if len(parts) < 2 {
		return "", addr
	}
	name = parts[len(parts)-1]
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	return parts[len(parts)-2], name
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
