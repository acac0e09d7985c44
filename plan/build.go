package plan

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// Build computes the plan that turns the Snapshot into what Desired declares.
//
// Build is pure and deterministic: no I/O, no clock, the same plan for the same inputs. It returns an
// error and no plan when the inputs contradict each other (an app in an undeclared environment, a target
// that names nothing). When the plan would delete or replace a protected app, Build returns the plan, for
// display, together with a *BlockedError (errors.Is ErrBlocked) naming every such action: that plan must
// not be applied.
func Build(d Desired, s Snapshot, o Options) (*Plan, error) {
	b := &builder{d: d, s: s, o: o, envs: map[string]spec.Environment{}, apps: map[string]spec.App{},
		envActs: map[string]*Action{}, used: map[Address]bool{}}
	if err := b.index(); err != nil {
		return nil, err
	}
	targets, err := b.targets()
	if err != nil {
		return nil, err
	}
	b.planEnvironments()
	b.planApps()
	b.explainPlacement()
	b.link()
	acts := b.acts
	if len(targets) > 0 {
		acts = restrict(acts, targets)
	}
	sortActions(acts)
	fleet := d.Fleet
	if fleet == "" {
		fleet = s.Fleet
	}
	p := &Plan{Fleet: fleet, Digest: d.Digest, Options: o, Actions: acts, Desired: stripSecrets(d, s)}
	if p.Options.Targets != nil {
		p.Options.Targets = slices.Clone(o.Targets)
	}
	if acts == nil {
		p.Actions = []*Action{}
	}
	return p, p.Err()
}

type builder struct {
	d       Desired
	s       Snapshot
	o       Options
	envs    map[string]spec.Environment
	apps    map[string]spec.App
	envActs map[string]*Action
	acts    []*Action
	used    map[Address]bool
	// claimed marks observed apps ("env/app") that a declared app accounts for.
	claimed map[string]bool
	// foreign holds, by environment to prune, the apps in it this fleet does not own.
	foreign map[string][]string
	names   []string // envNames, once computed
}

func (b *builder) index() error {
	var errs []error
	for _, e := range b.d.Environments {
		if _, dup := b.envs[e.Metadata.Name]; dup {
			errs = append(errs, fmt.Errorf("environment %q is declared twice", e.Metadata.Name))
		}
		b.envs[e.Metadata.Name] = e
	}
	for _, a := range b.d.Apps {
		if _, dup := b.apps[a.Metadata.Name]; dup {
			errs = append(errs, fmt.Errorf("app %q is declared twice", a.Metadata.Name))
		}
		if _, ok := b.envs[a.Spec.Environment]; !ok {
			errs = append(errs, fmt.Errorf("app %q: environment %q is not declared", a.Metadata.Name, a.Spec.Environment))
		}
		b.apps[a.Metadata.Name] = a
	}
	b.claimed = map[string]bool{}
	b.foreign = map[string][]string{}
	return errors.Join(errs...)
}

// targets parses Options.Targets and checks each names something declared or observed.
func (b *builder) targets() (map[Address]bool, error) {
	if len(b.o.Targets) == 0 {
		return nil, nil
	}
	known := map[Address]bool{}
	for n := range b.envs {
		known[EnvironmentAddress(n)] = true
	}
	for n := range b.apps {
		known[AppAddress(n)] = true
	}
	for n, st := range b.s.Environments {
		known[EnvironmentAddress(n)] = true
		for _, a := range st.Apps {
			known[AppAddress(a.Name)] = true
		}
	}
	out := map[Address]bool{}
	var errs []error
	for _, t := range b.o.Targets {
		a, err := ParseAddress(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("target: %w", err))
			continue
		}
		if !known[a] {
			errs = append(errs, fmt.Errorf("target %q names nothing declared or observed", t))
			continue
		}
		out[a] = true
	}
	return out, errors.Join(errs...)
}

func (b *builder) add(a *Action) *Action {
	if b.used[a.Address] {
		a.Address = Address(fmt.Sprintf("%s@%s", a.Address, a.Environment))
	}
	b.used[a.Address] = true
	b.acts = append(b.acts, a)
	return a
}

