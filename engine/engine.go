package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/appfleet/appfleet/apply"
	"github.com/appfleet/appfleet/internal/lock"
	"github.com/appfleet/appfleet/placement"
	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/providers"
	"github.com/appfleet/appfleet/spec"
)

// Config is what an Engine is built with; it holds nothing that changes between calls.
type Config struct {
	// Registry builds the providers environments name. Required: the CLI passes every provider of the
	// build, tests a fake one.
	Registry providers.Registry
	// StateDir is the fleet's state directory (runtime data, tokens, logs, the lock). Empty means
	// ".appfleet" beside the manifests (spec.Manifests.Root).
	StateDir string
	// Binary is the appfleet executable providers run as the runtime; empty means this process's own.
	Binary string
	// ObserveTimeout bounds one runtime's management API while observing (default DefaultObserveTimeout).
	ObserveTimeout time.Duration
}

// Engine runs the pipeline: load, lock, observe, plan, apply, converge. It keeps no state between calls,
// so one Engine serves any number of calls, one after another or at once (the state dir's lock keeps
// two changes of one fleet apart).
type Engine struct {
	cfg Config
}

// New returns an engine.
func New(cfg Config) *Engine { return &Engine{cfg: cfg} }

// Request is one call's input: which manifests, and how to plan and apply them.
type Request struct {
	// Manifests, when set, are the fleet as already loaded and validated (by spec.Load, or read from a git
	// commit's tree); Paths and Stdin are then only recorded, never read.
	Manifests *spec.Manifests
	// Paths are the manifest files and directories to load when Manifests is nil ("-" is Stdin); none
	// means the working directory. A plan records them, absolute, so a saved plan can be applied later.
	Paths []string
	// Stdin is what the path "-" reads.
	Stdin io.Reader
	// FS, when set, is where Paths are read (slash-separated, inside it; none means all of it) instead of
	// the disk: a git commit's tree. FSOptions say which directory it stands for (relative secret files
	// resolve there; state lives beside it unless Config.StateDir says otherwise) and what names the
	// fleet when no Fleet document does.
	FS        fs.FS
	FSOptions spec.LoadOptions

	// Targets restricts the plan to these addresses and what they depend on.
	Targets []string
	// Prune deletes undeclared apps and environments this fleet owns (Fleet spec.prune also turns it on).
	Prune bool
	// Destroy plans deleting everything declared. It needs no secret values, and data loss is implied.
	Destroy bool
	// Rebalance moves apps placed by spread so that the environments they share hold even numbers of apps.
	Rebalance bool

	// Saved, for Apply, is a plan saved earlier to carry out exactly, or refuse (a *StaleError) when the
	// manifests, secrets or observed resources changed since. Its own Paths are loaded when Manifests
	// and Paths are empty.
	Saved *plan.Plan
	// Parallelism bounds how many actions run at once; zero means Fleet spec.parallelism, else 10.
	Parallelism int
	// AllowDataLoss lets Apply carry out actions that lose data; without it such a plan is refused with a
	// *DataLossError before anything is changed.
	AllowDataLoss bool
	// Approve, when set, is asked before each plan with changes is carried out; an error refuses it and
	// Apply returns that error. Nil approves every plan (CI with --yes, the daemon).
	Approve func(ctx context.Context, pass Pass, p *plan.Plan) error
	// Holder names who holds the state dir's lock during Apply, shown to whoever finds it taken; default
	// "appfleet apply" (or "appfleet destroy").
	Holder string
	// Labels are put on every app Apply writes, beside the declared ones (the daemon records the git
	// commit it applies). The planner ignores appfleet.dev/ labels, so a change of them alone is no change.
	Labels map[string]string
}

// Pass says which plan of one Apply an event or error is about.
type Pass int

const (
	// FirstPass is the plan made from the first observation.
	FirstPass Pass = 1
	// ConvergePass is the plan made after the first pass when, before it, runtimes that may hold apps did
	// not answer: the first pass has brought them back, so their apps are planned and applied now rather
	// than left to another run.
	ConvergePass Pass = 2
)

