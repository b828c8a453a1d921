package spapi

import (
	"encoding/json"
	"reflect"
	"time"
)

// Time is a model date-time (RFC 3339). It decodes JSON strings in RFC 3339
// format (with or without fractional seconds) and null, and encodes as RFC 3339
// in UTC. A malformed value fails decoding with a *json.UnmarshalTypeError whose
// Field names the JSON path; the value itself is never part of the error.
type Time struct {
	time.Time
}

// NewTime wraps t (converted to UTC).
func NewTime(t time.Time) Time {
	if t.IsZero() {
		return Time{}
	}
	return Time{t.UTC()}
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if len(b) < 2 || b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Time]()}
	}
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// Value is deliberately a description, not the text: it may be anything.
		return &json.UnmarshalTypeError{Value: "string (not an RFC 3339 date-time)", Type: reflect.TypeFor[Time]()}
	}
	t.Time = parsed
	return nil
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// jsonKind describes the kind of a JSON value without revealing it.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}
