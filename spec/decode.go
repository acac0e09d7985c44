package spec

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// pos is a 1-based line and column in a file.
type pos struct{ line, col int }

// decoder fills Go values from a yaml.Node tree strictly: an unknown or duplicate key, a value of the
// wrong shape, an alias cycle or too much alias expansion each become a diagnostic at the node's position.
// It records the position of every value it decodes, keyed by its path ("spec.collections[0].name"), so
// that validation can point at what it complains about.
//
// It walks the tree itself rather than calling yaml.Node.Decode on anything but single scalars, so that
// alias expansion is bounded by budget and no error loses its column.
type decoder struct {
	file      string
	what      string // the document, for messages: `App "crm"`
	pos       map[string]pos
	budget    int // nodes it may still visit, counting every alias expansion
	exhausted bool
	expanding map[*yaml.Node]bool // anchors being expanded, to catch an alias inside its own anchor
	typos     map[string]bool     // paths of fields an unknown field was probably meant to be
	bad       map[string]bool     // paths whose value could not be decoded
	diags     *Diagnostics
}

var (
	durationType  = reflect.TypeFor[Duration]()
	secretRefType = reflect.TypeFor[SecretRef]()
)

func (d *decoder) errorAt(n *yaml.Node, detail, format string, args ...any) {
	*d.diags = append(*d.diags, Diagnostic{
		Severity: SeverityError,
		Summary:  fmt.Sprintf(format, args...),
		Detail:   detail,
		File:     d.file,
		Line:     max(n.Line, 1),
		Column:   max(n.Column, 1),
	})
}

// spend takes one node from the budget and reports whether decoding may go on.
func (d *decoder) spend(n *yaml.Node) bool {
	if d.exhausted {
		return false
	}
	d.budget--
	if d.budget < 0 {
		d.exhausted = true
		d.errorAt(n, "Aliases may repeat a node, but not so often that the document grows this large; write the values out or split the document.",
			"%s expands to more than %d YAML nodes", d.what, maxNodesPerFile)
		return false
	}
	return true
}

// follow resolves an alias to its anchor. ok is false when the alias is broken or inside its own anchor;
// release must be called when the anchor's value has been decoded.
func (d *decoder) follow(n *yaml.Node) (target *yaml.Node, release func(), ok bool) {
	if n.Kind != yaml.AliasNode {
		return n, func() {}, true
	}
	t := n.Alias
	if t == nil {
		d.errorAt(n, "Define the anchor (&name) before the alias (*name) that repeats it.", "unknown anchor %q", n.Value)
		return nil, nil, false
	}
	if d.expanding[t] {
		d.errorAt(n, "An alias cannot repeat the node that contains it; write the value out.", "alias *%s refers to a node that contains it", n.Value)
		return nil, nil, false
	}
	d.expanding[t] = true
	// An alias of an alias is already resolved by the parser, so t is never an AliasNode itself.
	return t, func() { delete(d.expanding, t) }, true
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names what a node is, for "want X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		default:
			return strconv.Quote(truncate(n.Value, 40))
		}
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a document"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decode fills v from n; path names v for positions and messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n) {
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = pos{n.Line, n.Column}
	}
	n, release, ok := d.follow(n)
	if !ok {
		return
	}
	defer release()
	d.value(n, v, path)
}

func (d *decoder) typeError(n *yaml.Node, path, want, detail string) {
	d.bad[path] = true
	d.errorAt(n, detail, "invalid %s in %s: want %s, found %s", path, d.what, want, describe(n))
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	switch t {
	case durationType:
		d.duration(n, v, path)
		return
	case secretRefType:
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			d.bad[path] = true
			d.errorAt(n, "Keep the secret in an environment variable or a file and write {fromEnv: NAME} or {fromFile: path}.",
				"invalid %s in %s: secrets are never written inline", path, d.what)
			return
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structValue(n, v, path)
	case reflect.Map:
		d.mapValue(n, v, path)
	case reflect.Slice:
		d.sliceValue(n, v, path)
	case reflect.Interface:
		if x := d.toAny(n, path); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, path, "a string", "Write a single value here; quote it if it holds special characters.")
			return
		}
		if !isNull(n) {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.typeError(n, path, "true or false", "Write true or false, without quotes.")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.typeError(n, path, "a whole number", "Write a whole number such as 10, without quotes.")
			return
		}
		v.SetInt(i)
	default:
		// The manifest types hold nothing else; a new kind of field needs a case here.
		d.errorAt(n, "", "internal error: cannot decode %s into %s", path, t)
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, path, "a duration", `Write a duration such as "10m" or "90s".`)
		return
	}
	var dur Duration
	if err := dur.UnmarshalYAML(n); err != nil {
		d.bad[path] = true
		d.errorAt(n, `Write a duration such as "10m", "90s" or "1h30m".`, "invalid %s in %s: %v", path, d.what, err)
		return
	}
	v.Set(reflect.ValueOf(dur))
}

// structFields describes the YAML fields of a struct type.
type structFields struct {
	index map[string]int // YAML name -> field index
	names []string       // YAML names in declaration order
}

var structCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := structCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	structCache.Store(t, f)
	return f
}

