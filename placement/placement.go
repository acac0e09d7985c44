package placement

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/appfleet/appfleet/plan"
	"github.com/appfleet/appfleet/spec"
)

// Options change what Place does.
type Options struct {
	// Rebalance moves apps placed by spread between the environments their selector matches until those
	// hold numbers of apps that differ by at most one, with as few moves as that takes.
	Rebalance bool
}

// Result is the outcome of Place.
type Result struct {
	// Apps are the declared apps in the order given, each with Spec.Environment set and Spec.Placement
	// cleared. An app that could not be placed (Place's error names it) is left out.
	Apps []spec.App
	// Why says, for each app placed or moved now, where it goes and why: "placed in prod-2: spread over
	// {tier=prod}, the fewest apps (3 of 1000)". Apps that stay where they are have no entry.
	Why map[string]string
}

// ErrFull is what Place's error matches (errors.Is) when some app has no matching environment with room.
var ErrFull = errors.New("the fleet is full")

// env is one declared environment as placement sees it.
type env struct {
	name      string
	labels    map[string]string
	maxApps   int
	load      int  // apps it will hold
	reachable bool // false when its runtime exists but did not answer: its apps are unknown
}

type placer struct {
	envs  []*env // by name
	byEnv map[string]*env
	apps  []spec.App
	where []string // where[i]: environment of apps[i], "" while unplaced
	why   map[string]string
	// observed holds, by app name, the environments whose runtime reports it, in name order.
	observed map[string][]string
	// moving holds apps that a move is bringing into an environment: that environment.
	moving  map[string]string
	matched map[*spec.Placement][]*env
}

// Place fixes the environment of every app that declares a placement. See the package doc. The error,
// when not nil, names every app that could not be placed (errors.Is ErrFull), with its AppSet and where
// it is declared; the Result then holds every other app.
func Place(apps []spec.App, envs []spec.Environment, snap plan.Snapshot, o Options) (Result, error) {
	p := &placer{byEnv: map[string]*env{}, apps: apps, where: make([]string, len(apps)), why: map[string]string{},
		observed: map[string][]string{}, moving: map[string]string{}, matched: map[*spec.Placement][]*env{}}
	for _, e := range envs {
		st, seen := snap.Environments[e.Metadata.Name]
		x := &env{name: e.Metadata.Name, labels: e.Metadata.Labels, maxApps: e.Spec.Runtime.MaxApps,
			reachable: !seen || !st.Exists || st.Reachable}
		if x.maxApps <= 0 {
			x.maxApps = spec.DefaultMaxApps
		}
		p.envs = append(p.envs, x)
		p.byEnv[x.name] = x
	}
	slices.SortFunc(p.envs, func(a, b *env) int { return cmp.Compare(a.name, b.name) })
	declared := make(map[string]bool, len(apps))
	for _, a := range apps {
		declared[a.Metadata.Name] = true
	}
	for _, x := range p.envs {
		st := snap.Environments[x.name]
		if !st.Exists || !st.Reachable {
			continue
		}
		for _, a := range st.Apps {
			p.observed[a.Name] = append(p.observed[a.Name], x.name)
			if from := a.Labels[spec.LabelMoveFrom]; from != "" && from != x.name {
				p.moving[a.Name] = x.name
			}
			if !declared[a.Name] {
				x.load++ // kept until pruned: it takes a place
			}
		}
	}

	// Apps with an environment, and placed apps that stay, hold their places first.
	var fresh []int
	for i, a := range apps {
		switch pl := a.Spec.Placement; {
		case pl == nil:
			p.where[i] = a.Spec.Environment
		default:
			if e := p.stay(a); e != "" {
				p.where[i] = e
			} else {
				fresh = append(fresh, i)
				continue
			}
		}
		if x := p.byEnv[p.where[i]]; x != nil {
			x.load++
		}
	}
	slices.SortFunc(fresh, func(i, j int) int { return cmp.Compare(apps[i].Metadata.Name, apps[j].Metadata.Name) })
	var full []string
	for _, i := range fresh {
		if msg := p.place(i); msg != "" {
			full = append(full, msg)
		}
	}
	if o.Rebalance {
		p.rebalance()
	}

	res := Result{Apps: make([]spec.App, 0, len(apps)), Why: p.why}
	for i, a := range apps {
		if p.where[i] == "" {
			continue
		}
		if a.Spec.Placement != nil || a.Spec.Environment != p.where[i] {
			a.Spec.Environment = p.where[i]
			a.Spec.Placement = nil
		}
		res.Apps = append(res.Apps, a)
	}
	if len(full) > 0 {
		return res, fmt.Errorf("%w: %s", ErrFull, strings.Join(full, "; "))
	}
	return res, nil
}

// matching returns the declared environments a placement may choose, in name order. Apps an AppSet
// generates share their template's placement, so the answer is kept by placement.
func (p *placer) matching(pl *spec.Placement) []*env {
	if out, ok := p.matched[pl]; ok {
		return out
	}
	var out []*env
	for _, x := range p.envs {
		if pl.Matches(x.labels) {
			out = append(out, x)
		}
	}
	p.matched[pl] = out
	return out
}