// Result is what a call saw and did.
type Result struct {
	// Manifests are the manifests as written (secrets unresolved).
	Manifests *spec.Manifests
	// StateDir is the fleet's state directory.
	StateDir string
	// Snapshot is the last observation.
	Snapshot plan.Snapshot
	// Endpoints are the management APIs (with tokens) of the environments of the last observation, by
	// name: what a caller that follows the runtimes (the daemon's event streams) connects to.
	Endpoints map[string]providers.Endpoint
	// Plan is the last plan built (nil for Observe); for an Apply that converged in two passes, the second.
	Plan *plan.Plan
	// Applied holds the executor's result of each pass that was carried out, in order.
	Applied []apply.Result
}

// Sink receives what the engine reports while it works; the caller renders it. Event (the executor's
// progress) is called from many goroutines at once; the other methods from the calling goroutine only.
// Embed NopSink to implement only some of them.
type Sink interface {
	apply.Sink
	// Diagnostics is every problem loading the manifests found, warnings included. When any is an error,
	// the call then returns an error wrapping ErrInvalid.
	Diagnostics(spec.Diagnostics)
	// Warning is a problem observing the fleet that belongs to no single environment (a provider that
	// could not list what the fleet owns). Problems of one environment are in its state in the plan.
	Warning(err error)
	// Planned is each plan Apply is about to carry out, before it is checked and approved; err wraps
	// plan.ErrBlocked when the plan must not be applied (Apply then returns it). Apply reports a
	// ConvergePass plan only when it has changes or is blocked.
	Planned(pass Pass, p *plan.Plan, err error)
	// Applying is called as a pass's approved plan starts to be carried out, Applied when it is done.
	Applying(pass Pass, p *plan.Plan)
	Applied(pass Pass, r apply.Result, took time.Duration)
}

// NopSink ignores everything; embed it in a Sink that cares about only some events.
type NopSink struct{}

func (NopSink) Event(apply.Event)                         {}
func (NopSink) Diagnostics(spec.Diagnostics)              {}
func (NopSink) Warning(error)                             {}
func (NopSink) Planned(Pass, *plan.Plan, error)           {}
func (NopSink) Applying(Pass, *plan.Plan)                 {}
func (NopSink) Applied(Pass, apply.Result, time.Duration) {}

