package terraform

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/appfleet/appfleet/spec"
)

// Names inside an environment's working dir, and of the generated root module.
const (
	fileMain    = "main.tf.json"
	fileVars    = "appfleet.tfvars.json" // the token only; mode 0600
	fileRecord  = "environment.json"     // what List reads: fleet, spec and endpoint of the last apply
	fileInitKey = "appfleet-init"        // under .terraform: what the last init was run for
	filePlan    = "observe.tfplan"       // the plan Observe is making
	dirPlans    = "plans"                // the plans Observe made, by id, for ApplyPlan
	dirDotTF    = ".terraform"
	fileRC      = "terraformrc"

	moduleName    = "runtime"
	tokenResource = "appfleet_token"
	envResource   = "appfleet_environment"
	outEndpoint   = "endpoint"
	outToken      = "token"
)

// minVersion is the oldest terraform the generated root module works with (terraform_data).
var minVersion = version.Must(version.NewVersion("1.4.0"))

// moduleInfo is what terraform-config-inspect read of the user's module.
type moduleInfo struct {
	dir       string
	variables map[string]bool
	outputs   map[string]bool
	// initKey changes when what `terraform init` installs for the module changes: its own module calls
	// and required providers.
	initKey string
}

// workdir is one environment's prepared working dir.
type workdir struct {
	dir   string
	tf    *tfexec.Terraform
	token string
	vars  string // path of the var file
}

