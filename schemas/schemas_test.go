package schemas_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/appfleet/appfleet/schemas"
	"github.com/appfleet/appfleet/spec"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// schemaDoc is one schema file, parsed, for walking alongside the Go types.
type schemaDoc map[string]any

func readSchema(t *testing.T, name string) schemaDoc {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS, name)
	require.NoError(t, err)
	var d schemaDoc
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// resolve follows a local "$ref": "#/$defs/x" (once or more) to the schema it names.
func (d schemaDoc) resolve(t *testing.T, s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		require.True(t, ok, "only local $defs references are used: %s", ref)
		def, ok := d["$defs"].(map[string]any)[name].(map[string]any)
		require.True(t, ok, "missing $defs/%s", name)
		s = def
	}
}

var durationType = reflect.TypeFor[spec.Duration]()

// compare walks a Go type and its schema together and reports every property that exists on one side only.
// A type met again inside itself (an AppSet's matrix holds generators) is compared once.
func (d schemaDoc) compare(t *testing.T, typ reflect.Type, s map[string]any, path string) {
	d.compareIn(t, typ, s, path, map[reflect.Type]bool{})
}

func (d schemaDoc) compareIn(t *testing.T, typ reflect.Type, s map[string]any, path string, open map[reflect.Type]bool) {
	s = d.resolve(t, s)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if open[typ] {
		return
	}
	if typ.Kind() == reflect.Struct {
		open[typ] = true
		defer delete(open, typ)
	}
	switch {
	case typ == durationType:
		assert.Equal(t, "string", s["type"], "%s: a duration is a string", path)
	case typ.Kind() == reflect.Struct:
		props, _ := s["properties"].(map[string]any)
		var schemaFields []string
		for k := range props {
			schemaFields = append(schemaFields, k)
		}
		goFields := spec.YAMLFields(typ)
		slices.Sort(schemaFields)
		sortedGo := slices.Sorted(slices.Values(goFields))
		assert.Equal(t, sortedGo, schemaFields, "%s: fields of %s (Go) and of the schema differ", path, typ)
		assert.Equal(t, false, s["additionalProperties"], "%s: the schema must refuse unknown fields, as the loader does", path)
		for _, name := range goFields {
			sf, ok := typ.FieldByNameFunc(func(n string) bool {
				f, _ := typ.FieldByName(n)
				tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				return tag == name
			})
			require.True(t, ok, name)
			if sub, ok := props[name].(map[string]any); ok {
				d.compareIn(t, sf.Type, sub, path+"."+name, open)
			}
		}
	case typ.Kind() == reflect.Slice:
		assert.Equal(t, "array", s["type"], "%s: want an array", path)
		items, ok := s["items"].(map[string]any)
		if assert.True(t, ok, "%s: array without items", path) {
			d.compareIn(t, typ.Elem(), items, path+"[]", open)
		}
	case typ.Kind() == reflect.Map:
		assert.Equal(t, "object", s["type"], "%s: want an object", path)
		if sub, ok := s["additionalProperties"].(map[string]any); ok {
			d.compareIn(t, typ.Elem(), sub, path+".*", open)
		}
	}
}

func TestSchemas_MatchGoTypes(t *testing.T) {
	tests := []struct {
		file string
		typ  reflect.Type
	}{
		{"fleet.schema.json", reflect.TypeFor[spec.Fleet]()},
		{"environment.schema.json", reflect.TypeFor[spec.Environment]()},
		{"app.schema.json", reflect.TypeFor[spec.App]()},
		{"appset.schema.json", reflect.TypeFor[spec.AppSet]()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d := readSchema(t, tt.file)
			assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", d["$schema"])
			d.compare(t, tt.typ, d, tt.typ.Name())
		})
	}
}

// compile compiles a schema file of this directory, resolving its relative references on disk.
func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	abs, err := filepath.Abs(name)
	require.NoError(t, err)
	sch, err := jsonschema.NewCompiler().Compile(abs)
	require.NoError(t, err)
	return sch
}

