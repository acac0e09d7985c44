package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appfleet/appfleet/spec"
)

// timeLayout is how datetimes are stored in SQLite and written in JSON: UTC, fixed width, microseconds
// (PostgreSQL's precision), so text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// List bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// ErrNotFound is returned when a record id does not exist.
var ErrNotFound = errors.New("record not found")

// FieldError is one problem with an input, naming its field.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) String() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// ValidationError lists every problem with an input.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "; ")
}

// Details is one line per problem.
func (e *ValidationError) Details() []string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return lines
}

// Collection is a collection compiled for the data API: its fields by name and the SQL it reuses.
type Collection struct {
	spec.Collection
	fields     map[string]spec.Field
	selectList string // id, createdAt, updatedAt, fields... in the dialect
	columns    []string
	types      []string
	kinds      []kind   // types, resolved for encoding
	keyJSON    [][]byte // `{"id":`, `,"createdAt":`... pre-encoded
	dialect    Dialect

	// The SQL of the common reads, built once: the statement caches key on the text, and building it
	// per request would cost as much as looking it up.
	getSQL, countAllSQL, pageSQL string
}

// Compile prepares a validated data model for a dialect.
func Compile(d Dialect, cols []spec.Collection) map[string]*Collection {
	out := make(map[string]*Collection, len(cols))
	for _, c := range cols {
		cc := &Collection{Collection: c, fields: make(map[string]spec.Field, len(c.Fields)), dialect: d}
		cc.columns = []string{"id", "createdAt", "updatedAt"}
		cc.types = []string{spec.TypeInteger, spec.TypeDatetime, spec.TypeDatetime}
		for _, f := range c.Fields {
			cc.fields[f.Name] = f
			cc.columns = append(cc.columns, f.Name)
			cc.types = append(cc.types, f.Type)
		}
		sel := make([]string, len(cc.columns))
		for i, name := range cc.columns {
			sel[i] = d.selectColumn(name, cc.types[i])
		}
		cc.selectList = strings.Join(sel, ", ")
		cc.kinds = make([]kind, len(cc.types))
		for i, t := range cc.types {
			cc.kinds[i] = kindOf(t)
		}
		cc.keyJSON = keyPrefixes(cc.columns)
		cc.getSQL = "SELECT " + cc.selectList + " FROM " + quote(c.Name) + " WHERE id = " + d.Placeholder(1)
		cc.countAllSQL, cc.pageSQL, _ = cc.listSQL(ListQuery{})
		out[c.Name] = cc
	}
	return out
}

// Record is one row as the data API shows it: id, createdAt, updatedAt, then the fields in declared order.
type Record struct {
	keys   []string
	values []any
}

// Get returns a value of the record by field name.
func (r Record) Get(name string) (any, bool) {
	i := slices.Index(r.keys, name)
	if i < 0 {
		return nil, false
	}
	return r.values[i], true
}