// binary returns the terraform executable env uses, checked once per path: it exists and is new enough.
func (p *Provider) binary(ctx context.Context, env spec.Environment) (string, *version.Version, error) {
	name := "terraform"
	if t := env.Spec.Terraform; t != nil && t.Binary != "" {
		name = t.Binary
	}
	var path string
	if strings.ContainsRune(name, '/') {
		path = name
		if !filepath.IsAbs(path) {
			base, err := manifestDir(env)
			if err != nil {
				return "", nil, fmt.Errorf("terraform binary %s: %w", name, err)
			}
			path = filepath.Join(base, path)
		}
	} else {
		var err error
		if path, err = exec.LookPath(name); err != nil {
			return "", nil, fmt.Errorf("terraform binary %q is not on the PATH: install Terraform %s or newer, or set spec.terraform.binary (appfleet never downloads it)", name, minVersion)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.versions[path]; ok {
		return path, v, nil
	}
	out, err := exec.CommandContext(ctx, path, "version", "-json").Output()
	if err != nil {
		return "", nil, fmt.Errorf("terraform binary %s does not run: %v; set spec.terraform.binary to a working terraform %s or newer", path, err, minVersion)
	}
	var vj struct {
		Version string `json:"terraform_version"`
	}
	if err := json.Unmarshal(out, &vj); err != nil {
		return "", nil, fmt.Errorf("terraform binary %s: cannot read `terraform version -json` (Terraform before 0.13?): needs %s or newer", path, minVersion)
	}
	v, err := version.NewVersion(vj.Version)
	if err != nil {
		return "", nil, fmt.Errorf("terraform binary %s: version %q: %w", path, vj.Version, err)
	}
	if v.LessThan(minVersion) {
		return "", nil, fmt.Errorf("terraform %s at %s is too old: appfleet needs %s or newer", v, path, minVersion)
	}
	p.versions[path] = v
	return path, v, nil
}

// manifestDir is the directory of the manifest that declared env, which relative paths are relative to.
func manifestDir(env spec.Environment) (string, error) {
	if env.Source.File == "" || env.Source.File == spec.StdinName {
		return "", errors.New("a relative path needs the manifest's directory, which is unknown here; use an absolute path")
	}
	return filepath.Abs(filepath.Dir(env.Source.File))
}

// moduleSource is the module's source as the generated root module in dir must write it: a local module
// relative to dir (Terraform wants ./ or ../), a remote one as declared. abs is the local module's
// directory ("" for a remote one).
func moduleSource(env spec.Environment, dir string) (source, abs string, err error) {
	src := env.Spec.Terraform.Module
	if !spec.IsLocalModule(src) {
		return src, "", nil
	}
	abs = src
	if !filepath.IsAbs(abs) {
		base, err := manifestDir(env)
		if err != nil {
			return "", "", fmt.Errorf("terraform module %s: %w", src, err)
		}
		abs = filepath.Join(base, src)
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("terraform module %s does not exist (%s): point spec.terraform.module at the module's directory, relative to the manifest", src, abs)
	case !st.IsDir():
		return "", "", fmt.Errorf("terraform module %s (%s) is not a directory", src, abs)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		return "", "", err
	}
	rel = filepath.ToSlash(rel)
	if !strings.HasPrefix(rel, "../") {
		rel = "./" + rel
	}
	return rel, abs, nil
}

// inspect reads the module's variables and outputs and checks appfleet's contract: variable "token",
// output "endpoint", and every spec.terraform.variables name declared.
func inspect(env spec.Environment, dir string) (moduleInfo, error) {
	m, diags := tfconfig.LoadModule(dir)
	if diags.HasErrors() {
		return moduleInfo{}, fmt.Errorf("terraform module %s cannot be read: %v", env.Spec.Terraform.Module, diags.Err())
	}
	info := moduleInfo{dir: dir, variables: map[string]bool{}, outputs: map[string]bool{}}
	for n := range m.Variables {
		info.variables[n] = true
	}
	for n := range m.Outputs {
		info.outputs[n] = true
	}
	src := env.Spec.Terraform.Module
	if !info.outputs[outEndpoint] {
		return info, fmt.Errorf("terraform module %s has no output %q: the module must output the runtime's base URL as %q (http://host:port)", src, outEndpoint, outEndpoint)
	}
	if !info.variables["token"] {
		return info, fmt.Errorf("terraform module %s declares no variable \"token\": the module must take the runtime's management token as variable \"token\" (sensitive) and start the runtime with it", src)
	}
	for _, n := range slices.Sorted(maps.Keys(env.Spec.Terraform.Variables)) {
		if !info.variables[n] {
			return info, fmt.Errorf("spec.terraform.variables.%s: terraform module %s declares no variable %q (it declares %s)", n, src, n, strings.Join(slices.Sorted(maps.Keys(info.variables)), ", "))
		}
	}
	key := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(m.ModuleCalls)) {
		fmt.Fprintf(key, "module %s %s %s\n", n, m.ModuleCalls[n].Source, m.ModuleCalls[n].Version)
	}
	for _, n := range slices.Sorted(maps.Keys(m.RequiredProviders)) {
		r := m.RequiredProviders[n]
		fmt.Fprintf(key, "provider %s %s %v\n", n, r.Source, r.VersionConstraints)
	}
	info.initKey = hex.EncodeToString(key.Sum(nil))
	return info, nil
}

// rootModule is the generated main.tf.json: it calls the user's module with the token and the
// variables it declares, keeps the token and a record of the environment's spec in Terraform's state,
// and re-exports endpoint and token.
func (p *Provider) rootModule(env spec.Environment, source string, mod *moduleInfo) ([]byte, error) {
	t := env.Spec.Terraform
	tfBlock := map[string]any{"required_version": ">= " + minVersion.String()}
	if t.Backend != nil {
		tfBlock["backend"] = map[string]any{t.Backend.Type: literal(orEmptyMap(t.Backend.Config))}
	}
	root := map[string]any{
		"terraform": tfBlock,
		"variable":  map[string]any{"token": map[string]any{"type": "string", "sensitive": true}},
	}
	if mod == nil {
		// The module is not installed yet (a remote source before its first init): its call alone.
		root["module"] = map[string]any{moduleName: map[string]any{"source": literal(source)}}
		return json.MarshalIndent(root, "", "  ")
	}
	specJSON, err := json.Marshal(env.Spec.Redacted()) // a declared token's reference, never its value
	if err != nil {
		return nil, err
	}
	token := map[string]any{"input": "${var.token}"}
	if !declaredToken(env) {
		// A generated token is made once; later values are ignored, so the state keeps the first for good
		// and a machine that has no var file yet plans no change. A declared one follows the declaration.
		token["lifecycle"] = map[string]any{"ignore_changes": []string{"input"}}
	}
	root["resource"] = map[string]any{"terraform_data": map[string]any{
		tokenResource: token,
		envResource: map[string]any{"input": literal(map[string]any{
			"fleet": p.fleet, "environment": env.Metadata.Name, "spec_hash": env.SpecHash(), "spec": string(specJSON),
		})},
	}}
	call := map[string]any{"source": literal(source), "token": "${terraform_data." + tokenResource + ".output}"}
	passed := map[string]any{
		"environment":     env.Metadata.Name,
		"fleet":           p.fleet,
		"appfleet_binary": p.appfleet,
		"idle_timeout":    env.Spec.Runtime.IdleTimeout.String(),
		"max_apps":        env.Spec.Runtime.MaxApps,
	}
	for n, v := range passed {
		if mod.variables[n] {
			call[n] = literal(v)
		}
	}
	for n, v := range t.Variables {
		call[n] = literal(v)
	}
	root["module"] = map[string]any{moduleName: call}
	tokenOut := "${terraform_data." + tokenResource + ".output}"
	if mod.outputs[outToken] {
		tokenOut = "${module." + moduleName + "." + outToken + "}"
	}
	root["output"] = map[string]any{
		outEndpoint: map[string]any{"value": "${module." + moduleName + "." + outEndpoint + "}"},
		outToken:    map[string]any{"value": tokenOut, "sensitive": true},
	}
	return json.MarshalIndent(root, "", "  ")
}

func orEmptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// literal escapes Terraform's template sequences in every string of v (keys included), so that a value
// from a manifest is passed as written and never evaluated as an expression.
func literal(v any) any {
	switch x := v.(type) {
	case string:
		return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[literal(k).(string)] = literal(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = literal(e)
		}
		return out
	default:
		return v
	}
}

// env is the environment of every terraform process: this process's, without the variables
// terraform-exec manages or that would make Terraform read other variables, state or settings than the
// working dir's (TF_VAR_*, TF_CLI_ARGS*, TF_WORKSPACE, TF_DATA_DIR); with checkpoint calls off and, when
// the machine has no usable CLI config file, one of the provider's own.
func (p *Provider) tfEnv() (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env = tfexec.CleanEnv(env)
	delete(env, "TF_DATA_DIR")
	if _, ok := env["CHECKPOINT_DISABLE"]; !ok {
		env["CHECKPOINT_DISABLE"] = "1"
	}
	if !cliConfigUsable(env) {
		rc := filepath.Join(p.stateDir, fileRC)
		if _, err := os.Stat(rc); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(p.stateDir, 0o700); err != nil {
				return nil, err
			}
			body := "# Terraform CLI settings for appfleet's terraform environments. This machine had none\n" +
				"# (TF_CLI_CONFIG_FILE unset or missing, no ~/.terraformrc); Terraform's builtin provider needs none.\n"
			if err := writePrivate(rc, []byte(body)); err != nil {
				return nil, err
			}
		}
		env["TF_CLI_CONFIG_FILE"] = rc
	}
	return env, nil
}

