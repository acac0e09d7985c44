package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/appfleet/appfleet/spec"
)

// The data API writes records straight from stored values into one buffer: keys are encoded once per
// collection and values appended with strconv and appendString. Going through encoding/json instead
// (a json.Marshal per value, then a re-scan of every MarshalJSON result) cost a third of the CPU of
// serving a page. The output is what encoding/json writes for the same values, byte for byte, except
// that a json field is written as stored (compacted, but without encoding/json's escaping of <, > and
// & inside it), which means the same.

// kind is a column's field type, resolved once per collection so that encoding a row compares no strings.
type kind uint8

const (
	kindText kind = iota // string, text, enum
	kindInteger
	kindNumber
	kindBoolean
	kindDatetime
	kindJSON
)

func kindOf(fieldType string) kind {
	switch fieldType {
	case spec.TypeInteger:
		return kindInteger
	case spec.TypeNumber:
		return kindNumber
	case spec.TypeBoolean:
		return kindBoolean
	case spec.TypeDatetime:
		return kindDatetime
	case spec.TypeJSON:
		return kindJSON
	}
	return kindText
}

// appendRow writes one stored row (the columns of selectList, as the driver returned them) as a record
// object.
func (c *Collection) appendRow(dst []byte, row []any) ([]byte, error) {
	var err error
	for i, v := range row {
		dst = append(dst, c.keyJSON[i]...)
		if dst, err = appendStored(dst, c.kinds[i], c.types[i], v); err != nil {
			return dst, fmt.Errorf("field %q: %w", c.columns[i], err)
		}
	}
	return append(dst, '}'), nil
}

// keyPrefixes pre-encodes `{"id":`, `,"createdAt":`, ... for a collection's columns.
func keyPrefixes(columns []string) [][]byte {
	out := make([][]byte, len(columns))
	for i, name := range columns {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		b := appendString([]byte{sep}, name)
		out[i] = append(b, ':')
	}
	return out
}

// appendStored writes a stored value of a column as JSON: what decode makes of it, encoded as
// encoding/json would.
func appendStored(dst []byte, k kind, typ string, v any) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	switch k {
	case kindInteger:
		switch n := v.(type) {
		case int64:
			return strconv.AppendInt(dst, n, 10), nil
		case int32:
			return strconv.AppendInt(dst, int64(n), 10), nil
		case float64:
			return strconv.AppendInt(dst, int64(n), 10), nil
		case bool:
			if n {
				return append(dst, '1'), nil
			}
			return append(dst, '0'), nil
		}
	case kindNumber:
		switch n := v.(type) {
		case float64:
			return appendFloat(dst, n)
		case int64:
			return appendFloat(dst, float64(n))
		case float32:
			return appendFloat(dst, float64(n))
		}
	case kindBoolean:
		switch b := v.(type) {
		case bool:
			return strconv.AppendBool(dst, b), nil
		case int64:
			return strconv.AppendBool(dst, b != 0), nil
		}
	case kindDatetime:
		switch t := v.(type) {
		case time.Time:
			// The layout holds no character that needs escaping.
			dst = append(dst, '"')
			dst = t.UTC().AppendFormat(dst, timeLayout)
			return append(dst, '"'), nil
		case string:
			return appendString(dst, t), nil
		case []byte:
			return appendString(dst, t), nil
		}
	case kindJSON:
		return appendRawJSON(dst, v)
	default:
		switch s := v.(type) {
		case string:
			return appendString(dst, s), nil
		case []byte:
			return appendString(dst, s), nil
		}
		return appendString(dst, fmt.Sprint(v)), nil
	}
	return dst, fmt.Errorf("unexpected stored %T for a %s field", v, typ)
}

// appendRawJSON writes a stored json value compacted, refusing one that is not valid JSON so that a
// damaged value can never break the document around it.
func appendRawJSON(dst []byte, v any) ([]byte, error) {
	var src []byte
	switch s := v.(type) {
	case []byte:
		src = s
	case json.RawMessage:
		src = s
	default:
		src = []byte(asString(v))
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, src); err != nil {
		return dst, errors.New("stored value is not JSON")
	}
	return buf.Bytes(), nil
}

// appendDecoded writes a value as decode returns it (the values of a Record).
func appendDecoded(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		return appendFloat(dst, x)
	case bool:
		return strconv.AppendBool(dst, x), nil
	case string:
		return appendString(dst, x), nil
	case json.RawMessage:
		return appendRawJSON(dst, x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendFloat writes f as encoding/json does: shortest representation, exponent form only below 1e-6
// or from 1e21 on, with a one-digit negative exponent not zero-padded. NaN and infinities are not JSON.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, fmt.Errorf("unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// plain marks the ASCII bytes a JSON string carries as they are. Like encoding/json (whose output
// browsers may meet inside HTML), <, > and & are escaped too.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does: control characters, quotes,
// backslashes, <, > and & escaped, U+2028 and U+2029 escaped (JavaScript treats them as line ends),
// and each byte of invalid UTF-8 replaced by U+FFFD.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		r, size := utf8.DecodeRuneInString(string(s[i : i+n])) // at most 4 bytes: no allocation
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