// documents decodes every YAML document of a file into JSON-compatible values.
func documents(t *testing.T, b []byte) []any {
	t.Helper()
	var out []any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if v == nil {
			continue
		}
		j, err := json.Marshal(v)
		require.NoError(t, err)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		require.NoError(t, err)
		out = append(out, inst)
	}
}

const schemaLine = "# yaml-language-server: $schema="

func TestSchemas_ValidateExamples(t *testing.T) {
	manifest := compile(t, "manifest.schema.json")
	var files []string
	require.NoError(t, filepath.WalkDir(filepath.Join("..", "examples"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "ci" {
			return filepath.SkipDir // CI pipelines, not manifests
		}
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.ToSlash(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			first, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
			ref, ok := strings.CutPrefix(string(first), schemaLine)
			require.True(t, ok, "the first line is %q", schemaLine+"<path>")
			named := filepath.Join(filepath.Dir(file), filepath.FromSlash(ref))
			require.FileExists(t, named, "the $schema path is relative to the file")
			own, err := jsonschema.NewCompiler().Compile(mustAbs(t, named))
			require.NoError(t, err)

			docs := documents(t, b)
			require.NotEmpty(t, docs)
			for i, doc := range docs {
				assert.NoError(t, own.Validate(doc), "document %d against %s", i, ref)
				assert.NoError(t, manifest.Validate(doc), "document %d against manifest.schema.json", i)
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	return abs
}

func TestSchemas_RefuseInvalid(t *testing.T) {
	manifest := compile(t, "manifest.schema.json")
	const h = "apiVersion: appfleet.dev/v1alpha1\n"
	tests := map[string]string{
		"unknown field":             h + "kind: App\nmetadata: {name: crm}\nspec: {enviroment: dev}\n",
		"unknown kind":              h + "kind: Ap\nmetadata: {name: crm}\n",
		"bad name":                  h + "kind: App\nmetadata: {name: CRM}\nspec: {environment: dev}\n",
		"foreign provider block":    h + "kind: Environment\nmetadata: {name: dev}\nspec: {provider: local, docker: {}}\n",
		"terraform without block":   h + "kind: Environment\nmetadata: {name: dev}\nspec: {provider: terraform}\n",
		"inline secret":             h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, apiKeys: [{name: a, value: hunter2}]}\n",
		"two secret sources":        h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, apiKeys: [{name: a, value: {fromEnv: A, fromFile: b}}]}\n",
		"postgres without dsn":      h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, database: {driver: postgres}}\n",
		"sqlite with dsn":           h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, database: {dsn: {fromEnv: A}}}\n",
		"enum without values":       h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, collections: [{name: c, fields: [{name: t, type: enum}]}]}\n",
		"reserved field":            h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, collections: [{name: c, fields: [{name: id, type: integer}]}]}\n",
		"default of wrong type":     h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, collections: [{name: c, fields: [{name: n, type: integer, default: ten}]}]}\n",
		"bad duration":              h + "kind: Environment\nmetadata: {name: dev}\nspec: {provider: local, runtime: {idleTimeout: 10 minutes}}\n",
		"environment and placement": h + "kind: App\nmetadata: {name: crm}\nspec: {environment: dev, placement: {selector: {tier: prod}}}\n",
		"unknown strategy":          h + "kind: App\nmetadata: {name: crm}\nspec: {placement: {strategy: random}}\n",
		"appset without template":   h + "kind: AppSet\nmetadata: {name: t}\nspec: {generators: [{list: [{a: b}]}]}\n",
		"matrix of one":             h + "kind: AppSet\nmetadata: {name: t}\nspec: {generators: [{matrix: {generators: [{list: []}]}}], template: {metadata: {name: x}, spec: {environment: dev}}}\n",
		"appset bad name":           h + "kind: AppSet\nmetadata: {name: T}\nspec: {generators: [{list: []}], template: {metadata: {name: x}, spec: {environment: dev}}}\n",
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			docs := documents(t, []byte(doc))
			require.Len(t, docs, 1)
			assert.Error(t, manifest.Validate(docs[0]))
		})
	}
}

