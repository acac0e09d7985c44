package spec

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// MaxGeneratedApps bounds how many apps one AppSet may generate, so that a matrix of two long lists
// cannot make a small file expand into millions of apps.
const MaxGeneratedApps = 100_000

// paramName is what may stand between {{ and }}.
var paramName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

const hintParams = "Parameters substitute {{name}} in string values of the template only; their names are letters, digits and '_', starting with a letter."

// generated says where an app that an AppSet generated comes from.
type generated struct {
	set     string // the AppSet's name
	element string // "generators[0].list[17]"
	at      pos    // the element's position in the AppSet's file
}

// element is one parameter set a generator produced.
type element struct {
	id     string // "generators[0].list[17]"
	at     pos
	params map[string]string
}

// hole is a string value of the template that refers to parameters.
type hole struct {
	path  string // in the AppSet document: "spec.template.metadata.name"
	names []string
}

// expander turns one AppSet into the apps it generates.
type expander struct {
	l     *loader
	doc   *document
	set   *AppSet
	holes []hole
	count int // elements produced so far, against MaxGeneratedApps
	over  bool
}

func (x *expander) errorf(path, detail, format string, args ...any) {
	x.l.add(SeverityError, x.doc.file, x.doc.at(path), detail, format, args...)
}

// expand returns the apps an AppSet generates, each with a document whose positions are those of the
// template and which says which element made it. Problems of the AppSet itself (its generators, a
// malformed or missing parameter) are reported here, once; each generated app is validated later like a
// written one.
func (l *loader) expand(doc *document, set *AppSet) []entry[App] {
	x := &expander{l: l, doc: doc, set: set}
	if len(set.Spec.Generators) == 0 {
		if !doc.bad["spec.generators"] {
			x.errorf("spec", "Add generators, such as generators: [{list: [{tenant: acme}]}].", "missing spec.generators in %s", doc.what)
		}
		return nil
	}
	elems := x.generators(set.Spec.Generators, "spec.generators")
	holes := x.scan(reflect.ValueOf(set.Spec.Template), "spec.template")
	if x.over {
		return nil
	}
	used := map[string]bool{}
	for _, h := range x.holes {
		for _, n := range h.names {
			used[n] = true
		}
	}
	names := slices.Sorted(maps.Keys(used))

	// The template's positions, bad values and typos, under the paths an App has.
	tpos := map[string]pos{"": doc.at("spec.template")}
	for k, p := range doc.pos {
		if rest, ok := strings.CutPrefix(k, "spec.template."); ok {
			tpos[rest] = p
		}
	}
	under := func(m map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k := range m {
			if rest, ok := strings.CutPrefix(k, "spec.template."); ok {
				out[rest] = true
			} else if k == "spec.template" {
				out[""] = true
			}
		}
		return out
	}
	tbad, ttypos := under(doc.bad), under(doc.typos)

	missing := map[string][]element{}
	tmpl := reflect.ValueOf(set.Spec.Template)
	out := make([]entry[App], 0, len(elems))
	for _, e := range elems {
		complete := true
		for _, n := range names {
			if _, ok := e.params[n]; !ok {
				missing[n] = append(missing[n], e)
				complete = false
			}
		}
		if !complete {
			continue
		}
		t := set.Spec.Template
		if holes != nil {
			t = substituteMasked(tmpl, holes, e.params).Interface().(AppTemplate)
		}
		app := App{APIVersion: set.APIVersion, Kind: KindApp, Metadata: t.Metadata, Spec: t.Spec,
			Source: Source{File: doc.file, Line: e.at.line, Column: e.at.col}}
		gdoc := &document{file: doc.file, dir: doc.dir, kind: KindApp, what: doc.what, pos: tpos, typos: ttypos, bad: tbad,
			gen: &generated{set: set.Metadata.Name, element: e.id, at: e.at}}
		out = append(out, entry[App]{app, gdoc})
	}
	x.reportMissing(missing, elems, names)
	return out
}

