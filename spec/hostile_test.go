package spec

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aliasBomb is the "billion laughs": nine levels of nine aliases, 9^9 strings once expanded, placed
// where the loader decodes free-form values (Terraform variables).
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec:\n  provider: terraform\n")
	b.WriteString("  terraform:\n    module: mod\n    variables:\n")
	b.WriteString(`      a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	prev := "a"
	for _, c := range "bcdefghi" {
		n := string(c)
		b.WriteString("      " + n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]\n")
		prev = n
	}
	return b.String()
}

// mergeBomb doubles the work of resolving merge keys at every level.
func mergeBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec:\n  provider: terraform\n")
	b.WriteString("  terraform:\n    module: mod\n    variables:\n      m0: &m0 {x: 1}\n")
	for i := 1; i < 40; i++ {
		n := "m" + strconv.Itoa(i)
		p := "*m" + strconv.Itoa(i-1)
		b.WriteString("      " + n + ": &" + n + " {<<: [" + p + ", " + p + "], y" + strconv.Itoa(i) + ": 1}\n")
	}
	b.WriteString("      last: {<<: *m39}\n")
	return b.String()
}

func randomBytes(n int, printable bool) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		if printable {
			b[i] = byte(32 + r.IntN(95))
			if r.IntN(40) == 0 {
				b[i] = '\n'
			}
		} else {
			b[i] = byte(r.IntN(256))
		}
	}
	return b
}

func TestLoad_HostileInput(t *testing.T) {
	valid := envDev + "---\n" + appDoc("crm", "dev")
	tests := []struct {
		name  string
		input []byte
		want  string // the first diagnostic, "" when the input is valid
	}{
		{"alias bomb", []byte(aliasBomb()), `<stdin>:9:32: Environment "dev" expands to more than 250000 YAML nodes`},
		{"merge bomb", []byte(mergeBomb()), `<stdin>:`},
		{"10 MB of garbage", randomBytes(10<<20, false), "<stdin>:1:1: file is larger than 4 MiB; manifests are small text files"},
		{"3 MB of printable garbage", randomBytes(3<<20, true), "<stdin>:1:1: file holds more than 50000 YAML items; manifests are small text files"},
		{"100 KB of random bytes", randomBytes(100<<10, false), "<stdin>:1:"},
		{"deep flow nesting", []byte(strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000)), "<stdin>:1:1: file holds more than 50000 YAML items"},
		{"nesting at the parser's limit", []byte(strings.Repeat("[", 9_999) + strings.Repeat("]", 9_999)), "<stdin>:1:1: invalid document: want a mapping, found a list"},
		{"nesting past the parser's limit", []byte(strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001)), "<stdin>:1:1: invalid YAML: exceeded max depth of 10000"},
		{"deep nesting in free-form values", []byte("apiVersion: appfleet.dev/v1alpha1\nkind: Environment\nmetadata: {name: dev}\nspec:\n  provider: terraform\n  terraform:\n    module: mod\n    variables: {x: " + strings.Repeat("[", 9_000) + strings.Repeat("]", 9_000) + "}\n"), ""},
		{"deep block nesting", []byte("a:\n" + deepBlock(2_000)), "<stdin>:1:1: missing kind in document"},
		{"NUL byte", []byte("apiVersion: appfleet.dev/v1alpha1\nkind: App\x00\n"), "<stdin>:2:10: file contains a NUL byte"},
		{"control character", []byte("apiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata: {name: \"a\a\"}\n"), "<stdin>:3:20: file contains the control character U+0007"},
		{"C1 control character", []byte("kind: App\nmetadata: {name: \"a\u0085\u0090\"}\n"), "<stdin>:2:21: file contains the control character U+0090"},
		{"invalid UTF-8", []byte("apiVersion: appfleet.dev/v1alpha1\nkind: \xff\n"), "<stdin>:2:7: file is not valid UTF-8"},
		{"UTF-16", []byte("\xff\xfea\x00:\x00"), "<stdin>:1:4: file contains a NUL byte"},
		{"tab indentation", []byte("apiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata:\n\tname: crm\n"), "<stdin>:4:1: tab character used for indentation"},
		{"CRLF line endings", []byte(strings.ReplaceAll(valid, "\n", "\r\n")), ""},
		{"byte-order mark", append([]byte("\xef\xbb\xbf"), valid...), ""},
		{"empty file", nil, ""},
		{"only comments", []byte("# nothing here yet\n\n   # still nothing\n"), ""},
		{"only document markers", []byte("---\n---\n...\n"), ""},
		{"scalar document", []byte("just text\n"), "<stdin>:1:1: invalid document: want a mapping, found \"just text\""},
		{"unknown anchor", []byte("apiVersion: appfleet.dev/v1alpha1\nkind: App\nmetadata: *nope\n"), `<stdin>:3:11: invalid YAML: unknown anchor "nope"`},
		{"huge key count", []byte("{" + strings.Repeat("a: b, ", 60_000) + "}"), "<stdin>:1:1: file holds more than 50000 YAML items"},
		{"many documents", []byte(strings.Repeat("---\n{}\n", 40_000)), "<stdin>:1:1: file holds more than 50000 YAML items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			m, diags := Load([]string{"-"}, bytes.NewReader(tt.input))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			require.NotNil(t, m)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v, %d MiB allocated, %d diagnostics", took, alloc>>20, len(diags))

			assert.Less(t, took, time.Second, "hostile input is handled in well under a second")
			assert.Less(t, alloc, uint64(256<<20), "hostile input is handled in bounded memory")
			for _, d := range diags {
				assert.Positive(t, d.Line, "every diagnostic has a position: %s", d)
				assert.Positive(t, d.Column, "every diagnostic has a position: %s", d)
				assert.NotEmpty(t, d.Detail, "every diagnostic hints at the fix: %s", d)
			}
			if tt.want == "" {
				assert.Empty(t, summaries(diags))
				return
			}
			require.NotEmpty(t, diags)
			assert.True(t, diags.HasErrors())
			assert.True(t, strings.HasPrefix(diags[0].String(), tt.want), "got %q, want prefix %q", diags[0].String(), tt.want)
		})
	}
}

func deepBlock(depth int) string {
	var b strings.Builder
	for i := 1; i < depth; i++ {
		b.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	b.WriteString(strings.Repeat(" ", depth) + "a: 1\n")
	return b.String()
}
