package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/appfleet/appfleet/spec"
)

// Input coercion: values from JSON (decoded with UseNumber), query filters and manifest defaults,
// turned into what a dialect stores for a field, with a reason that speaks of the field when they do not fit.

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
