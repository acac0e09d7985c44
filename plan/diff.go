package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/appfleet/appfleet/apphost/api"
	"github.com/appfleet/appfleet/spec"
)

// sensitiveText is how every renderer shows a secret.
const sensitiveText = "(sensitive)"

// normalize fills the defaults a runtime may or may not echo back, so equal specs compare equal.
func normalize(s spec.AppSpec) spec.AppSpec {
	if s.State == "" {
		s.State = spec.StateRunning
	}
	if s.Database.Driver == "" {
		s.Database.Driver = spec.DriverSQLite
	}
	if s.Database.Driver == spec.DriverPostgres && s.Database.Isolation == "" {
		s.Database.Isolation = spec.IsolationDatabase
	}
	if s.Database.Driver == spec.DriverSQLite {
		s.Database.Isolation = ""
	}
	return s
}

// observedState maps a runtime's app status onto the declared states: "running", "stopped" or "error".
func observedState(status string) string {
	switch status {
	case api.StatusStopped, api.StatusStopping:
		return spec.StateStopped
	case api.StatusError:
		return api.StatusError
	default: // pending, starting, running, migrating: on their way to running
		return spec.StateRunning
	}
}

// secretHash is the hash a secret compares by: the value's salted hash, else the hash it carries.
func secretHash(app string, r *spec.SecretRef) string {
	if r == nil {
		return ""
	}
	if r.Value != "" {
		return spec.SecretHash(app, r.Value)
	}
	return r.SHA256
}

// declaredSpec is the declared spec of app name as a plan shows, stores and compares it: no secret
// value; each API key as its reference and, when fps (a runtime's KeyFingerprints) has it, the runtime's
// fingerprint of its value, never the value's salted hash (guessable offline); the DSN as its salted hash.
// A key that is already reduced (no value) keeps what it carries.
func declaredSpec(name string, s spec.AppSpec, fps map[string]string) spec.AppSpec {
	keys := s.APIKeys
	s.APIKeys = nil
	s = s.Redacted(name)
	if keys != nil {
		s.APIKeys = make([]spec.APIKey, len(keys))
		for i, k := range keys {
			r := spec.SecretRef{FromEnv: k.Value.FromEnv, FromFile: k.Value.FromFile, SHA256: k.Value.SHA256}
			if k.Value.Value != "" {
				r.SHA256 = fps[spec.SecretHash(name, k.Value.Value)]
			}
			s.APIKeys[i] = spec.APIKey{Name: k.Name, Value: r}
		}
	}
	return s
}

// appDiff is the outcome of comparing a declared app with an observed one.
type appDiff struct {
	diffs []FieldDiff
	// replace is true when the change cannot be made in place.
	replace bool
	// stateOnly is true when the only difference is the running state.
	stateOnly bool
	dataLoss  []string
}