// reportMissing reports each parameter the template uses that some elements do not set, once.
func (x *expander) reportMissing(missing map[string][]element, elems []element, used []string) {
	var known []string
	seen := map[string]bool{}
	for _, e := range elems {
		for k := range e.params {
			if !seen[k] {
				seen[k] = true
				known = append(known, k)
			}
		}
	}
	slices.Sort(known)
	for _, n := range used {
		es := missing[n]
		if len(es) == 0 {
			continue
		}
		at := x.firstUse(n)
		if len(es) == len(elems) {
			hint := "No element sets it; add it to the elements, or fix the name."
			if len(known) > 0 {
				hint = "The elements set " + quoteList(known, "and") + "."
			}
			x.errorf(at, hint, "unknown parameter {{%s}} in the template of %s%s", n, x.doc.what, didYouMean(n, known))
			continue
		}
		list := make([]string, 0, 3)
		for _, e := range es[:min(3, len(es))] {
			list = append(list, fmt.Sprintf("%s (line %d)", e.id, e.at.line))
		}
		more := ""
		if len(es) > 3 {
			more = fmt.Sprintf(" and %d more", len(es)-3)
		}
		x.errorf(at, fmt.Sprintf("Set %s in every element; no app is generated from an element that lacks it.", n),
			"parameter {{%s}} of %s is not set by %s%s", n, x.doc.what, strings.Join(list, ", "), more)
	}
}

// firstUse is the path of the first template value that refers to parameter n.
func (x *expander) firstUse(n string) string {
	for _, h := range x.holes {
		if slices.Contains(h.names, n) {
			return h.path
		}
	}
	return "spec.template"
}

func (x *expander) generators(gens []Generator, path string) []element {
	var out []element
	for i, g := range gens {
		out = append(out, x.generator(g, fmt.Sprintf("%s[%d]", path, i))...)
	}
	return out
}

func (x *expander) generator(g Generator, path string) []element {
	if x.over {
		return nil
	}
	switch {
	case g.List != nil && g.Matrix != nil:
		x.errorf(path, "Split them into two generators, or combine them with matrix.", "generator %s of %s sets both list and matrix", trimSpec(path), x.doc.what)
		return nil
	case g.Matrix != nil:
		return x.matrix(g.Matrix, path+".matrix")
	case g.List != nil:
		out := make([]element, 0, len(g.List))
		for j, params := range g.List {
			p := fmt.Sprintf("%s.list[%d]", path, j)
			for _, k := range sortedKeys(params) {
				if !paramName.MatchString(k) {
					x.errorf(joinPath(p, k), hintParams, "invalid parameter name %q in %s of %s", truncate(k, 80), trimSpec(p), x.doc.what)
				}
			}
			if !x.take(1, p) {
				return nil
			}
			out = append(out, element{id: trimSpec(p), at: x.doc.at(p), params: params})
		}
		return out
	default:
		if !x.doc.bad[path] {
			x.errorf(path, "A generator is {list: [{name: value}, ...]} or {matrix: {generators: [g1, g2]}}.", "generator %s of %s sets neither list nor matrix", trimSpec(path), x.doc.what)
		}
		return nil
	}
}

func (x *expander) matrix(m *Matrix, path string) []element {
	if len(m.Generators) != 2 {
		x.errorf(path, "A matrix combines exactly two generators: every element of the first with every element of the second.",
			"matrix %s of %s has %d generators, want 2", trimSpec(path), x.doc.what, len(m.Generators))
		return nil
	}
	a := x.generator(m.Generators[0], path+".generators[0]")
	b := x.generator(m.Generators[1], path+".generators[1]")
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	keysOf := func(es []element) map[string]bool {
		out := map[string]bool{}
		for _, e := range es {
			for k := range e.params {
				out[k] = true
			}
		}
		return out
	}
	ka, kb := keysOf(a), keysOf(b)
	var both []string
	for k := range ka {
		if kb[k] {
			both = append(both, k)
		}
	}
	if len(both) > 0 {
		slices.Sort(both)
		x.errorf(path, "Rename the parameter in one of the two generators.", "both generators of matrix %s of %s set %s", trimSpec(path), x.doc.what, quoteList(both, "and"))
		return nil
	}
	if !x.take(len(a)*len(b)-len(a)-len(b), path) {
		return nil
	}
	out := make([]element, 0, len(a)*len(b))
	for _, ea := range a {
		for _, eb := range b {
			params := make(map[string]string, len(ea.params)+len(eb.params))
			maps.Copy(params, ea.params)
			maps.Copy(params, eb.params)
			out = append(out, element{id: ea.id + " × " + eb.id, at: ea.at, params: params})
		}
	}
	return out
}

