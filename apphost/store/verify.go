package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

// maxSnapshotProblems bounds the problems VerifySnapshot reports: enough to fix a snapshot, not a flood.
const maxSnapshotProblems = 20

// VerifySnapshot checks that an SQLite snapshot is exactly what the runtime writes for the data model
// cols (the model the snapshot records): its tables, their columns and declared types, the unique
// indexes, and nothing else (no view, trigger, other table or index, no foreign key or hidden column);
// and that every stored value is one the data API could have written (type, required, enum values,
// date format, valid JSON, no NUL). It returns one line per problem, naming the object or field.
func VerifySnapshot(ctx context.Context, c Conn, cols []spec.Collection) ([]string, error) {
	if c.Dialect() != SQLite {
		return nil, fmt.Errorf("a snapshot is an SQLite database")
	}
	if probs := ValidateCollections(cols); len(probs) > 0 {
		return append([]string{"the data model it records is not valid"}, probs...), nil
	}
	v := &verifier{ctx: ctx, c: c}
	v.objects(cols)
	for _, col := range cols {
		v.table(col)
	}
	v.metaKeys()
	if v.err != nil {
		return nil, v.err
	}
	return v.probs, nil
}

type verifier struct {
	ctx   context.Context
	c     Conn
	probs []string
	err   error
}

func (v *verifier) add(format string, args ...any) {
	if len(v.probs) < maxSnapshotProblems {
		v.probs = append(v.probs, fmt.Sprintf(format, args...))
	}
}

// rows runs a query and calls fn for each row, keeping the first error.
func (v *verifier) rows(q string, args []any, fn func(row []any)) {
	if v.err != nil {
		return
	}
	if err := v.c.Query(v.ctx, q, args, func(row []any) error { fn(row); return nil }); err != nil {
		v.err = fmt.Errorf("read snapshot: %w", err)
	}
}

// objects compares the snapshot's schema objects with those the runtime makes.
func (v *verifier) objects(cols []spec.Collection) {
	want := map[string]string{metaTable: "table", "sqlite_sequence": "table", "sqlite_autoindex_" + metaTable + "_1": "index"}
	for _, col := range cols {
		want[col.Name] = "table"
		for _, f := range col.Fields {
			if f.Unique {
				want[uniqueIndexName(col.Name, f.Name)] = "index"
				want[legacyUniqueIndexName(col.Name, f.Name)] = "index"
			}
		}
	}
	seen := map[string]bool{}
	v.rows("SELECT type, name FROM sqlite_master ORDER BY name", nil, func(row []any) {
		typ, name := asString(row[0]), asString(row[1])
		seen[name] = true
		if want[name] != typ {
			v.add("%s %q: the runtime makes no such object", typ, name)
		}
	})
	for _, col := range cols {
		if !seen[col.Name] {
			v.add("collections.%s: the table is missing", col.Name)
		}
	}
}

// table compares one collection's table and checks its values.
func (v *verifier) table(col spec.Collection) {
	path := "collections." + col.Name
	type column struct {
		typ            string
		notNull, isKey bool
		dflt           any
		hidden         int64
	}
	have := map[string]column{}
	v.rows("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?)", []any{col.Name}, func(row []any) {
		have[asString(row[0])] = column{typ: asString(row[1]), notNull: asInt(row[2]) != 0, dflt: row[3], isKey: asInt(row[4]) != 0, hidden: asInt(row[5])}
	})
	if len(have) == 0 {
		return // reported as missing
	}
	ts := SQLite.ColumnType(spec.TypeDatetime)
	want := map[string]column{"id": {typ: "INTEGER", isKey: true}, "createdAt": {typ: ts, notNull: true}, "updatedAt": {typ: ts, notNull: true}}
	for _, f := range col.Fields {
		want[f.Name] = column{typ: SQLite.ColumnType(f.Type)}
	}
	for name, h := range have {
		w, ok := want[name]
		switch {
		case !ok:
			v.add("%s: column %q is not a field of the collection", path, name)
		case !strings.EqualFold(h.typ, w.typ):
			v.add("%s.%s: the column is declared %s, the runtime declares %s", path, name, h.typ, w.typ)
		case h.notNull != w.notNull || h.isKey != w.isKey || h.dflt != nil || h.hidden != 0:
			v.add("%s.%s: the column has constraints, a default or generation the runtime never declares", path, name)
		}
	}
	for name := range want {
		if _, ok := have[name]; !ok {
			v.add("%s.%s: the column is missing", path, name)
		}
	}
	v.rows("SELECT count(*) FROM pragma_foreign_key_list(?)", []any{col.Name}, func(row []any) {
		if asInt(row[0]) > 0 {
			v.add("%s: the table has foreign keys", path)
		}
	})
	v.indexes(col, path)
	v.values(col, path)
}