// MarshalJSON writes the fields in order.
func (r Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// AppendJSON appends the record as a JSON object, its fields in order.
func (r Record) AppendJSON(dst []byte) ([]byte, error) {
	var err error
	for i, k := range r.keys {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		dst = appendString(append(dst, sep), k)
		dst = append(dst, ':')
		if dst, err = appendDecoded(dst, r.values[i]); err != nil {
			return nil, err
		}
	}
	if len(r.keys) == 0 {
		dst = append(dst, '{')
	}
	return append(dst, '}'), nil
}

func (c *Collection) scan(row []any) (Record, error) {
	r := Record{keys: c.columns, values: make([]any, len(row))}
	for i, v := range row {
		dv, err := decode(c.types[i], v)
		if err != nil {
			return Record{}, fmt.Errorf("field %q: %w", c.columns[i], err)
		}
		r.values[i] = dv
	}
	return r, nil
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func (c *Collection) timeArg(t time.Time) any {
	if c.dialect == Postgres {
		return t
	}
	return t.Format(timeLayout)
}

// Create validates input (a JSON object decoded with UseNumber) and inserts it.
func (c *Collection) Create(ctx context.Context, conn Conn, input map[string]any) (Record, error) {
	d := c.dialect
	var probs []FieldError
	for k := range input {
		if _, ok := c.fields[k]; !ok && !slices.Contains(spec.ReservedFieldNames, k) {
			probs = append(probs, FieldError{k, "unknown field"})
		}
	}
	ts := c.timeArg(now())
	cols := []string{quote("createdAt"), quote("updatedAt")}
	ph := []string{d.Placeholder(1), d.Placeholder(2)}
	args := []any{ts, ts}
	for _, f := range c.Fields {
		raw, present := input[f.Name]
		if !present {
			raw = f.Default
		}
		if raw == nil {
			if f.Required {
				probs = append(probs, FieldError{f.Name, "is required"})
				continue
			}
		}
		v, err := coerce(d, f, raw)
		if err != nil {
			probs = append(probs, FieldError{f.Name, err.Error()})
			continue
		}
		cols = append(cols, quote(f.Name))
		args = append(args, v)
		ph = append(ph, d.Placeholder(len(args))+d.bindCast(f.Type))
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return Record{}, &ValidationError{probs}
	}
	q := "INSERT INTO " + quote(c.Name) + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ") RETURNING " + c.selectList
	return c.one(ctx, conn, q, args)
}

// Update applies a partial input (fields absent are kept; null clears a field that is not required).
func (c *Collection) Update(ctx context.Context, conn Conn, id int64, input map[string]any) (Record, error) {
	d := c.dialect
	var probs []FieldError
	sets := []string{quote("updatedAt") + " = " + d.Placeholder(1)}
	args := []any{c.timeArg(now())}
	keys := make([]string, 0, len(input))
	for k := range input {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := c.fields[k]
		if !ok {
			if !slices.Contains(spec.ReservedFieldNames, k) {
				probs = append(probs, FieldError{k, "unknown field"})
			}
			continue
		}
		raw := input[k]
		if raw == nil && f.Required {
			probs = append(probs, FieldError{k, "is required and cannot be null"})
			continue
		}
		v, err := coerce(d, f, raw)
		if err != nil {
			probs = append(probs, FieldError{k, err.Error()})
			continue
		}
		args = append(args, v)
		sets = append(sets, quote(k)+" = "+d.Placeholder(len(args))+d.bindCast(f.Type))
	}
	if len(probs) > 0 {
		return Record{}, &ValidationError{probs}
	}
	args = append(args, id)
	q := "UPDATE " + quote(c.Name) + " SET " + strings.Join(sets, ", ") + " WHERE id = " + d.Placeholder(len(args)) + " RETURNING " + c.selectList
	return c.one(ctx, conn, q, args)
}

// Get reads one record.
func (c *Collection) Get(ctx context.Context, conn Conn, id int64) (Record, error) {
	return c.one(ctx, conn, c.getSQL, []any{id})
}

// GetJSON appends one record as a JSON object to dst, written straight from the stored row.
func (c *Collection) GetJSON(ctx context.Context, conn Conn, id int64, dst []byte) ([]byte, error) {
	found := false
	err := conn.Query(ctx, c.getSQL, []any{id}, func(row []any) (err error) {
		found = true
		dst, err = c.appendRow(dst, row)
		return err
	})
	if err != nil {
		return dst, err
	}
	if !found {
		return dst, ErrNotFound
	}
	return dst, nil
}

// Delete removes one record.
func (c *Collection) Delete(ctx context.Context, conn Conn, id int64) error {
	n, err := conn.Exec(ctx, "DELETE FROM "+quote(c.Name)+" WHERE id = "+c.dialect.Placeholder(1), id)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (c *Collection) one(ctx context.Context, conn Conn, q string, args []any) (Record, error) {
	var rec Record
	found := false
	err := conn.Query(ctx, q, args, func(row []any) error {
		r, err := c.scan(row)
		rec, found = r, true
		return err
	})
	if err != nil {
		if _, field, ok := uniqueViolation(c.dialect, err); ok {
			for _, f := range c.Fields {
				if field == uniqueIndexName(c.Name, f.Name) || field == legacyUniqueIndexName(c.Name, f.Name) {
					field = f.Name // PostgreSQL names the index, not the column
				}
			}
			return Record{}, &UniqueError{Collection: c.Name, Field: field}
		}
		return Record{}, err
	}
	if !found {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// SortKey orders a list by one column.
type SortKey struct {
	Field string
	Desc  bool
}

// ListQuery is a parsed list request.
type ListQuery struct {
	Limit, Offset int
	Sort          []SortKey
	Filters       []Filter
}

// Filter is one equality condition.
type Filter struct {
	Field string
	Value any
}

// ParseList reads ?limit&offset&sort=-field,field&field=value.
func (c *Collection) ParseList(q url.Values) (ListQuery, error) {
	lq := ListQuery{Limit: DefaultLimit}
	var probs []FieldError
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := q.Get(k)
		switch k {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > MaxLimit {
				probs = append(probs, FieldError{"limit", fmt.Sprintf("want a whole number from 0 to %d, got %q", MaxLimit, v)})
				continue
			}
			lq.Limit = n
		case "offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				probs = append(probs, FieldError{"offset", fmt.Sprintf("want a whole number of at least 0, got %q", v)})
				continue
			}
			lq.Offset = n
		case "sort":
			for _, s := range strings.Split(v, ",") {
				s = strings.TrimSpace(s)
				key := SortKey{Field: s}
				if strings.HasPrefix(s, "-") {
					key = SortKey{Field: s[1:], Desc: true}
				} else if strings.HasPrefix(s, "+") {
					key.Field = s[1:]
				}
				if c.fieldType(key.Field) == "" {
					probs = append(probs, FieldError{"sort", fmt.Sprintf("unknown field %q", key.Field)})
					continue
				}
				lq.Sort = append(lq.Sort, key)
			}
		default:
			typ := c.fieldType(k)
			if typ == "" {
				probs = append(probs, FieldError{k, "unknown field (list takes limit, offset, sort and field=value filters)"})
				continue
			}
			if len(q[k]) > 1 {
				probs = append(probs, FieldError{k, "give each filter once"})
				continue
			}
			val, err := parseFilter(c.dialect, c.field(k), v)
			if err != nil {
				probs = append(probs, FieldError{k, err.Error()})
				continue
			}
			lq.Filters = append(lq.Filters, Filter{Field: k, Value: val})
		}
	}
	if len(probs) > 0 {
		return ListQuery{}, &ValidationError{probs}
	}
	return lq, nil
}

func (c *Collection) field(name string) spec.Field {
	if f, ok := c.fields[name]; ok {
		return f
	}
	return spec.Field{Name: name, Type: c.fieldType(name)}
}

func (c *Collection) fieldType(name string) string {
	switch name {
	case "id":
		return spec.TypeInteger
	case "createdAt", "updatedAt":
		return spec.TypeDatetime
	}
	return c.fields[name].Type
}

// List returns one page of records and the number of records that match the filters.
func (c *Collection) List(ctx context.Context, conn Conn, lq ListQuery) ([]Record, int64, error) {
	var items []Record
	total, err := c.list(ctx, conn, lq, func(row []any) error {
		r, err := c.scan(row)
		if err != nil {
			return err
		}
		items = append(items, r)
		return nil
	})
	if items == nil {
		items = []Record{}
	}
	return items, total, err
}

// ListJSON appends one page as the data API answers it, {"items": [...], "total": n}, to dst, written
// straight from the stored rows.
func (c *Collection) ListJSON(ctx context.Context, conn Conn, lq ListQuery, dst []byte) ([]byte, error) {
	dst = append(dst, `{"items":[`...)
	first := true
	total, err := c.list(ctx, conn, lq, func(row []any) (err error) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst, err = c.appendRow(dst, row)
		return err
	})
	if err != nil {
		return dst, err
	}
	dst = append(dst, `],"total":`...)
	dst = strconv.AppendInt(dst, total, 10)
	return append(dst, '}'), nil
}

// list counts the records that match the filters and calls fn for each row of the page, both in one
// read transaction so that total and the page agree even while writes go on.
func (c *Collection) list(ctx context.Context, conn Conn, lq ListQuery, fn func(row []any) error) (int64, error) {
	countQ, pageQ, args := c.countAllSQL, c.pageSQL, []any(nil)
	if len(lq.Filters) > 0 || len(lq.Sort) > 0 {
		countQ, pageQ, args = c.listSQL(lq)
	}
	var total int64
	err := ReadTx(ctx, conn, func() error {
		err := conn.Query(ctx, countQ, args, func(row []any) error {
			total = asInt(row[0])
			return nil
		})
		if err != nil || total <= int64(lq.Offset) || lq.Limit == 0 {
			return err
		}
		return conn.Query(ctx, pageQ, append(args, lq.Limit, lq.Offset), fn)
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// listSQL builds the count and the page query of a list; the page's arguments are those of the
// filters, then limit and offset.
func (c *Collection) listSQL(lq ListQuery) (countQ, pageQ string, args []any) {
	d := c.dialect
	var where []string
	for _, f := range lq.Filters {
		args = append(args, f.Value)
		where = append(where, quote(f.Field)+" = "+d.Placeholder(len(args)))
	}
	w := ""
	if len(where) > 0 {
		w = " WHERE " + strings.Join(where, " AND ")
	}
	order := make([]string, 0, len(lq.Sort)+1)
	hasID := false
	for _, s := range lq.Sort {
		dir := " ASC"
		if s.Desc {
			dir = " DESC"
		}
		order = append(order, quote(s.Field)+dir)
		hasID = hasID || s.Field == "id"
	}
	if !hasID {
		order = append(order, "id ASC") // a stable order, so pages never repeat or skip a record
	}
	countQ = "SELECT COUNT(*) FROM " + quote(c.Name) + w
	pageQ = "SELECT " + c.selectList + " FROM " + quote(c.Name) + w + " ORDER BY " + strings.Join(order, ", ") +
		" LIMIT " + d.Placeholder(len(args)+1) + " OFFSET " + d.Placeholder(len(args)+2)
	return countQ, pageQ, args
}

func sortProblems(p []FieldError) {
	slices.SortFunc(p, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
}

// coerce turns an input value (from JSON decoded with UseNumber, or a manifest default) into what the
// dialect stores for the field. nil stays nil.
func coerce(d Dialect, f spec.Field, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch f.Type {
	case spec.TypeString, spec.TypeText:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", describe(v))
		}
		if strings.ContainsRune(s, 0) {
			return nil, errNUL
		}
		return s, nil
	case spec.TypeEnum:
		s, ok := v.(string)
		if !ok || !slices.Contains(f.Values, s) {
			return nil, fmt.Errorf("want one of %s, got %s", strings.Join(f.Values, ", "), describe(v))
		}
		return s, nil
	case spec.TypeInteger:
		switch n := v.(type) {
		case json.Number:
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
		case float64:
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return int64(n), nil
			}
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		}
		return nil, fmt.Errorf("want a whole number, got %s", describe(v))
	case spec.TypeNumber:
		switch n := v.(type) {
		case json.Number:
			if x, err := n.Float64(); err == nil {
				return x, nil
			}
		case float64:
			return n, nil
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		}
		return nil, fmt.Errorf("want a number, got %s", describe(v))
	case spec.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false, got %s", describe(v))
		}
		return b, nil
	case spec.TypeDatetime:
		var t time.Time
		switch x := v.(type) {
		case string:
			var err error
			t, err = time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 date and time such as 2024-05-01T12:00:00Z, got %q", x)
			}
		case time.Time:
			t = x
		default:
			return nil, fmt.Errorf("want an RFC 3339 date and time, got %s", describe(v))
		}
		t = t.UTC().Truncate(time.Microsecond)
		if d == Postgres {
			return t, nil
		}
		return t.Format(timeLayout), nil
	case spec.TypeJSON:
		if hasNUL(v) {
			return nil, errNUL
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("want JSON: %w", err)
		}
		return string(b), nil
	}
	return nil, fmt.Errorf("unknown type %q", f.Type)
}

// errNUL refuses text holding U+0000, which PostgreSQL cannot store (in text or jsonb); SQLite apps refuse
// it too, so that every app's data can move between the drivers.
var errNUL = errors.New(`must not contain the NUL character (\u0000)`)

// hasNUL reports whether a decoded JSON value holds U+0000 in a string or an object key.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		return slices.ContainsFunc(x, hasNUL)
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

func parseFilter(d Dialect, f spec.Field, s string) (any, error) {
	var v any = s
	switch f.Type {
	case spec.TypeInteger:
		v = json.Number(s)
	case spec.TypeNumber:
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return nil, fmt.Errorf("want a number, got %q", s)
		}
		v = json.Number(s)
	case spec.TypeBoolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", s)
		}
		v = b
	case spec.TypeJSON:
		return nil, errors.New("json fields cannot be filtered")
	}
	return coerce(d, f, v)
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return "the number " + x.String()
	case float64, int, int64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// decode turns a stored value into its JSON form.
func decode(typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case spec.TypeInteger:
		switch n := v.(type) {
		case int64:
			return n, nil
		case int32:
			return int64(n), nil
		case float64:
			return int64(n), nil
		case bool:
			if n {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case spec.TypeNumber:
		switch n := v.(type) {
		case float64:
			return n, nil
		case int64:
			return float64(n), nil
		case float32:
			return float64(n), nil
		}
	case spec.TypeBoolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case int64:
			return b != 0, nil
		}
	case spec.TypeDatetime:
		switch t := v.(type) {
		case time.Time:
			return t.UTC().Format(timeLayout), nil
		case string:
			return t, nil
		case []byte:
			return string(t), nil
		}
	case spec.TypeJSON:
		s := asString(v)
		if !json.Valid([]byte(s)) {
			return nil, errors.New("stored value is not JSON")
		}
		return json.RawMessage(s), nil
	default:
		return asString(v), nil
	}
	return nil, fmt.Errorf("unexpected stored %T for a %s field", v, typ)
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}

func uniqueViolation(d Dialect, err error) (collection, field string, ok bool) {
	if d == Postgres {
		return pgUnique(err)
	}
	return sqliteUnique(err)
}