// take counts n more elements and reports false (once) when the AppSet would generate too many apps.
func (x *expander) take(n int, path string) bool {
	x.count += n
	if x.count > MaxGeneratedApps && !x.over {
		x.over = true
		x.errorf(path, "Split the apps over several AppSets.", "%s generates more than %d apps", x.doc.what, MaxGeneratedApps)
	}
	return !x.over
}

func trimSpec(path string) string { return strings.TrimPrefix(path, "spec.") }

// mask marks where in the template the strings that refer to parameters are, so that substituting an
// element's parameters visits only those parts: by struct field or list index (fields), by map key
// (keys), through a pointer (elem), or everywhere below (all, for free-form values).
type mask struct {
	fields map[int]*mask
	keys   map[string]*mask
	elem   *mask
	all    bool
}

// scan records every string of the template that refers to parameters, and reports a reference that is
// malformed or stands in a key, where parameters are never substituted. It returns where those strings
// are, or nil when there are none below v.
func (x *expander) scan(v reflect.Value, path string) *mask {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); strings.Contains(s, "{{") {
			names, problem := parseRefs(s)
			if problem != "" {
				x.errorf(path, hintParams, "invalid parameter reference in %s of %s: %s", trimSpec(path), x.doc.what, problem)
				return nil
			}
			x.holes = append(x.holes, hole{path: path, names: names})
			return &mask{all: true}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			if m := x.scan(v.Elem(), path); m != nil {
				return &mask{elem: m}
			}
		}
	case reflect.Interface:
		if !v.IsNil() && x.scanAny(v.Elem(), path) {
			return &mask{all: true}
		}
	case reflect.Struct:
		var out *mask
		info := fieldsOf(v.Type())
		for _, name := range info.names {
			i := info.index[name]
			if m := x.scan(v.Field(i), joinPath(path, name)); m != nil {
				if out == nil {
					out = &mask{fields: map[int]*mask{}}
				}
				out.fields[i] = m
			}
		}
		return out
	case reflect.Slice:
		var out *mask
		for i := range v.Len() {
			if m := x.scan(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); m != nil {
				if out == nil {
					out = &mask{fields: map[int]*mask{}}
				}
				out.fields[i] = m
			}
		}
		return out
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		var out *mask
		for _, k := range keys {
			p := joinPath(path, k)
			if strings.Contains(k, "{{") {
				x.errorf(p, "Parameters substitute in values only, never in keys or the template's structure; write the key out.",
					"parameter in key %q of %s in %s", truncate(k, 80), trimSpec(path), x.doc.what)
			}
			if m := x.scan(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), p); m != nil {
				if out == nil {
					out = &mask{keys: map[string]*mask{}}
				}
				out.keys[k] = m
			}
		}
		return out
	}
	return nil
}

// scanAny is scan for the values of a free-form field (a default): they are reported under the field.
// It reports whether any of them refers to parameters.
func (x *expander) scanAny(v reflect.Value, path string) bool {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	found := false
	switch v.Kind() {
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if strings.Contains(k.String(), "{{") {
				x.errorf(path, "Parameters substitute in values only, never in keys or the template's structure; write the key out.",
					"parameter in key %q of %s in %s", truncate(k.String(), 80), trimSpec(path), x.doc.what)
			}
			found = x.scanAny(v.MapIndex(k), path) || found
		}
	case reflect.Slice:
		for i := range v.Len() {
			found = x.scanAny(v.Index(i), path) || found
		}
	default:
		found = x.scan(v, path) != nil
	}
	return found
}