// diffApp compares the declared spec of app name with what its runtime reports. got may be nil (absent).
// fps are the KeyFingerprints of got's runtime: API keys compare by that runtime's fingerprints.
func diffApp(name string, want spec.AppSpec, wantLabels map[string]string, got *api.App, fps map[string]string) appDiff {
	var d appDiff
	w := normalize(declaredSpec(name, want, fps))
	var g spec.AppSpec
	var gotLabels map[string]string
	gotState := spec.StateRunning
	if got != nil {
		g = normalize(got.Spec)
		gotLabels = got.Labels
		gotState = observedState(got.Status)
	} else {
		g = normalize(spec.AppSpec{})
	}
	add := func(fd FieldDiff) { d.diffs = append(d.diffs, fd) }

	if got != nil && w.State != gotState {
		add(FieldDiff{Path: "state", Kind: FieldChange, Before: gotState, After: w.State})
	} else if got == nil && w.State != spec.StateRunning {
		add(FieldDiff{Path: "state", Kind: FieldAdd, After: w.State})
	}
	if w.Protect != g.Protect {
		add(change("protect", strconv.FormatBool(g.Protect), strconv.FormatBool(w.Protect), got == nil))
	}
	if w.Database.Driver != g.Database.Driver {
		fd := change("database.driver", g.Database.Driver, w.Database.Driver, got == nil)
		if got != nil {
			fd.DataLoss = true
			d.replace = true
			d.dataLoss = append(d.dataLoss, fmt.Sprintf("database.driver changes from %s to %s: the app's data is archived and it starts empty", g.Database.Driver, w.Database.Driver))
		}
		add(fd)
	}
	if w.Database.Isolation != g.Database.Isolation && w.Database.Driver == g.Database.Driver {
		fd := change("database.isolation", g.Database.Isolation, w.Database.Isolation, got == nil)
		if got != nil && g.Database.Isolation != "" && w.Database.Isolation != "" {
			fd.DataLoss = true
			d.replace = true
			d.dataLoss = append(d.dataLoss, fmt.Sprintf("database.isolation changes from %s to %s: the app's data is archived and it starts empty", g.Database.Isolation, w.Database.Isolation))
		}
		add(fd)
	}
	if wh, gh := secretHash(name, w.Database.DSN), secretHash(name, g.Database.DSN); wh != gh || (w.Database.DSN == nil) != (g.Database.DSN == nil) {
		add(sensitive("database.dsn", g.Database.DSN != nil, w.Database.DSN != nil))
	}
	if !slices.Equal(sortedCopy(w.Hostnames), sortedCopy(g.Hostnames)) {
		add(change("hostnames", listText(g.Hostnames), listText(w.Hostnames), got == nil))
	}
	// API keys, by name.
	wk, gk := map[string]spec.SecretRef{}, map[string]spec.SecretRef{}
	for _, k := range w.APIKeys {
		wk[k.Name] = k.Value
	}
	for _, k := range g.APIKeys {
		gk[k.Name] = k.Value
	}
	for _, n := range unionKeys(wk, gk) {
		wv, inW := wk[n]
		gv, inG := gk[n]
		if inW && inG && secretHash(name, &wv) == secretHash(name, &gv) {
			continue
		}
		add(sensitive("apiKeys."+n, inG, inW))
	}
	// Settings and labels, by key.
	d.diffs = append(d.diffs, diffMap("settings.", g.Settings, w.Settings)...)
	d.diffs = append(d.diffs, diffMap("labels.", userLabels(gotLabels), userLabels(wantLabels))...)
	if w.Limits.MaxInFlight != g.Limits.MaxInFlight {
		add(change("limits.maxInFlight", limitText(g.Limits.MaxInFlight), limitText(w.Limits.MaxInFlight), got == nil))
	}
	if w.Limits.RequestsPerSecond != g.Limits.RequestsPerSecond {
		add(change("limits.requestsPerSecond", limitText(g.Limits.RequestsPerSecond), limitText(w.Limits.RequestsPerSecond), got == nil))
	}
	if w.Limits.Burst != g.Limits.Burst {
		add(change("limits.burst", burstText(g.Limits), burstText(w.Limits), got == nil))
	}
	// Collections and fields, by name.
	wc, gc := map[string]spec.Collection{}, map[string]spec.Collection{}
	for _, c := range w.Collections {
		wc[c.Name] = c
	}
	for _, c := range g.Collections {
		gc[c.Name] = c
	}
	for _, n := range unionKeys(wc, gc) {
		cw, inW := wc[n]
		cg, inG := gc[n]
		path := "collections." + n
		switch {
		case !inG:
			add(FieldDiff{Path: path, Kind: FieldAdd, After: fieldsText(len(cw.Fields))})
		case !inW:
			add(FieldDiff{Path: path, Kind: FieldRemove, Before: fieldsText(len(cg.Fields)), DataLoss: true})
			d.dataLoss = append(d.dataLoss, path+" is removed with its records")
		default:
			d.diffs = append(d.diffs, d.diffFields(path, cg.Fields, cw.Fields)...)
		}
	}
	d.stateOnly = len(d.diffs) == 1 && d.diffs[0].Path == "state"
	return d
}

func (d *appDiff) diffFields(prefix string, got, want []spec.Field) []FieldDiff {
	wf, gf := map[string]spec.Field{}, map[string]spec.Field{}
	for _, f := range want {
		wf[f.Name] = f
	}
	for _, f := range got {
		gf[f.Name] = f
	}
	var out []FieldDiff
	for _, n := range unionKeys(wf, gf) {
		fw, inW := wf[n]
		fg, inG := gf[n]
		path := prefix + "." + n
		switch {
		case !inG:
			out = append(out, FieldDiff{Path: path, Kind: FieldAdd, After: fieldText(fw)})
		case !inW:
			out = append(out, FieldDiff{Path: path, Kind: FieldRemove, Before: fieldText(fg), DataLoss: true})
			d.dataLoss = append(d.dataLoss, path+" is removed with its values")
		case fieldText(fw) != fieldText(fg):
			fd := FieldDiff{Path: path, Kind: FieldChange, Before: fieldText(fg), After: fieldText(fw)}
			if fw.Type != fg.Type {
				fd.DataLoss = true
				d.dataLoss = append(d.dataLoss, fmt.Sprintf("%s changes type from %s to %s", path, fg.Type, fw.Type))
			}
			out = append(out, fd)
		}
	}
	return out
}