// indexes checks that each index of the table makes exactly one declared unique field unique.
func (v *verifier) indexes(col spec.Collection, path string) {
	type index struct {
		name           string
		unique, partly bool
	}
	var idx []index
	v.rows("SELECT name, \"unique\", partial FROM pragma_index_list(?)", []any{col.Name}, func(row []any) {
		idx = append(idx, index{asString(row[0]), asInt(row[1]) != 0, asInt(row[2]) != 0})
	})
	for _, ix := range idx {
		var on []string
		v.rows("SELECT name FROM pragma_index_info(?) ORDER BY seqno", []any{ix.name}, func(row []any) { on = append(on, asString(row[0])) })
		ok := ix.unique && !ix.partly && len(on) == 1 && slices.ContainsFunc(col.Fields, func(f spec.Field) bool {
			return f.Unique && f.Name == on[0] && (ix.name == uniqueIndexName(col.Name, f.Name) || ix.name == legacyUniqueIndexName(col.Name, f.Name))
		})
		if !ok {
			v.add("%s: index %q is not the unique index of a unique field", path, ix.name)
		}
	}
}

// datetimeGlob matches a datetime as the runtime stores it (timeLayout).
const datetimeGlob = "'[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'"

// values counts, per column, the records holding a value the data API could not have written.
func (v *verifier) values(col spec.Collection, path string) {
	checks := []struct{ field, valid, want string }{
		{"id", `typeof("id") = 'integer' AND "id" > 0`, "a positive whole number"},
		{"createdAt", `"createdAt" GLOB ` + datetimeGlob, "a UTC date and time as the runtime writes it"},
		{"updatedAt", `"updatedAt" GLOB ` + datetimeGlob, "a UTC date and time as the runtime writes it"},
	}
	for _, f := range col.Fields {
		x := quote(f.Name)
		var valid, want string
		switch f.Type {
		case spec.TypeString, spec.TypeText:
			valid, want = "typeof("+x+") = 'text' AND instr("+x+", char(0)) = 0", "text without NUL"
		case spec.TypeEnum:
			vals := make([]string, len(f.Values))
			for i, s := range f.Values {
				vals[i] = quoteLiteral(s)
			}
			valid, want = "typeof("+x+") = 'text' AND "+x+" IN ("+strings.Join(vals, ", ")+")", "one of "+strings.Join(f.Values, ", ")
		case spec.TypeInteger:
			valid, want = "typeof("+x+") = 'integer'", "a whole number"
		case spec.TypeNumber:
			valid, want = "typeof("+x+") IN ('integer', 'real')", "a number"
		case spec.TypeBoolean:
			valid, want = "typeof("+x+") = 'integer' AND "+x+" IN (0, 1)", "true or false"
		case spec.TypeDatetime:
			valid, want = x+" GLOB "+datetimeGlob, "a UTC date and time as the runtime writes it"
		case spec.TypeJSON:
			valid, want = "typeof("+x+") = 'text' AND json_valid("+x+") AND instr("+x+", char(0)) = 0", "JSON"
		}
		if !f.Required {
			valid = x + " IS NULL OR (" + valid + ")"
		} else {
			want += " (the field is required)"
		}
		checks = append(checks, struct{ field, valid, want string }{f.Name, valid, want})
	}
	for _, ch := range checks {
		v.rows("SELECT count(*) FROM "+quote(col.Name)+" WHERE NOT ("+ch.valid+")", nil, func(row []any) {
			if n := asInt(row[0]); n > 0 {
				v.add("%s.%s: %d records hold a value that is not %s", path, ch.field, n, ch.want)
			}
		})
	}
}

// metaKeys checks that the runtime's own table holds only what the runtime writes there.
func (v *verifier) metaKeys() {
	v.rows("SELECT key FROM "+metaTable+" ORDER BY key", nil, func(row []any) {
		if k := asString(row[0]); k != metaCollections && k != metaFormat && k != metaGeneration {
			v.add("table %s: key %q is not one the runtime writes", metaTable, k)
		}
	})
}