// YAMLFields returns the YAML field names of a manifest struct type in declaration order, the names
// strict decoding accepts. The schema tests compare them with the JSON Schemas.
func YAMLFields(t reflect.Type) []string {
	return append([]string(nil), fieldsOf(t).names...)
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	info := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		d.bad[path] = true
		what := path
		if what == "" {
			what = "document"
		}
		d.errorAt(n, fmt.Sprintf("Write a mapping with the fields %s.", quoteList(info.names, "and")),
			"invalid %s in %s: want a mapping, found %s", what, d.what, describe(n))
		return
	}
	for _, p := range d.pairs(n) {
		name := p.key.Value
		i, ok := info.index[name]
		if !ok {
			of := path
			if of == "" {
				of = "the document"
			}
			s := suggest(name, info.names)
			if s != "" {
				d.typos[joinPath(path, s)] = true
			}
			d.errorAt(p.key, fmt.Sprintf("The fields of %s are %s.", of, quoteList(info.names, "and")),
				"unknown field %q in %s%s", name, d.what, didYouMean(name, info.names))
			continue
		}
		d.keyAt(p.key, joinPath(path, name))
		d.decode(p.val, v.Field(i), joinPath(path, name))
	}
}

// keySuffix marks, in a document's positions, the position of the key that holds a path's value.
const keySuffix = "#key"

// keyAt records where the key of path is, for problems about the key being there ("spec.local is set
// but ...") rather than about its value.
func (d *decoder) keyAt(key *yaml.Node, path string) {
	if _, seen := d.pos[path+keySuffix]; !seen {
		d.pos[path+keySuffix] = pos{key.Line, key.Column}
	}
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, "a mapping", "Write key: value pairs here.")
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, p := range d.pairs(n) {
		elem := reflect.New(t.Elem()).Elem()
		d.keyAt(p.key, joinPath(path, p.key.Value))
		d.decode(p.val, elem, joinPath(path, p.key.Value))
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), elem)
	}
}

func (d *decoder) sliceValue(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.typeError(n, path, "a list", "Write a list, one item per line starting with \"- \", or [a, b].")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		if d.exhausted {
			break
		}
	}
	v.Set(s)
}

// toAny turns a node into plain Go values (map[string]any, []any, string, int, float64, bool, nil).
// Nested values are reported under the path of the field that holds them: building a path per level
// would cost the square of the depth.
func (d *decoder) toAny(n *yaml.Node, path string) any {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return n.Value
		case "!!null":
			return nil
		case "!!timestamp":
			// Kept as written: JSON has no time type, and a datetime default is validated as RFC 3339 text.
			return n.Value
		}
		var x any
		if err := n.Decode(&x); err != nil {
			d.bad[path] = true
			d.errorAt(n, "Quote the value to keep it as text.", "invalid %s in %s: %s cannot be read", path, d.what, describe(n))
			return nil
		}
		if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			d.bad[path] = true
			d.errorAt(n, "JSON has no such number; quote the value to keep it as text.", "invalid %s in %s: want a finite number, found %s", path, d.what, n.Value)
			return nil
		}
		return x
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			out = append(out, d.anyChild(item, path))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for _, p := range d.pairs(n) {
			out[p.key.Value] = d.anyChild(p.val, path)
		}
		return out
	default:
		return nil
	}
}

func (d *decoder) anyChild(n *yaml.Node, path string) any {
	if !d.spend(n) {
		return nil
	}
	n, release, ok := d.follow(n)
	if !ok {
		return nil
	}
	defer release()
	return d.toAny(n, path)
}

type pair struct{ key, val *yaml.Node }

// pairs returns a mapping's key/value pairs with merge keys (<<) applied: explicit keys win over merged
// ones, and earlier merged mappings over later ones. A duplicate or non-string key is an error.
func (d *decoder) pairs(n *yaml.Node) []pair {
	var explicit, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(n.Content[i]) {
			return nil
		}
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil && k.Alias.Kind == yaml.ScalarNode {
			k = k.Alias
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(val)...)
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.errorAt(n.Content[i], "Keys are plain names such as \"name\".", "invalid key in %s: want a name, found %s", d.what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorAt(n.Content[i], fmt.Sprintf("Remove one of the two; the first is on line %d.", first.Line),
				"duplicate key %q in %s", k.Value, d.what)
			continue
		}
		seen[k.Value] = n.Content[i]
		explicit = append(explicit, pair{n.Content[i], val})
	}
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key
			explicit = append(explicit, p)
		}
	}
	return explicit
}

// mergePairs returns the pairs a merge key's value brings: one mapping or a list of mappings.
func (d *decoder) mergePairs(val *yaml.Node) []pair {
	if !d.spend(val) {
		return nil
	}
	val, release, ok := d.follow(val)
	if !ok {
		return nil
	}
	defer release()
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range val.Content {
			if !d.spend(item) {
				return nil
			}
			item, release, ok := d.follow(item)
			if !ok {
				continue
			}
			if item.Kind != yaml.MappingNode {
				d.errorAt(item, "Merge (<<) a mapping or a list of mappings.", "invalid merge in %s: want a mapping, found %s", d.what, describe(item))
			} else {
				out = append(out, d.pairs(item)...)
			}
			release()
		}
		return out
	default:
		d.errorAt(val, "Merge (<<) a mapping or a list of mappings.", "invalid merge in %s: want a mapping, found %s", d.what, describe(val))
		return nil
	}
}
