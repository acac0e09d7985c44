package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/appfleet/appfleet/spec"
)

// List requests: their parameters parsed and checked against a collection's fields, before any SQL.

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

// key identifies the list: two lists of a collection with the same key are the same records.
func (lq ListQuery) key() string {
	b := make([]byte, 0, 32)
	b = append(b, "list:"...)
	b = strconv.AppendInt(b, int64(lq.Limit), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(lq.Offset), 10)
	for _, s := range lq.Sort {
		b = append(b, ":s"...)
		b = strconv.AppendBool(b, s.Desc)
		b = strconv.AppendQuote(b, s.Field)
	}
	for _, f := range lq.Filters {
		b = append(b, ":f"...)
		b = strconv.AppendQuote(b, f.Field)
		b = fmt.Appendf(b, "%T%#v", f.Value, f.Value)
	}
	return string(b)
}

// Filter is one equality condition.
type Filter struct {
	Field string
	Value any
}

// Param is one parameter of a list request's query, unescaped, in the order the request gives them.
type Param struct {
	Key, Value string
}

// ParseList reads a list request's parameters: limit, offset, sort=-field,field and field=value
// filters. Each parameter may be given once. Every problem is reported, sorted by parameter.
func (c *Collection) ParseList(params []Param) (ListQuery, error) {
	lq := ListQuery{Limit: DefaultLimit}
	var probs []FieldError
	for i, p := range params {
		k, v := p.Key, p.Value
		if slices.ContainsFunc(params[:i], func(q Param) bool { return q.Key == k }) {
			probs = append(probs, FieldError{k, "give it once"})
			continue
		}
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
			if c.fieldType(k) == "" {
				probs = append(probs, FieldError{k, "unknown field (list takes limit, offset, sort and field=value filters)"})
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
		sortProblems(probs)
		return ListQuery{}, &ValidationError{probs}
	}
	// One order of filters, whatever the request's: the statement cache keys on the SQL text.
	slices.SortFunc(lq.Filters, func(a, b Filter) int { return strings.Compare(a.Field, b.Field) })
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
