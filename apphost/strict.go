package apphost

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/appfleet/appfleet/apphost/api"
)

// HeaderRequestID carries the id of a request that failed inside the runtime: the answer says only that
// id, the runtime's log says what happened.
const HeaderRequestID = "X-Request-Id"

// readStrictJSON reads a JSON body of at most limit bytes (an *http.MaxBytesError past it) and refuses
// what encoding/json would let through silently: invalid UTF-8 (it would become U+FFFD) and an object
// that names a key twice (the last would win). The error says what is wrong for people.
func readStrictJSON(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err
	}
	return b, checkStrictJSON(b)
}

// decodeStrict decodes b, a body readStrictJSON read, into v: unknown fields are refused and b must be
// one JSON value, nothing after it.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, after := dec.Token(); after != io.EOF {
		return errors.New("the body must be one JSON object; more follows it")
	}
	return nil
}

// checkStrictJSON checks a body that should be one JSON value; see readStrictJSON.
func checkStrictJSON(b []byte) error {
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return fmt.Errorf("the body is not valid UTF-8 (at byte %d)", i)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return jsonProblem(err)
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].isObject && stack[top].wantKey {
			if key, ok := tok.(string); ok {
				if stack[top].keys[key] {
					return fmt.Errorf("the key %q is given twice in one object", key)
				}
				stack[top].keys[key] = true
				stack[top].wantKey = false
				continue
			}
		}
		if top >= 0 && stack[top].isObject {
			stack[top].wantKey = true // a value was read: a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, isObject: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			if top > 0 && stack[top-1].isObject {
				stack[top-1].wantKey = true
			}
		}
	}
}

// jsonProblem says in words what encoding/json found wrong, naming the field where it knows it.
func jsonProblem(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("the body is not valid JSON (at byte %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("the body is not valid JSON: it ends too early")
	case errors.As(err, &te):
		where := "the body"
		if te.Field != "" {
			where = te.Field
		}
		return fmt.Errorf("%s: want %s, got %s", where, kindWord(te.Type), valueWord(te.Value))
	}
	var msg string
	if _, after, ok := bytes.Cut([]byte(err.Error()), []byte("json: unknown field ")); ok {
		msg = "unknown field " + string(after)
	}
	if msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("the body is not valid: %s", bytes.TrimPrefix([]byte(err.Error()), []byte("json: ")))
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

func valueWord(v string) string {
	switch v {
	case "object", "array", "string", "bool", "number":
		if v == "bool" {
			return "true or false"
		}
		if v == "object" || v == "array" {
			return "an " + v
		}
		return "a " + v
	}
	return v
}

// statusWriter is the ResponseWriter of a management request: it keeps the error behind a 500 that
// writeInternal answered, for ServeHTTP's log line.
type statusWriter struct {
	http.ResponseWriter
	internal  error
	requestID string
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// newRequestID makes the id an internal error is answered and logged with.
func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeInternal answers 500 for an error inside the runtime without showing it (it may hold SQL or
// paths): the answer carries a request id, and the error is kept on w for the caller's log line
// (serveApp for app traffic, ServeHTTP for the management API).
func writeInternal(w http.ResponseWriter, err error) {
	id := newRequestID()
	switch sw := w.(type) {
	case *appWriter:
		sw.internal, sw.requestID = err, id
	case *statusWriter:
		sw.internal, sw.requestID = err, id
	}
	w.Header().Set(HeaderRequestID, id)
	writeError(w, http.StatusInternalServerError, api.CodeInternal,
		"internal error; the runtime's log has the details under request id "+strconv.Quote(id), nil)
}