// stay is the environment an already observed app keeps: the one a move is bringing it into, else the
// first (by name) that reports it, provided that it still matches. "" means the app is to be placed.
func (p *placer) stay(a spec.App) string {
	name, pl := a.Metadata.Name, a.Spec.Placement
	if e := p.moving[name]; e != "" {
		if x := p.byEnv[e]; x != nil && pl.Matches(x.labels) {
			return e
		}
	}
	for _, e := range p.observed[name] {
		if x := p.byEnv[e]; x != nil && pl.Matches(x.labels) {
			return e
		}
	}
	return ""
}

// place chooses the environment of new app i, or returns why none has room.
func (p *placer) place(i int) string {
	a := p.apps[i]
	pl := a.Spec.Placement
	cands := p.matching(pl)
	var pick *env
	for _, x := range cands {
		if !x.reachable || x.load >= x.maxApps {
			continue
		}
		switch pl.Strategy {
		case spec.StrategyBinpack:
			if pick == nil {
				pick = x
			}
		default:
			if pick == nil || x.load < pick.load {
				pick = x
			}
		}
	}
	sel := spec.SelectorText(pl.Selector)
	prefix := ""
	if was := p.observed[a.Metadata.Name]; len(was) > 0 {
		prefix = fmt.Sprintf("%s no longer matches %s; ", strings.Join(was, ", "), sel)
	}
	if pick == nil {
		// A matching runtime that does not answer may have room, and may hold the app: leave the app to
		// it, so that the planner says it cannot be planned until that runtime answers.
		for _, x := range cands {
			if !x.reachable {
				p.where[i] = x.name
				x.load++
				p.why[a.Metadata.Name] = fmt.Sprintf("%snot placed yet: %s does not answer", prefix, x.name)
				return ""
			}
		}
		parts := make([]string, len(cands))
		for j, x := range cands {
			parts[j] = fmt.Sprintf("%s holds %d of %d", x.name, x.load, x.maxApps)
		}
		return fmt.Sprintf("app %q%s: no environment matching %s has room (%s); raise their runtime.maxApps or add an environment with matching labels",
			a.Metadata.Name, origin(a), sel, strings.Join(parts, ", "))
	}
	how := "the fewest apps"
	if pl.Strategy == spec.StrategyBinpack {
		how = "the first by name with room"
	}
	p.why[a.Metadata.Name] = fmt.Sprintf("placed in %s: %s%s over %s, %s (%d of %d)", pick.name, prefix, pl.Strategy, sel, how, pick.load, pick.maxApps)
	p.where[i] = pick.name
	pick.load++
	return ""
}

// origin names where an app comes from for an error: ` (AppSet "tenants", tenants.yaml:12:9)`.
func origin(a spec.App) string {
	at := ""
	if a.Source.File != "" {
		at = fmt.Sprintf("%s:%d:%d", a.Source.File, a.Source.Line, a.Source.Column)
	}
	if set := a.Metadata.Labels[spec.LabelAppSet]; set != "" {
		return fmt.Sprintf(" (AppSet %q, %s)", set, at)
	}
	if at != "" {
		return " (" + at + ")"
	}
	return ""
}

// rebalance evens out, group by group, the environments that spread apps share: while the fullest
// environment of a group holds two apps more than the emptiest, its last app by name moves there.
// Groups are the apps whose selectors match the same environments; apps a move is already bringing
// somewhere, and apps in an environment that does not answer, stay.
func (p *placer) rebalance() {
	groups := map[string][]int{}
	var keys []string
	for i, a := range p.apps {
		pl := a.Spec.Placement
		if pl == nil || pl.Strategy != spec.StrategySpread || p.where[i] == "" || p.moving[a.Metadata.Name] != "" {
			continue
		}
		var names []string
		for _, x := range p.matching(pl) {
			names = append(names, x.name)
		}
		k := strings.Join(names, ",")
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	slices.Sort(keys)
	for _, k := range keys {
		members := groups[k]
		var envs []*env
		for n := range strings.SplitSeq(k, ",") {
			if x := p.byEnv[n]; x.reachable {
				envs = append(envs, x)
			}
		}
		for range members {
			var hi, lo *env
			for _, x := range envs {
				if hi == nil || x.load > hi.load {
					hi = x
				}
				if x.load < x.maxApps && (lo == nil || x.load < lo.load) {
					lo = x
				}
			}
			if hi == nil || lo == nil || hi.load-lo.load <= 1 {
				break
			}
			mv := -1
			for _, i := range members {
				if p.where[i] == hi.name && (mv < 0 || p.apps[i].Metadata.Name > p.apps[mv].Metadata.Name) {
					mv = i
				}
			}
			if mv < 0 {
				break // the fullest holds only apps of other groups or pinned ones
			}
			name := p.apps[mv].Metadata.Name
			if prev, placedNow := p.why[name]; placedNow && strings.HasPrefix(prev, "placed in ") {
				p.why[name] = fmt.Sprintf("placed in %s: spread over %s, rebalanced (%s held %d apps, %s %d)", lo.name, spec.SelectorText(p.apps[mv].Spec.Placement.Selector), hi.name, hi.load, lo.name, lo.load)
			} else {
				p.why[name] = fmt.Sprintf("rebalanced from %s to %s: spread over %s, %s held %d apps and %s %d", hi.name, lo.name, spec.SelectorText(p.apps[mv].Spec.Placement.Selector), hi.name, hi.load, lo.name, lo.load)
			}
			p.where[mv] = lo.name
			hi.load--
			lo.load++
		}
	}
}
