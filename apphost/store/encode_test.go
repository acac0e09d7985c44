package store

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/appfleet/appfleet/spec"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and backslash \`, "tab\tnewline\nreturn\rff\fbs\b",
		"\x00\x01\x1f\x7f", "<script>&amp;</script>", "é ü 日本語 🎉", "\u2028 and \u2029",
		"bad utf8 \xff\xfe end", "truncated \xe6\x97", "\xed\xa0\x80 surrogate", "ends with \\",
		strings.Repeat("long ascii ", 100),
	}
	for b := 0; b < 256; b++ {
		cases = append(cases, string([]byte{'a', byte(b), 'z'}))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := r.IntN(12)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = rune(r.IntN(0x30000))
		}
		cases = append(cases, string(rs))
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
		if got := appendString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("appendString([]byte(%q)) = %s, encoding/json writes %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil || (utf8.ValidString(s) && back != s) {
			t.Errorf("appendString(%q) reads back as %q, %v", s, back, err)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	cases := []float64{0, math.Copysign(0, -1), 0.1, 0.2 + 0.1, 1, -1, 1.5, 100, 1e20, 1e21, -1e21, 1.2345e21,
		1e-6, 1e-7, 9.99e-7, 1e-9, 1e-10, 5e-324, math.MaxFloat64, -math.MaxFloat64, 1 << 53, 1<<53 + 1,
		123456789.125, 3.141592653589793, 1e100, 1e-100}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		cases = append(cases, math.Float64frombits(r.Uint64()))
	}
	for _, f := range cases {
		want, werr := json.Marshal(f)
		got, gerr := appendFloat(nil, f)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("appendFloat(%v): error %v, encoding/json's %v", f, gerr, werr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Errorf("appendFloat(%v) = %s, encoding/json writes %s", f, got, want)
		}
	}
}

// oldRecordJSON is how a record was encoded before appendRow: decode each value, then json.Marshal it.
func oldRecordJSON(t *testing.T, c *Collection, row []any) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range row {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(c.columns[i])
		b.Write(kb)
		b.WriteByte(':')
		dv, err := decode(c.types[i], v)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(dv)
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func TestAppendRowMatchesEncodingJSON(t *testing.T) {
	fields := []spec.Field{
		{Name: "s", Type: spec.TypeString}, {Name: "txt", Type: spec.TypeText},
		{Name: "e", Type: spec.TypeEnum, Values: []string{"a"}}, {Name: "n", Type: spec.TypeInteger},
		{Name: "x", Type: spec.TypeNumber}, {Name: "b", Type: spec.TypeBoolean},
		{Name: "d", Type: spec.TypeDatetime}, {Name: "j", Type: spec.TypeJSON},
		{Name: "quoted \"key\" <x>", Type: spec.TypeString},
	}
	ts := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.FixedZone("x", 3600))
	rows := [][]any{
		// SQLite's values
		{int64(1), "2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00.000001Z", "a\"b\\c\n\u2028<&>", "ctl \x01\x1f",
			"a", int64(math.MaxInt64), 0.1, int64(1), "2024-01-02T03:04:05.000000Z",
			`{"a": [1, 2.5e21, "x\u2028", null, {"b": true}], "c": "<&>"}`, "é"},
		{int64(2), "2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00.000000Z", nil, nil, nil, int64(math.MinInt64),
			1e21, int64(0), nil, nil, nil},
		{int64(3), "2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00.000000Z", []byte("bytes"), "", "a", int64(-5),
			int64(7), int64(2), []byte("2024-01-02T03:04:05.000000Z"), []byte(`"just a string"`), "x"},
		{int64(4), "2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00.000000Z", "s", "t", "a", float64(42), 1e-7,
			int64(1), nil, "12345678901234567890123", "y"},
		// PostgreSQL's values
		{int64(5), ts, ts, "s", "t", "a", int32(-3), float32(0.1), true, ts, `[]`, "z"},
		{int64(6), ts, ts, "s", "t", "a", int64(9007199254740993), -0.0, false, ts, `  { "k" : "v" }  `, "z"},
	}
	for _, d := range []Dialect{SQLite, Postgres} {
		c := Compile(d, []spec.Collection{{Name: "t", Fields: fields}})["t"]
		for _, row := range rows {
			want, err := oldRecordJSON(t, c, row)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.appendRow(nil, row)
			if err != nil {
				t.Fatalf("appendRow(%v): %v", row, err)
			}
			if !json.Valid(got) {
				t.Fatalf("appendRow wrote invalid JSON: %s", got)
			}
			var g, w any
			decodeNumbers(t, got, &g)
			decodeNumbers(t, want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("appendRow = %s\nencoding/json writes %s", got, want)
			}
			// Key order is part of the answer: ordered maps are not compared above.
			if string(keysOf(t, got)) != string(keysOf(t, want)) {
				t.Errorf("key order %s, want %s", keysOf(t, got), keysOf(t, want))
			}
			// A record decoded from the row writes the same bytes.
			rec, err := c.scan(row)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			var rv any
			decodeNumbers(t, rb, &rv)
			if !reflect.DeepEqual(rv, w) {
				t.Errorf("Record JSON = %s\nencoding/json writes %s", rb, want)
			}
		}
	}
}

func TestAppendRowRefuses(t *testing.T) {
	c := Compile(SQLite, []spec.Collection{{Name: "t", Fields: []spec.Field{
		{Name: "x", Type: spec.TypeNumber}, {Name: "j", Type: spec.TypeJSON}}}})["t"]
	ok := []any{int64(1), "a", "b", 1.0, `{}`}
	for i, bad := range []any{math.NaN(), math.Inf(1), "x"} {
		row := append([]any(nil), ok...)
		if i < 2 {
			row[3] = bad
		} else {
			row[4] = `{"unterminated": `
		}
		if _, err := c.appendRow(nil, row); err == nil {
			t.Errorf("appendRow(%v) wrote no error", row)
		}
	}
}

func decodeNumbers(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // compare numbers by their text, so large integers are exact
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func keysOf(t *testing.T, b []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(string)+"|"...)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