// envNames names every declared or observed environment, sorted. The result is shared: never modify it.
func (b *builder) envNames() []string {
	if b.names != nil {
		return b.names
	}
	seen := map[string]bool{}
	var names []string
	for n := range b.envs {
		seen[n] = true
		names = append(names, n)
	}
	for n := range b.s.Environments {
		if !seen[n] {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	b.names = names
	return names
}

func (b *builder) planEnvironments() {
	for _, name := range b.envNames() {
		decl, declared := b.envs[name]
		st, seen := b.s.Environments[name]
		exists := seen && st.Exists
		if declared && b.o.Destroy && !exists && st.Error != "" {
			// Whether it runs is not known: destroy can do nothing there, and says so rather than
			// "no changes".
			a := &Action{Address: EnvironmentAddress(name), ResourceType: TypeEnvironment, Name: name,
				Provider: decl.Spec.Provider, Fingerprint: FingerprintUnknown, Unobserved: true,
				Warning: "could not be observed: " + st.Error + "; nothing is destroyed there: destroy again once it can be observed"}
			a.decide(Unknown, ReasonDependencyPending, "unknown")
			b.envActs[name] = b.add(a)
			continue
		}
		if !exists && (!declared || b.o.Destroy) {
			continue
		}
		a := &Action{Address: EnvironmentAddress(name), ResourceType: TypeEnvironment, Name: name,
			Fingerprint: envFingerprint(st, seen)}
		if exists {
			a.Provider = st.Provider
			a.Before = &Object{SpecHash: st.SpecHash, Environment: st.Spec, Status: envStatus(st), Error: st.Error, Endpoint: st.Endpoint}
			if !st.Reachable {
				a.Warning = "unreachable"
				if st.Error != "" {
					a.Warning += ": " + st.Error
				}
			}
		}
		if declared {
			a.Provider = decl.Spec.Provider
			es := decl.Spec.Redacted()
			a.After = &Object{Labels: decl.Metadata.Labels, Environment: &es, SpecHash: decl.SpecHash()}
			a.Nested = st.Changes
			a.ProviderPlan = st.ProviderPlan
		}
		switch {
		case declared && b.o.Destroy:
			a.decide(Delete, ReasonDestroy, "delete (runtime stopped, its data archived)")
			a.After = nil
		case declared && !exists:
			a.decide(Create, ReasonAbsent, fmt.Sprintf("create (%s runtime)", decl.Spec.Provider))
			if st.Error != "" {
				a.Warning, a.Unobserved = "could not be observed: "+st.Error, true
			}
		case declared && st.Provider != "" && st.Provider != decl.Spec.Provider:
			a.decide(Replace, ReasonCannotUpdate, fmt.Sprintf("replace (provider changes from %s to %s)", st.Provider, decl.Spec.Provider))
			a.DataLoss = true
			a.DataLossReasons = []string{"a new runtime starts empty"}
			a.Blocked = fmt.Sprintf("changing an environment's provider is not supported; destroy it with --target %s, then apply", a.Address)
		case declared && st.SpecHash != decl.SpecHash() && inPlace(st.Changes):
			// The provider changes the runtime in place (a docker container's limits): nothing restarts.
			a.decide(Update, ReasonSettingsChanged, "update (runtime settings changed in place; apps and data kept)")
			a.Diffs = diffEnvironment(st.Spec, decl.Spec.Redacted())
		case declared && st.SpecHash != decl.SpecHash():
			a.decide(Update, ReasonSettingsChanged, "update (runtime settings changed; restarted with apps and data kept)")
			a.Diffs = diffEnvironment(st.Spec, decl.Spec.Redacted())
			if len(a.Diffs) == 0 {
				// The provider keeps no spec (or one that hashes otherwise): the hash is all there is to show.
				a.Diffs = []FieldDiff{{Path: "specHash", Kind: FieldChange, Before: orNone(st.SpecHash), After: decl.SpecHash()}}
			}
		case declared && !st.Running:
			a.decide(Update, ReasonNotRunning, "update (runtime not running; started again with apps and data kept)")
		case declared && hasNested(st.Changes):
			a.decide(Update, ReasonProviderChanges, fmt.Sprintf("update (%s plans changes; apps and data kept)", decl.Spec.Provider))
		case declared && !st.Reachable:
			a.decide(Update, ReasonNotReachable, "update (runtime not reachable; restarted with apps and data kept)")
		case declared:
			a.decide(NoOp, ReasonUpToDate, "up to date")
			if n := driftCount(st.Changes); n > 0 {
				a.Warning = joinWarn(a.Warning, fmt.Sprintf("%d %s changed outside %s; its plan changes nothing",
					n, plural(n, "resource", "resources"), decl.Spec.Provider))
			}
		case b.o.Prune:
			a.decide(Delete, ReasonNoResourceConfig, "delete (not declared, pruned; runtime stopped, its data archived)")
		default:
			a.decide(NoOp, ReasonNotDeclared, "not declared")
			a.Warning = joinWarn("not declared; kept, use --prune to delete", a.Warning)
		}
		if declared && st.ProviderUnavailable {
			a.Blocked = fmt.Sprintf("environment %s can be neither observed nor changed: %s; apply the rest of the fleet with --target", name, cmp.Or(st.Error, "its provider is not available"))
		}
		if a.Kind == Delete && !st.Reachable {
			a.Warning = joinWarn(a.Warning, "its apps could not be listed; they go with the runtime")
		}
		b.envActs[name] = b.add(a)
	}
}

// observedApp is an app as one environment's runtime reports it.
type observedApp struct {
	env string
	app *api.App
}

func (b *builder) observedApps() map[string][]observedApp {
	out := map[string][]observedApp{}
	for _, env := range b.envNames() {
		st, ok := b.s.Environments[env]
		if !ok || !st.Exists || !st.Reachable {
			continue
		}
		for i := range st.Apps {
			a := &st.Apps[i]
			out[a.Name] = append(out[a.Name], observedApp{env: env, app: a})
		}
	}
	return out
}

func (b *builder) planApps() {
	obs := b.observedApps()
	names := make([]string, 0, len(b.apps))
	for n := range b.apps {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		if a := b.planDeclaredApp(b.apps[name], obs[name]); a != nil {
			b.add(a)
		}
	}
	for _, env := range b.envNames() {
		st, ok := b.s.Environments[env]
		if !ok || !st.Exists || !st.Reachable {
			continue
		}
		apps := slices.Clone(st.Apps)
		slices.SortFunc(apps, func(x, y api.App) int { return cmp.Compare(x.Name, y.Name) })
		for i := range apps {
			if b.claimed[env+"/"+apps[i].Name] {
				continue
			}
			b.add(b.planUndeclaredApp(env, &apps[i]))
		}
	}
}

// planDeclaredApp plans one declared app: it locates the app's observed copies (locate), resumes or plans
// a move, defers an app that may be in a runtime that did not answer, and otherwise diffs the copy found
// against the declaration and lets decideApp choose the kind and the reason.
func (b *builder) planDeclaredApp(app spec.App, copies []observedApp) *Action {
	name, env := app.Metadata.Name, app.Spec.Environment
	st := b.s.Environments[env]
	exists, reachable := st.Exists, st.Exists && st.Reachable
	want := declaredSpec(name, app.Spec, b.fingerprints(env))
	a := &Action{Address: AppAddress(name), ResourceType: TypeApp, Name: name, Environment: env,
		After: &Object{Labels: app.Metadata.Labels, App: &want}, Fingerprint: FingerprintAbsent}
	here, elsewhere := locate(env, copies)
	observe := func(got *api.App) {
		before := got.Spec.Redacted(name)
		a.Before = &Object{Labels: got.Labels, App: &before, Status: got.Status, Error: got.Error, Generation: got.Generation}
		a.Fingerprint = appFingerprint(got)
		a.ObservedGeneration = got.Generation
	}

	if b.o.Destroy {
		switch {
		case exists && !reachable:
			a.decide(Unknown, ReasonDependencyPending, "unknown")
			a.After, a.Fingerprint = nil, FingerprintUnknown
			a.Warning = fmt.Sprintf("environment %s is unreachable; the app goes with its runtime", env)
			return a
		case here == nil:
			return nil
		}
		b.claimed[env+"/"+name] = true
		observe(here)
		a.decide(Delete, ReasonDestroy, "delete (data archived, restorable)")
		a.After = nil
		if here.Spec.Protect || app.Spec.Protect {
			a.Blocked = protectedMsg(name, "deleted", app.Spec.Protect)
		}
		return a
	}

	// A copy here that a move created and has not switched to yet resumes that move: its data is still
	// in the source, or (once the source is archived) restored here with only the switch left.
	if from := moveSource(here, env); from != "" {
		b.claimed[env+"/"+name] = true
		src := b.s.Environments[from]
		var got *api.App
		for _, c := range elsewhere {
			if c.env == from {
				got = c.app
			}
		}
		switch {
		case got != nil:
			b.claimed[from+"/"+name] = true
			observe(got)
			return b.planMove(a, app, got, from, false)
		case src.Exists && !src.Reachable:
			observe(here)
			a.decide(Unknown, ReasonDependencyPending, "unknown")
			a.Fingerprint, a.FromEnvironment = FingerprintUnknown, from
			a.Warning = fmt.Sprintf("the move from %s is unfinished and environment %s is unreachable; plan again once it answers", from, from)
			return a
		default:
			observe(here)
			// Stale reads an app action's fingerprint in FromEnvironment, where the app is gone.
			a.Fingerprint = FingerprintAbsent
			return b.planMove(a, app, here, from, true)
		}
	}

	var got *api.App
	var from string
	switch {
	case here != nil:
		got = here
	case len(elsewhere) > 0:
		got, from = elsewhere[0].app, elsewhere[0].env
	}
	if got != nil {
		b.claimed[cmp.Or(from, env)+"/"+name] = true
		observe(got)
	}

	switch {
	case exists && !reachable:
		a.decide(Unknown, ReasonDependencyPending, "unknown")
		a.Fingerprint = FingerprintUnknown
		a.Warning = fmt.Sprintf("environment %s is unreachable; plan again once it answers", env)
		if from != "" {
			a.FromEnvironment = from
			a.Fingerprint = appFingerprint(got)
			a.Warning = fmt.Sprintf("environment %s is unreachable and the app is in %s; plan again once %s answers", env, from, env)
		}
		return a
	case got == nil:
		if down := b.unreachableBesides(env); len(down) > 0 {
			// The app may live in a runtime that did not answer: creating it empty here would leave its
			// data behind there, and a later move could no longer bring it.
			a.decide(Unknown, ReasonDependencyPending, "unknown")
			a.Fingerprint = FingerprintUnknown
			a.Warning = fmt.Sprintf("not found in %s, and %s %s %s unreachable and may hold it; plan again once %s",
				env, plural(len(down), "environment", "environments"), strings.Join(down, ", "),
				plural(len(down), "is", "are"), plural(len(down), "it answers", "they answer"))
			return a
		}
		a.decide(Create, ReasonAbsent, "create in "+env)
		a.Diffs = diffApp(name, app.Spec, app.Metadata.Labels, nil, nil).diffs
		if !exists && st.Error != "" {
			// The environment may exist and hold the app: its provider could not tell.
			a.Unobserved = true
			a.Warning = fmt.Sprintf("environment %s could not be observed; the app may already exist there", env)
		}
		return a
	case from != "" && len(elsewhere) == 1 && !diffApp(name, app.Spec, app.Metadata.Labels, got, b.fingerprints(from)).replace:
		return b.planMove(a, app, got, from, false)
	}

	d := diffApp(name, app.Spec, app.Metadata.Labels, got, b.fingerprints(cmp.Or(from, env)))
	a.Diffs = d.diffs
	a.DataLossReasons = d.dataLoss
	if from != "" {
		// Found in several other environments, or its database changes as well: a snapshot cannot carry
		// the data over, so the app starts empty.
		a.FromEnvironment = from
		a.Diffs = append([]FieldDiff{{Path: "environment", Kind: FieldChange, Before: from, After: env, DataLoss: true}}, a.Diffs...)
		why := "its database changes as well"
		if len(elsewhere) > 1 {
			why = fmt.Sprintf("it is found in %d other environments", len(elsewhere))
		}
		a.DataLossReasons = append([]string{fmt.Sprintf("environment changes from %s to %s and %s: the app's data is archived in %s and it starts empty in %s", from, env, why, from, env)}, a.DataLossReasons...)
		d.replace = true
	}
	a.DataLoss = len(a.DataLossReasons) > 0
	a.decide(decideApp(d, app.Spec.State, got.Status, from, env))
	if a.Kind == Replace && (got.Spec.Protect || app.Spec.Protect) {
		a.Blocked = protectedMsg(name, "replaced", app.Spec.Protect)
	}
	if a.DataLoss && a.Blocked == "" && (got.Spec.Protect || app.Spec.Protect) {
		a.Blocked = protectedMsg(name, "changed in a way that loses data", app.Spec.Protect)
	}
	if got.Status == api.StatusError && a.Kind != Replace {
		a.Warning = "in error: " + got.Error
	}
	return a
}

// decideApp is what to do with an app found (in environment from, or "" for its declared env), given how
// it differs from its declaration: its kind and why, for programs and for people.
func decideApp(d appDiff, declaredState, status, from, env string) (ActionKind, ReasonCode, string) {
	switch {
	case d.replace && from != "":
		return Replace, ReasonCannotUpdate, fmt.Sprintf("replace (moves from %s to %s; data archived, the app starts empty)", from, env)
	case d.replace:
		return Replace, ReasonCannotUpdate, "replace (data archived, the app starts empty)"
	case len(d.diffs) == 0:
		return NoOp, ReasonUpToDate, "up to date"
	case d.stateOnly && declaredState == spec.StateStopped:
		return Stop, ReasonStateChanged, "stop"
	case d.stateOnly && status == api.StatusError:
		return Start, ReasonInError, "start (it is in error)"
	case d.stateOnly:
		return Start, ReasonStateChanged, "start"
	default:
		return Update, ReasonSpecChanged, "update in place"
	}
}

// locate splits the observed copies of an app declared in env into the one there (nil when none) and
// those in other environments, in environment order.
func locate(env string, copies []observedApp) (here *api.App, elsewhere []observedApp) {
	for _, c := range copies {
		if c.env == env {
			here = c.app
		} else {
			elsewhere = append(elsewhere, c)
		}
	}
	return here, elsewhere
}

// planMove makes a the move of app from environment from to its declared one: a snapshot of got's data
// is restored in the target, which is then switched to, and the app is archived in the source. Nothing
// is deleted, so a protected app may move. finish says that the source is already archived and only the
// switch is left (got is then the copy in the target).
func (b *builder) planMove(a *Action, app spec.App, got *api.App, from string, finish bool) *Action {
	gotEnv := from
	if finish {
		gotEnv = a.Environment
	}
	d := diffApp(a.Name, app.Spec, app.Metadata.Labels, got, b.fingerprints(gotEnv))
	a.FromEnvironment = from
	a.Diffs = append([]FieldDiff{{Path: "environment", Kind: FieldChange, Before: from, After: a.Environment}}, d.diffs...)
	a.DataLossReasons = d.dataLoss
	a.DataLoss = len(d.dataLoss) > 0
	if finish {
		a.decide(Move, ReasonMoveUnfinished, fmt.Sprintf("move from %s to %s: finish (data already restored in %s and archived in %s; switch to %s)",
			from, a.Environment, a.Environment, from, a.Environment))
	} else {
		a.decide(Move, ReasonEnvironmentChanged, fmt.Sprintf("move from %s to %s (stopped in %s, its data restored in %s, then archived in %s)",
			from, a.Environment, from, a.Environment, from))
	}
	if got.Spec.Protect || app.Spec.Protect {
		if a.DataLoss {
			a.Blocked = protectedMsg(a.Name, "changed in a way that loses data", app.Spec.Protect)
		} else {
			a.Reason += "; allowed although protected: nothing is deleted, the data goes along"
		}
	}
	if got.Status == api.StatusError {
		a.Warning = "in error: " + got.Error
	}
	return a
}

// moveSource is the environment a move into env is bringing the app from, when the app here is the
// target of that move and has not been switched to yet; else "".
func moveSource(here *api.App, env string) string {
	if here == nil {
		return ""
	}
	if from := here.Labels[spec.LabelMoveFrom]; from != env {
		return from
	}
	return ""
}

// unreachableBesides names, sorted, the environments other than env whose runtime exists but did not
// answer: their apps are unknown.
func (b *builder) unreachableBesides(env string) []string {
	var out []string
	for _, n := range b.envNames() {
		if st, ok := b.s.Environments[n]; ok && n != env && st.Exists && !st.Reachable {
			out = append(out, n)
		}
	}
	return out
}

func (b *builder) planUndeclaredApp(env string, got *api.App) *Action {
	name := got.Name
	before := got.Spec.Redacted(name)
	a := &Action{Address: AppAddress(name), ResourceType: TypeApp, Name: name, Environment: env,
		Before:      &Object{Labels: got.Labels, App: &before, Status: got.Status, Error: got.Error, Generation: got.Generation},
		Fingerprint: appFingerprint(got), ObservedGeneration: got.Generation}
	owner := got.Labels[spec.LabelFleet]
	fleet := cmp.Or(b.d.Fleet, b.s.Fleet)
	envAct := b.envActs[env]
	_, envDeclared := b.envs[env]
	switch {
	case envAct != nil && envAct.Kind == Delete:
		a.decide(Delete, ReasonEnvironmentDeleted, fmt.Sprintf("delete with environment %s (data archived, restorable)", env))
		if owner != fleet {
			if envDeclared {
				// Destroying a declared environment is asked for by name: what runs in it goes along.
				a.Warning = notOwned(owner) + "; it goes with its environment"
			} else {
				// Prune deletes only what the fleet owns; the environment waits until the app is gone.
				a.Blocked = fmt.Sprintf("app %s is %s; prune never deletes it: delete it by hand or declare it first", name, notOwned(owner))
				b.foreign[env] = append(b.foreign[env], name)
			}
		}
	case owner != fleet:
		a.decide(NoOp, ReasonNotDeclared, "not declared")
		a.Warning = notOwned(owner) + "; kept"
	case b.generatedBefore(got):
		a.decide(Delete, ReasonNoLongerGenerated, fmt.Sprintf("delete (no longer generated by AppSet %s; data archived, restorable)", got.Labels[spec.LabelAppSet]))
	case b.o.Prune:
		a.decide(Delete, ReasonNoResourceConfig, "delete (not declared, pruned; data archived, restorable)")
	default:
		a.decide(NoOp, ReasonNotDeclared, "not declared")
		a.Warning = "not declared; kept, use --prune to delete"
	}
	if a.Kind == Delete && got.Spec.Protect {
		a.Blocked = fmt.Sprintf("app %s is protected (protect: true) and is never deleted", a.Name)
	}
	return a
}

// notOwned says that an app does not carry this fleet's label: another fleet's, or made by hand.
func notOwned(owner string) string {
	if owner == "" {
		return "not owned by this fleet (no " + spec.LabelFleet + " label: made by hand)"
	}
	return "owned by fleet " + owner
}

// protectedMsg says why replacing, deleting or changing with data loss a protected app is refused:
// protect: true blocks it whatever the flags, so the way out is to unprotect the app, never
// --allow-data-loss. declared tells whether the manifests hold protect: true or only the runtime does.
func protectedMsg(name, verb string, declared bool) string {
	if declared {
		return fmt.Sprintf("app %s is protected (protect: true) and is never %s; set protect: false and apply first", name, verb)
	}
	return fmt.Sprintf("app %s is protected in its runtime (protect: true) and is never %s; apply protect: false on its own first", name, verb)
}

// link sets the dependencies: an app's action waits for its environment, and an environment's delete
// waits for the actions that remove its apps. A delete that would remove a protected app blocks its
// environment's delete too, and so does an app declared protected that could not be observed because
// its environment is unreachable: it would go with its runtime. So does an app that could not be planned
// because its target environment is unreachable, while its data waits in the environment to delete.
func (b *builder) link() {
	protected := map[string][]string{}
	// moving holds, by environment, the apps whose data is there and whose move out of it waits for its
	// target to answer: deleting the environment would take that data along.
	moving := map[string][]string{}
	for _, a := range b.acts {
		if a.ResourceType != TypeApp {
			continue
		}
		for _, env := range []string{a.Environment, a.FromEnvironment} {
			ea := b.envActs[env]
			if env == "" || ea == nil {
				continue
			}
			if ea.Kind == Delete {
				if a.Kind == Unknown && b.apps[a.Name].Spec.Protect {
					protected[env] = append(protected[env], a.Name)
				}
				if a.Kind == Unknown && env == a.FromEnvironment && env != a.Environment {
					moving[env] = append(moving[env], a.Name)
				}
				// A move out of an environment that goes away must finish first: it reads the app's data
				// from that runtime.
				if a.Kind == Delete || a.Kind == Replace || (a.Kind == Move && env == a.FromEnvironment) {
					ea.DependsOn = append(ea.DependsOn, a.Address)
					if a.Blocked != "" && !slices.Contains(b.foreign[env], a.Name) {
						protected[env] = append(protected[env], a.Name)
					}
				}
				continue
			}
			a.DependsOn = append(a.DependsOn, ea.Address)
		}
		slices.Sort(a.DependsOn)
		a.DependsOn = slices.Compact(a.DependsOn)
	}
	for env, names := range protected {
		ea := b.envActs[env]
		msg := fmt.Sprintf("environment %s holds protected apps (%s) and is never deleted with them", env, strings.Join(names, ", "))
		ea.Blocked = strings.Join(slices.DeleteFunc([]string{ea.Blocked, msg}, func(s string) bool { return s == "" }), "; ")
	}
	for env, names := range b.foreign {
		ea := b.envActs[env]
		msg := fmt.Sprintf("environment %s holds apps this fleet does not own (%s) and is never pruned with them", env, strings.Join(names, ", "))
		ea.Blocked = strings.Join(slices.DeleteFunc([]string{ea.Blocked, msg}, func(s string) bool { return s == "" }), "; ")
	}
	for env, names := range moving {
		ea := b.envActs[env]
		msg := fmt.Sprintf("environment %s holds the data of apps (%s) that move out of it once their environment answers, "+
			"and is never deleted before they have moved; apply without --prune first", env, strings.Join(names, ", "))
		ea.Blocked = strings.Join(slices.DeleteFunc([]string{ea.Blocked, msg}, func(s string) bool { return s == "" }), "; ")
	}
	for _, ea := range b.envActs {
		slices.Sort(ea.DependsOn)
	}
}

// restrict keeps the targeted actions and everything they depend on, transitively.
func restrict(acts []*Action, targets map[Address]bool) []*Action {
	by := map[Address]*Action{}
	for _, a := range acts {
		by[a.Address] = a
	}
	keep := map[Address]bool{}
	var visit func(Address)
	visit = func(addr Address) {
		if keep[addr] {
			return
		}
		keep[addr] = true
		if a := by[addr]; a != nil {
			for _, d := range a.DependsOn {
				visit(d)
			}
		}
	}
	for t := range targets {
		visit(t)
	}
	var out []*Action
	for _, a := range acts {
		if keep[a.Address] {
			out = append(out, a)
		}
	}
	return out
}

// phase orders actions: kept environments, then apps, then deleted environments.
func phase(a *Action) int {
	switch {
	case a.ResourceType == TypeApp:
		return 1
	case a.Kind == Delete:
		return 2
	default:
		return 0
	}
}

func sortActions(acts []*Action) {
	slices.SortStableFunc(acts, func(x, y *Action) int {
		return cmp.Or(cmp.Compare(phase(x), phase(y)), cmp.Compare(x.Address, y.Address))
	})
}

func envStatus(st EnvironmentState) string {
	switch {
	case !st.Running:
		return "stopped"
	case !st.Reachable:
		return "unreachable"
	default:
		return "running"
	}
}

// inPlace reports whether the provider plans changes and every one of them updates in place.
func inPlace(cs []NestedChange) bool {
	for _, c := range cs {
		if c.Changes() && c.Action != "update" {
			return false
		}
	}
	return hasNested(cs)
}

func hasNested(cs []NestedChange) bool {
	return slices.ContainsFunc(cs, NestedChange.Changes)
}

func driftCount(cs []NestedChange) int {
	n := 0
	for _, c := range cs {
		if c.Drift {
			n++
		}
	}
	return n
}

func orNone(s string) string { return cmp.Or(s, "(none)") }

func joinWarn(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	default:
		return a + "; " + b
	}
}

// fingerprints are the KeyFingerprints of environment env's runtime (nil when it was not reached).
func (b *builder) fingerprints(env string) map[string]string {
	return b.s.Environments[env].KeyFingerprints
}

// stripSecrets returns d with no secret value (declaredSpec): API keys as the fingerprints s has from
// each app's runtime, or only their references.
func stripSecrets(d Desired, s Snapshot) Desired {
	out := d
	out.Environments = slices.Clone(d.Environments)
	out.Apps = make([]spec.App, len(d.Apps))
	for i, a := range d.Apps {
		a.Spec = declaredSpec(a.Metadata.Name, a.Spec, s.Environments[a.Spec.Environment].KeyFingerprints)
		out.Apps[i] = a
	}
	if d.Apps == nil {
		out.Apps = nil
	}
	return out
}