// parseRefs returns the parameter names a string refers to with {{name}} (spaces inside the braces
// allowed), or why a reference in it is malformed.
func parseRefs(s string) (names []string, problem string) {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return names, ""
		}
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 {
			return nil, "{{ is not closed by }}"
		}
		n := strings.TrimSpace(s[:j])
		if !paramName.MatchString(n) {
			return nil, fmt.Sprintf("%q is not a parameter name", truncate("{{"+s[:j]+"}}", 80))
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
		s = s[j+2:]
	}
}

// replaceRefs substitutes every {{name}} of s; s was checked by parseRefs and params hold every name.
func replaceRefs(s string, params map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 { // not reached: parseRefs refused it
			b.WriteString("{{" + s)
			return b.String()
		}
		b.WriteString(params[strings.TrimSpace(s[:j])])
		s = s[j+2:]
	}
}

// substituteMasked is substitute restricted to the parts of v that m marks; m is not nil.
func substituteMasked(v reflect.Value, m *mask, params map[string]string) reflect.Value {
	if m.all {
		out, _ := substitute(v, params)
		return out
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || m.elem == nil {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(substituteMasked(v.Elem(), m.elem, params))
		return p
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i, fm := range m.fields {
			out.Field(i).Set(substituteMasked(v.Field(i), fm, params))
		}
		return out
	case reflect.Slice:
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(out, v)
		for i, fm := range m.fields {
			out.Index(i).Set(substituteMasked(v.Index(i), fm, params))
		}
		return out
	case reflect.Map:
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			out.SetMapIndex(iter.Key(), iter.Value())
		}
		for k, km := range m.keys {
			key := reflect.ValueOf(k).Convert(v.Type().Key())
			out.SetMapIndex(key, substituteMasked(v.MapIndex(key), km, params))
		}
		return out
	default:
		return v
	}
}

// substitute returns v with parameters substituted in every string it holds, and whether anything
// changed. It copies only what changes: parts of the template without parameters are shared by every
// generated app, which must therefore never be modified in place.
func substitute(v reflect.Value, params map[string]string) (reflect.Value, bool) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if !strings.Contains(s, "{{") {
			return v, false
		}
		out := reflect.New(v.Type()).Elem()
		out.SetString(replaceRefs(s, params))
		return out, true
	case reflect.Pointer:
		if v.IsNil() {
			return v, false
		}
		e, changed := substitute(v.Elem(), params)
		if !changed {
			return v, false
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(e)
		return p, true
	case reflect.Interface:
		if v.IsNil() {
			return v, false
		}
		e, changed := substitute(v.Elem(), params)
		if !changed {
			return v, false
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(e)
		return out, true
	case reflect.Struct:
		var out reflect.Value
		t := v.Type()
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			f, changed := substitute(v.Field(i), params)
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.New(t).Elem()
				out.Set(v)
			}
			out.Field(i).Set(f)
		}
		if !out.IsValid() {
			return v, false
		}
		return out, true
	case reflect.Slice:
		var out reflect.Value
		for i := range v.Len() {
			e, changed := substitute(v.Index(i), params)
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
				reflect.Copy(out, v)
			}
			out.Index(i).Set(e)
		}
		if !out.IsValid() {
			return v, false
		}
		return out, true
	case reflect.Map:
		var out reflect.Value
		iter := v.MapRange()
		for iter.Next() {
			e, changed := substitute(iter.Value(), params)
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.MakeMapWithSize(v.Type(), v.Len())
				for _, k := range v.MapKeys() {
					out.SetMapIndex(k, v.MapIndex(k))
				}
			}
			out.SetMapIndex(iter.Key(), e)
		}
		if !out.IsValid() {
			return v, false
		}
		return out, true
	default:
		return v, false
	}
}