func cliConfigUsable(env map[string]string) bool {
	if f := env["TF_CLI_CONFIG_FILE"]; f != "" {
		_, err := os.Stat(f)
		return err == nil
	}
	if home := env["HOME"]; home != "" {
		if _, err := os.Stat(filepath.Join(home, ".terraformrc")); err == nil {
			return true
		}
	}
	return false
}

// prepare makes env's working dir ready for plan, apply or destroy: the root module, the var file with
// the token, and `terraform init` when what it installs changed since it last ran.
func (p *Provider) prepare(ctx context.Context, env spec.Environment) (*workdir, error) {
	dir, err := p.envDir(env.Metadata.Name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil { // Terraform's state in it holds the token
		return nil, err
	}
	bin, v, err := p.binary(ctx, env)
	if err != nil {
		return nil, err
	}
	w, err := p.open(dir, bin)
	if err != nil {
		return nil, err
	}
	if env.Spec.Terraform == nil {
		return nil, fmt.Errorf("no spec.terraform")
	}
	source, abs, err := moduleSource(env, dir)
	if err != nil {
		return nil, err
	}
	var mod *moduleInfo
	if abs != "" {
		m, err := inspect(env, abs)
		if err != nil {
			return nil, err
		}
		mod = &m
	} else if m, ok := installedModule(dir, source); ok {
		mi, err := inspect(env, m)
		if err != nil {
			return nil, err
		}
		mod = &mi
	}
	backend, _ := json.Marshal(env.Spec.Terraform.Backend)
	initKey := func(m *moduleInfo) string {
		k := fmt.Sprintf("source=%s\nbackend=%s\nbinary=%s %s\n", source, backend, bin, v)
		if m != nil {
			k += "module=" + m.initKey + "\n"
		}
		return k
	}
	keyFile := filepath.Join(dir, dirDotTF, fileInitKey)
	old, _ := os.ReadFile(keyFile)
	if mod == nil {
		// A remote module before its first init: install it, then read it.
		if err := p.writeIfChanged(filepath.Join(dir, fileMain), env, source, nil); err != nil {
			return nil, err
		}
		if err := w.tf.Init(ctx, tfexec.Upgrade(false), tfexec.ForceCopy(true)); err != nil {
			return nil, tfError("init", err)
		}
		m, ok := installedModule(dir, source)
		if !ok {
			return nil, fmt.Errorf("terraform init did not install module %s", source)
		}
		mi, err := inspect(env, m)
		if err != nil {
			return nil, err
		}
		mod = &mi
	}
	if err := p.writeIfChanged(filepath.Join(dir, fileMain), env, source, mod); err != nil {
		return nil, err
	}
	if key := initKey(mod); string(old) != key {
		if err := w.tf.Init(ctx, tfexec.Upgrade(false), tfexec.ForceCopy(true)); err != nil {
			return nil, tfError("init", err)
		}
		if err := writePrivate(keyFile, []byte(key)); err != nil {
			return nil, err
		}
	}
	if declaredToken(env) {
		if tok := env.Spec.Runtime.Token.Value; tok != w.token {
			if err := w.setToken(tok); err != nil {
				return nil, err
			}
		}
	} else if w.token == "" {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		if err := w.setToken(hex.EncodeToString(raw)); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// declaredToken reports whether env declares its runtime's token (spec.runtime.token, resolved).
func declaredToken(env spec.Environment) bool {
	return env.Spec.Runtime.Token != nil && env.Spec.Runtime.Token.Value != ""
}

// open returns the working dir as it is, for destroying what an undeclared environment left.
func (p *Provider) open(dir, bin string) (*workdir, error) {
	tf, err := tfexec.NewTerraform(dir, bin)
	if err != nil {
		return nil, err
	}
	env, err := p.tfEnv()
	if err != nil {
		return nil, err
	}
	if err := tf.SetEnv(env); err != nil {
		return nil, err
	}
	w := &workdir{dir: dir, tf: tf, vars: filepath.Join(dir, fileVars)}
	w.token = w.readToken()
	return w, nil
}

// readToken returns the token the var file holds, or "".
func (w *workdir) readToken() string {
	b, err := os.ReadFile(w.vars)
	if err != nil {
		return ""
	}
	var v struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.Token
}

// setToken writes the var file (mode 0600): the only place the token is handed to Terraform.
func (w *workdir) setToken(token string) error {
	b, _ := json.Marshal(map[string]string{"token": token})
	if err := writePrivate(w.vars, b); err != nil {
		return err
	}
	w.token = token
	return nil
}

func (p *Provider) writeIfChanged(path string, env spec.Environment, source string, mod *moduleInfo) error {
	b, err := p.rootModule(env, source, mod)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return writePrivate(path, b)
}

// installedModule is the directory `terraform init` installed a remote module in, from .terraform's
// modules.json, when it was installed from source.
func installedModule(dir, source string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, dirDotTF, "modules", "modules.json"))
	if err != nil {
		return "", false
	}
	var mj struct {
		Modules []struct{ Key, Source, Dir string }
	}
	if json.Unmarshal(b, &mj) != nil {
		return "", false
	}
	for _, m := range mj.Modules {
		if m.Key == moduleName && m.Source == source {
			if !filepath.IsAbs(m.Dir) {
				return filepath.Join(dir, m.Dir), true
			}
			return m.Dir, true
		}
	}
	return "", false
}

// writePrivate replaces path atomically with a file of mode 0600.
func writePrivate(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tfError makes a terraform-exec error readable: the command, then Terraform's own message.
func tfError(cmd string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("terraform %s: %w", cmd, err)
	}
	msg := err.Error()
	if first, rest, ok := strings.Cut(msg, "\n"); ok && strings.HasPrefix(first, "exit status ") {
		msg = strings.TrimSpace(rest)
	}
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n\n", "\n"))
	return fmt.Errorf("terraform %s failed: %s", cmd, msg)
}