// appSetSchema is appset.schema.json as it must be: the AppSet's own shape, and for its template the
// definitions of app.schema.json without their patterns, since a templated value such as
// "shop-{{tenant}}" only has to match once its parameters are substituted (validate checks that).
func appSetSchema(t *testing.T) map[string]any {
	app := readSchema(t, "app.schema.json")
	var strip func(v any) any
	strip = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				if k != "pattern" {
					out[k] = strip(e)
				}
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = strip(e)
			}
			return out
		default:
			return v
		}
	}
	defs := strip(app["$defs"]).(map[string]any)
	appDefs := app["$defs"].(map[string]any)
	defs["name"].(map[string]any)["description"] = "A DNS label once the template's parameters are substituted."
	defs["setName"] = appDefs["name"]
	setMeta := strip(appDefs["metadata"]).(map[string]any)
	setMeta["description"] = "Names the AppSet and carries its labels."
	setMeta["properties"].(map[string]any)["name"] = map[string]any{"$ref": "#/$defs/setName"}
	defs["setMetadata"] = setMeta
	defs["appSetSpec"] = map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"generators", "template"},
		"description": "The generators of parameter sets and the template of the apps: one app per element.",
		"properties": map[string]any{
			"generators": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/$defs/generator"},
				"description": "The apps are the union of every generator's elements."},
			"template": map[string]any{"$ref": "#/$defs/template"},
		},
	}
	defs["generator"] = map[string]any{
		"type": "object", "additionalProperties": false,
		"description": "Exactly one of list and matrix.",
		"oneOf":       []any{map[string]any{"required": []any{"list"}}, map[string]any{"required": []any{"matrix"}}},
		"properties": map[string]any{
			"list": map[string]any{"type": "array", "description": "One parameter set per element: parameter name to value.",
				"items": map[string]any{"type": "object",
					"propertyNames":        map[string]any{"pattern": "^[A-Za-z][A-Za-z0-9_]{0,62}$"},
					"additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}}}},
			"matrix": map[string]any{"$ref": "#/$defs/matrix"},
		},
	}
	defs["matrix"] = map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"generators"},
		"description": "Every element of the first generator combined with every element of the second.",
		"properties": map[string]any{
			"generators": map[string]any{"type": "array", "minItems": 2, "maxItems": 2, "items": map[string]any{"$ref": "#/$defs/generator"}},
		},
	}
	defs["template"] = map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"metadata", "spec"},
		"description": "An App's metadata and spec; {{name}} in a string value is replaced by the element's parameter.",
		"properties": map[string]any{
			"metadata": map[string]any{"$ref": "#/$defs/metadata"},
			"spec":     map[string]any{"$ref": "#/$defs/appSpec"},
		},
	}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                "appfleet AppSet",
		"description":          "Generates apps from one template, one per element of its generators; each is labelled appfleet.dev/appset.",
		"type":                 "object",
		"required":             []any{"apiVersion", "kind", "metadata", "spec"},
		"additionalProperties": false,
		"properties": map[string]any{
			"apiVersion": map[string]any{"const": "appfleet.dev/v1alpha1", "description": "The manifest format version."},
			"kind":       map[string]any{"const": "AppSet"},
			"metadata":   map[string]any{"$ref": "#/$defs/setMetadata"},
			"spec":       map[string]any{"$ref": "#/$defs/appSetSpec"},
		},
		"$defs": defs,
	}
}

// update rewrites derived schemas (go test ./schemas -update).
var update = flag.Bool("update", false, "rewrite appset.schema.json from app.schema.json")

// TestSchemas_AppSetFollowsApp keeps appset.schema.json in step with app.schema.json; -update rewrites it.
func TestSchemas_AppSetFollowsApp(t *testing.T) {
	want := appSetSchema(t)
	if *update {
		b, err := json.MarshalIndent(want, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("appset.schema.json", append(b, '\n'), 0o644))
	}
	got := readSchema(t, "appset.schema.json")
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	gotJSON, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(wantJSON), string(gotJSON), "appset.schema.json is derived from app.schema.json; run go test ./schemas -update")
}