// change is a changed scalar; on a create (added) it is an addition.
func change(path, before, after string, added bool) FieldDiff {
	if added {
		return FieldDiff{Path: path, Kind: FieldAdd, After: after}
	}
	return FieldDiff{Path: path, Kind: FieldChange, Before: orNone(before), After: orNone(after)}
}

func sensitive(path string, before, after bool) FieldDiff {
	fd := FieldDiff{Path: path, Kind: FieldChange, Before: sensitiveText, After: sensitiveText, Sensitive: true}
	switch {
	case !before:
		fd.Kind, fd.Before = FieldAdd, ""
	case !after:
		fd.Kind, fd.After = FieldRemove, ""
	}
	return fd
}

func diffMap(prefix string, got, want map[string]string) []FieldDiff {
	var out []FieldDiff
	for _, k := range unionKeys(want, got) {
		wv, inW := want[k]
		gv, inG := got[k]
		switch {
		case !inG:
			out = append(out, FieldDiff{Path: prefix + k, Kind: FieldAdd, After: strconv.Quote(wv)})
		case !inW:
			out = append(out, FieldDiff{Path: prefix + k, Kind: FieldRemove, Before: strconv.Quote(gv)})
		case wv != gv:
			out = append(out, FieldDiff{Path: prefix + k, Kind: FieldChange, Before: strconv.Quote(gv), After: strconv.Quote(wv)})
		}
	}
	return out
}

// userLabels drops the labels the control plane keeps for itself (appfleet.dev/...).
func userLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if !strings.HasPrefix(k, spec.ReservedLabelPrefix) {
			out[k] = v
		}
	}
	return out
}

func unionKeys[V, W any](a map[string]V, b map[string]W) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func listText(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

func limitText(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func burstText(l spec.Limits) string {
	if l.Burst == 0 {
		return "default"
	}
	return strconv.Itoa(l.Burst)
}

func fieldsText(n int) string {
	if n == 1 {
		return "(1 field)"
	}
	return fmt.Sprintf("(%d fields)", n)
}

// fieldText describes a field in one line: "enum [free, pro], required, default free".
func fieldText(f spec.Field) string {
	s := f.Type
	if len(f.Values) > 0 {
		s += " " + listText(f.Values)
	}
	if f.Required {
		s += ", required"
	}
	if f.Unique {
		s += ", unique"
	}
	if f.Default != nil {
		b, err := json.Marshal(f.Default)
		if err != nil {
			b = []byte(fmt.Sprint(f.Default))
		}
		if str, ok := f.Default.(string); ok {
			b = []byte(str)
		}
		s += ", default " + string(b)
	}
	return s
}

// diffEnvironment compares the spec a runtime was applied with (nil when its provider keeps none) with
// the declared one, setting by setting: "runtime.idleTimeout", "local.listen", "terraform.variables.size".
func diffEnvironment(got *spec.EnvironmentSpec, want spec.EnvironmentSpec) []FieldDiff {
	if got == nil {
		return nil
	}
	g, w := map[string]string{}, map[string]string{}
	flatten("", toAnyJSON(*got), g)
	flatten("", toAnyJSON(want), w)
	var out []FieldDiff
	for _, k := range unionKeys(w, g) {
		wv, inW := w[k]
		gv, inG := g[k]
		switch {
		case !inG:
			out = append(out, FieldDiff{Path: k, Kind: FieldAdd, After: wv})
		case !inW:
			out = append(out, FieldDiff{Path: k, Kind: FieldRemove, Before: gv})
		case wv != gv:
			out = append(out, FieldDiff{Path: k, Kind: FieldChange, Before: gv, After: wv})
		}
	}
	return out
}

// toAnyJSON is v's JSON form as plain Go values.
func toAnyJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

// flatten writes every leaf of v under its dotted path, as JSON text; lists are leaves.
func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x, out)
		}
		return
	}
	if prefix == "" {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprint(v))
	}
	out[prefix] = string(b)
}
