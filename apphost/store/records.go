package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
		if _, ok := c.fields[k]; !ok {
			probs = append(probs, unknownField(k))
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

// unknownField is the problem with an input key that is not one of the collection's fields.
func unknownField(k string) FieldError {
	if slices.Contains(spec.ReservedFieldNames, k) {
		return FieldError{k, "is read-only: the runtime assigns it"}
	}
	return FieldError{k, "unknown field"}
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
			probs = append(probs, unknownField(k))
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
	key := func() string { return string(strconv.AppendInt([]byte("get:"), id, 10)) }
	return c.readKept(conn, key, dst, func(dst []byte) ([]byte, error) {
		w := rowWriter{c: c, dst: dst}
		err := conn.Query(boundedCtx{ctx}, c.getSQL, []any{id}, w.add)
		if err == nil && w.rows == 0 {
			err = ErrNotFound
		}
		return w.dst, err
	})
}

// rowWriter appends the rows it is given to dst as JSON objects, separated by commas.
type rowWriter struct {
	c    *Collection
	dst  []byte
	rows int
}

func (w *rowWriter) add(row []any) (err error) {
	if w.rows > 0 {
		w.dst = append(w.dst, ',')
	}
	w.rows++
	w.dst, err = w.c.appendRow(w.dst, row)
	return err
}

// readKept appends to dst the answer conn kept for key (readCache), or else what read appends, which
// conn may then keep. key is only called when conn keeps answers.
func (c *Collection) readKept(conn Conn, key func() string, dst []byte, read func(dst []byte) ([]byte, error)) ([]byte, error) {
	rc, ok := conn.(readCache)
	if !ok || !rc.keepsReads() {
		return read(dst)
	}
	k := key()
	if b, ok := rc.cachedRead(c, k); ok {
		return append(dst, b...), nil
	}
	start := len(dst)
	dst, err := read(dst)
	if err == nil {
		rc.keepRead(c, k, dst[start:])
	}
	return dst, err
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
	return c.readKept(conn, lq.key, dst, func(dst []byte) ([]byte, error) {
		w := rowWriter{c: c, dst: append(dst, `{"items":[`...)}
		total, err := c.list(ctx, conn, lq, w.add)
		dst = w.dst
		if err != nil {
			return dst, err
		}
		dst = append(dst, `],"total":`...)
		dst = strconv.AppendInt(dst, total, 10)
		return append(dst, '}'), nil
	})
}

// list counts the records that match the filters and calls fn for each row of the page, both within
// one ReadTx so that total and the page agree even while writes go on. The count of a whole
// collection comes from the connection's memory when it can (countCache).
func (c *Collection) list(ctx context.Context, conn Conn, lq ListQuery, fn func(row []any) error) (int64, error) {
	countQ, pageQ, args := c.countAllSQL, c.pageSQL, []any(nil)
	whole := len(lq.Filters) == 0 && len(lq.Sort) == 0
	if !whole {
		countQ, pageQ, args = c.listSQL(lq)
	}
	cache, _ := conn.(countCache)
	pageCtx := ctx
	if whole && lq.Offset <= boundedOffset {
		pageCtx = boundedCtx{ctx}
	}
	var total int64
	err := ReadTx(ctx, conn, func() error {
		cached := false
		if whole && cache != nil {
			total, cached = cache.cachedCount(countQ)
		}
		if !cached {
			err := conn.Query(ctx, countQ, args, func(row []any) error {
				total = asInt(row[0])
				return nil
			})
			if err != nil {
				return err
			}
			if whole && cache != nil {
				cache.keepCount(countQ, total)
			}
		}
		if total <= int64(lq.Offset) || lq.Limit == 0 {
			return nil
		}
		return conn.Query(pageCtx, pageQ, append(args, lq.Limit, lq.Offset), fn)
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// boundedOffset is the largest offset at which a page in id order is read without being ready to
// interrupt it (boundedCtx): skipping that many rows takes well under a millisecond.
const boundedOffset = 10000

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