// Load reads and validates the manifests of req, reporting every diagnostic to sink, and returns them as
// written (secrets unresolved). A caller that must check something between loading and the rest (the CLI
// asks whether it can prompt) loads first and passes the result as Request.Manifests. Load needs the
// values of secrets only when needSecrets is set (a missing one is then an error, else a warning).
func (e *Engine) Load(req Request, needSecrets bool, sink Sink) (*spec.Manifests, error) {
	if req.Manifests != nil {
		return req.Manifests, nil
	}
	paths := req.Paths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var m *spec.Manifests
	var diags spec.Diagnostics
	if req.FS != nil {
		o := req.FSOptions
		o.SecretsOptional = !needSecrets
		m, diags = spec.LoadFS(req.FS, req.Paths, o)
	} else {
		m, diags = spec.LoadWith(paths, req.Stdin, spec.LoadOptions{SecretsOptional: !needSecrets})
	}
	orNop(sink).Diagnostics(diags)
	if err := diags.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe loads the manifests and observes every environment and app they declare or the fleet owns.
// It needs no secret value (an unreadable secret is a warning) and takes no lock.
func (e *Engine) Observe(ctx context.Context, req Request, sink Sink) (*Result, error) {
	sink = orNop(sink)
	fl, err := e.load(req, false, sink)
	if err != nil {
		return nil, err
	}
	if err := fl.observe(ctx, sink); err != nil {
		return nil, err
	}
	return fl.result(nil), nil
}

// Plan loads the manifests, observes the fleet and computes the plan, changing nothing and taking no
// lock. A blocked plan (a protected app would be deleted or replaced) is returned in the Result together
// with an error wrapping plan.ErrBlocked; any other error comes with a nil Result.
func (e *Engine) Plan(ctx context.Context, req Request, sink Sink) (*Result, error) {
	sink = orNop(sink)
	fl, err := e.load(req, !req.Destroy, sink)
	if err != nil {
		return nil, err
	}
	if err := fl.observe(ctx, sink); err != nil {
		return nil, err
	}
	p, err := fl.build(req)
	if p == nil {
		return nil, err
	}
	return fl.result(p), cmp.Or(err, p.Err())
}

// Apply makes what runs match the manifests: it loads them, takes the state dir's lock (a *lock.LockedError
// when another process holds it), observes, plans, and carries the plan out through the executor,
// reporting to sink. When the plan held apps of runtimes that did not answer, the first pass has brought
// those runtimes back, so Apply observes and plans again and carries out a ConvergePass for them.
//
// Before carrying a plan out it refuses a blocked plan (plan.ErrBlocked), data loss that was not allowed
// (*DataLossError) and what Approve refuses. It returns a *FailedError when actions failed or were
// skipped, an error wrapping ErrInterrupted when ctx ended, and an *UnconvergedError when apps remain
// that could not be planned. The Result is returned whenever a plan was made, errors included.
func (e *Engine) Apply(ctx context.Context, req Request, sink Sink) (*Result, error) {
	sink = orNop(sink)
	if req.Saved != nil {
		if len(req.Targets) > 0 || req.Prune || req.Rebalance || req.Destroy {
			return nil, errors.New("targets, prune, rebalance and destroy were fixed when the plan was saved")
		}
		if req.Manifests == nil && len(req.Paths) == 0 {
			if len(req.Saved.Paths) == 0 {
				return nil, ErrNoPaths
			}
			req.Paths = req.Saved.Paths
		}
	}
	fl, err := e.load(req, !req.Destroy, sink)
	if err != nil {
		return nil, err
	}
	holder := req.Holder
	if holder == "" {
		holder = "appfleet apply"
		if req.Destroy {
			holder = "appfleet destroy"
		}
	}
	lk, err := lock.Acquire(fl.stateDir, holder)
	if err != nil {
		return nil, err
	}
	defer lk.Release()

	if err := fl.observe(ctx, sink); err != nil {
		return nil, err
	}
	var p *plan.Plan
	var buildErr error
	if req.Saved != nil {
		if err := fl.checkSaved(req.Saved); err != nil {
			return nil, err
		}
		p = req.Saved
	} else if p, buildErr = fl.build(req); p == nil {
		return nil, buildErr
	}
	res := fl.result(p)
	err = fl.pass(ctx, req, FirstPass, p, buildErr, sink, res)
	if err == nil && req.Destroy {
		// An environment that could not be observed was not destroyed: the caller must not read success.
		var left []plan.Address
		for _, a := range p.Unknown() {
			if a.ResourceType == plan.TypeEnvironment {
				left = append(left, a.Address)
			}
		}
		if len(left) > 0 {
			return res, &UnconvergedError{Addresses: left}
		}
	}
	if err != nil || req.Saved != nil || req.Destroy || len(p.Unknown()) == 0 {
		return res, err
	}
	// Apps of a runtime that did not answer could not be planned; the first pass has just brought their
	// runtimes back, so plan them now rather than leave the fleet to another apply.
	if err := fl.observe(ctx, sink); err != nil {
		return res, err
	}
	p, buildErr = fl.build(req)
	if p == nil {
		return res, buildErr
	}
	res = fl.result(p, res.Applied...)
	if p.HasChanges() || buildErr != nil {
		if err := fl.pass(ctx, req, ConvergePass, p, buildErr, sink, res); err != nil {
			return res, err
		}
	}
	if unknown := p.Unknown(); len(unknown) > 0 {
		return res, &UnconvergedError{Addresses: addresses(unknown)}
	}
	return res, nil
}

// pass reports a plan, refuses it when it must not be carried out, and carries it out.
func (fl *fleet) pass(ctx context.Context, req Request, pass Pass, p *plan.Plan, buildErr error, sink Sink, res *Result) error {
	buildErr = cmp.Or(buildErr, p.Err())
	sink.Planned(pass, p, buildErr)
	if buildErr != nil {
		return buildErr
	}
	if !p.HasChanges() {
		return nil
	}
	if loss := p.DataLoss(); len(loss) > 0 && !req.AllowDataLoss && !req.Destroy {
		return &DataLossError{Pass: pass, Addresses: addresses(loss)}
	}
	if req.Approve != nil {
		if err := req.Approve(ctx, pass, p); err != nil {
			return err
		}
	}
	perf, err := fl.performer(p, req.AllowDataLoss || req.Destroy)
	if err != nil {
		return err
	}
	perf.Labels = req.Labels
	par := req.Parallelism
	if par <= 0 {
		par = fl.manifests.Parallelism()
	}
	sink.Applying(pass, p)
	start := time.Now()
	r := apply.Run(ctx, p, perf, apply.Options{Parallelism: par}, sink)
	sink.Applied(pass, r, time.Since(start))
	res.Applied = append(res.Applied, r)
	if !r.OK() {
		return &FailedError{Pass: pass, Result: r}
	}
	return nil
}

// fleet is one call's loaded manifests and what was last observed of them.
type fleet struct {
	e         *Engine
	paths     []string        // absolute manifest paths as given ("-" kept)
	manifests *spec.Manifests // as written, secrets unresolved
	resolved  *spec.Manifests // secrets resolved when the call sends them; their values go only to runtimes
	stateDir  string
	config    providers.Config
	observed  Observation
	// placed are the resolved apps with every placement fixed to an environment, once the fleet has
	// been planned (or pinned from a saved plan); placedWhy says why, by app.
	placed    []spec.App
	placedWhy map[string]string
}

// load reads, validates and (when secrets is set) resolves the manifests of req.
func (e *Engine) load(req Request, secrets bool, sink Sink) (*fleet, error) {
	if e.cfg.Registry == nil {
		return nil, errors.New("engine: no provider registry")
	}
	m, err := e.Load(req, secrets, sink)
	if err != nil {
		return nil, err
	}
	paths := req.Paths
	if len(paths) == 0 && req.Manifests == nil {
		paths = []string{"."}
	}
	abs := make([]string, len(paths))
	for i, p := range paths {
		abs[i] = p
		if p != "-" && req.FS == nil {
			if a, err := filepath.Abs(p); err == nil {
				abs[i] = a
			}
		}
	}
	resolved := m
	if secrets {
		if resolved, err = m.ResolveSecrets(); err != nil {
			return nil, err
		}
	}
	stateDir := cmp.Or(e.cfg.StateDir, filepath.Join(m.Root, ".appfleet"))
	if a, err := filepath.Abs(stateDir); err == nil {
		stateDir = a
	}
	return &fleet{
		e: e, paths: abs, manifests: m, resolved: resolved, stateDir: stateDir,
		config: providers.Config{Fleet: m.Name, StateDir: stateDir, Binary: e.cfg.Binary},
	}, nil
}

// observe asks every provider and runtime what runs now and reports problems that belong to no one
// environment as warnings. When ctx ends before the observation is complete it returns an error wrapping
// ErrInterrupted: what it saw is partial, and nothing may be planned, saved or shown from it.
func (fl *fleet) observe(ctx context.Context, sink Sink) error {
	o := Observe(ctx, fl.e.cfg.Registry, fl.config, fl.resolved.Environments, fl.e.cfg.ObserveTimeout)
	FingerprintKeys(ctx, &o, fl.resolved.Apps, fl.e.cfg.ObserveTimeout)
	if ctx.Err() != nil {
		return fmt.Errorf("%w while observing the fleet; nothing was changed", ErrInterrupted)
	}
	for _, p := range o.Problems {
		sink.Warning(p)
	}
	fl.observed = o
	return nil
}

// desired is what the manifests declare, in the planner's terms, secrets resolved and apps placed.
func (fl *fleet) desired() plan.Desired {
	return plan.Desired{
		Fleet:        fl.resolved.Name,
		Environments: fl.resolved.Environments,
		Apps:         fl.apps(),
		Digest:       fl.resolved.Digest,
		Placement:    fl.placedWhy,
		AppSets:      fl.resolved.AppSetNames(),
	}
}

// apps are the declared apps, secrets resolved, placed once the fleet has been planned.
func (fl *fleet) apps() []spec.App {
	if fl.placed != nil {
		return fl.placed
	}
	return fl.resolved.Apps
}

// pin places the apps where a saved plan placed them, so that applying it carries out exactly that plan.
func (fl *fleet) pin(saved *plan.Plan) error {
	where := make(map[string]string, len(saved.Desired.Apps))
	for _, a := range saved.Desired.Apps {
		where[a.Metadata.Name] = a.Spec.Environment
	}
	apps := slices.Clone(fl.resolved.Apps)
	for i := range apps {
		if apps[i].Spec.Placement == nil {
			continue
		}
		env, ok := where[apps[i].Metadata.Name]
		if !ok || env == "" {
			return &StaleError{What: StaleUnplaced, App: apps[i].Metadata.Name}
		}
		apps[i].Spec.Environment, apps[i].Spec.Placement = env, nil
	}
	fl.placed, fl.placedWhy = apps, saved.Desired.Placement
	return nil
}

// build places the apps that declare a placement and computes the plan from the last observation; it
// does no I/O. A plan that is blocked is returned together with an error wrapping plan.ErrBlocked.
func (fl *fleet) build(req Request) (*plan.Plan, error) {
	placed, err := placement.Place(fl.resolved.Apps, fl.resolved.Environments, fl.observed.Snapshot, placement.Options{Rebalance: req.Rebalance})
	if err != nil && !req.Destroy {
		// Destroy deletes what it finds; an app with no room anywhere is nowhere to delete.
		return nil, err
	}
	fl.placed, fl.placedWhy = placed.Apps, placed.Why
	p, err := plan.Build(fl.desired(), fl.observed.Snapshot, plan.Options{
		Prune:   req.Prune || fl.manifests.Prune(),
		Targets: req.Targets,
		Destroy: req.Destroy,
	})
	if p != nil {
		p.Paths, p.StateDir = fl.paths, fl.stateDir
	}
	return p, err
}

// checkSaved refuses a saved plan made from other manifests or secrets, or whose resources changed since.
func (fl *fleet) checkSaved(saved *plan.Plan) error {
	if saved.Digest != fl.manifests.Digest {
		return &StaleError{What: StaleManifests}
	}
	if err := fl.pin(saved); err != nil {
		return err
	}
	if changed := plan.SecretsChanged(saved, fl.desired(), fl.observed.Snapshot); len(changed) > 0 {
		return &StaleError{What: StaleSecrets, Secrets: changed}
	}
	if stale := plan.Stale(saved, fl.observed.Snapshot); len(stale) > 0 {
		return &StaleError{What: StaleResources, Resources: stale}
	}
	return nil
}

func (fl *fleet) result(p *plan.Plan, applied ...apply.Result) *Result {
	return &Result{Manifests: fl.manifests, StateDir: fl.stateDir, Snapshot: fl.observed.Snapshot, Endpoints: fl.observed.Endpoints, Plan: p, Applied: applied}
}

// performer builds the executor's view of the fleet: a provider per environment the plan acts in
// (undeclared ones too, for prune), the declared specs with secrets resolved, and the observed endpoints.
// Only the plan's environments need a provider: one that is not available for an environment a target
// left out never stops the apply.
func (fl *fleet) performer(p *plan.Plan, allowDataLoss bool) (*apply.FleetPerformer, error) {
	used := map[string]bool{}
	for _, a := range p.Actions {
		if !a.Kind.Changes() {
			continue
		}
		if a.ResourceType == plan.TypeEnvironment {
			used[a.Name] = true
		}
		used[a.Environment], used[a.FromEnvironment] = true, true
	}
	perf := &apply.FleetPerformer{
		Fleet:         fl.resolved.Name,
		Providers:     map[string]providers.Provider{},
		Envs:          map[string]spec.Environment{},
		Apps:          map[string]spec.App{},
		Endpoints:     fl.observed.Endpoints,
		AllowDataLoss: allowDataLoss,
	}
	byKind := map[string]providers.Provider{}
	providerFor := func(env, kind string) error {
		prov, ok := byKind[kind]
		if !ok {
			var err error
			if prov, err = fl.e.cfg.Registry.New(kind, fl.config); err != nil {
				return fmt.Errorf("environment %q: %w", env, err)
			}
			byKind[kind] = prov
		}
		perf.Providers[env] = prov
		return nil
	}
	for _, env := range fl.resolved.Environments {
		if used[env.Metadata.Name] {
			if err := providerFor(env.Metadata.Name, env.Spec.Provider); err != nil {
				return nil, err
			}
		}
		perf.Envs[env.Metadata.Name] = env
	}
	for name, st := range fl.observed.Snapshot.Environments {
		if _, declared := perf.Envs[name]; !declared && st.Provider != "" && used[name] {
			if err := providerFor(name, st.Provider); err != nil {
				return nil, err
			}
		}
	}
	for _, app := range fl.apps() {
		perf.Apps[app.Metadata.Name] = app
	}
	return perf, nil
}

func addresses(acts []*plan.Action) []plan.Address {
	out := make([]plan.Address, len(acts))
	for i, a := range acts {
		out[i] = a.Address
	}
	return out
}

func orNop(s Sink) Sink {
	if s == nil {
		return NopSink{}
	}
	return s
}
