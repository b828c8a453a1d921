package spapi

import (
	"encoding/json"
	"errors"
	"reflect"
)

// Decimal is the model's Decimal: a number kept as its exact decimal text
// (e.g. "12.34"), never as a float.
type Decimal string

// ErrNotDecimal is returned by Decimal.Minor for text that is not a plain
// decimal with at most two decimal places. It never carries the text itself.
var ErrNotDecimal = errors.New("spapi: amount is not a decimal with at most 2 decimal places")

// Minor returns the amount in minor units (hundredths: pence for GBP), exactly:
// "12.34" is 1234, "1.5" is 150, "-0.05" is -5, "7" is 700. Accepted text is
// an optional '-', one or more digits, and optionally '.' followed by one or
// two digits. Anything else (exponents, a bare sign, more than two places,
// spaces, overflow of int64) returns ErrNotDecimal.
func (d Decimal) Minor() (int64, error) {
	s := string(d)
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg = true
		s = s[1:]
	}
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			if frac == "" {
				return 0, ErrNotDecimal
			}
			break
		}
	}
	if intPart == "" || len(frac) > 2 {
		return 0, ErrNotDecimal
	}
	for len(frac) < 2 {
		frac += "0"
	}
	const maxInt64 = 1<<63 - 1
	var v uint64
	for _, c := range []byte(intPart + frac) {
		if c < '0' || c > '9' {
			return 0, ErrNotDecimal
		}
		if v > (maxInt64-uint64(c-'0'))/10 {
			return 0, ErrNotDecimal
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// UnmarshalJSON accepts a JSON string (as the model says) and, leniently, a
// JSON number, keeping its exact text. Other kinds fail with a
// *json.UnmarshalTypeError naming the path but not the value.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[Decimal]()}
		}
		*d = Decimal(s)
		return nil
	}
	if jsonKind(b) == "number" {
		*d = Decimal(b)
		return nil
	}
	if string(b) == "null" {
		*d = ""
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Decimal]()}
}

// MinorToDecimal formats an amount in minor units as a two-place Decimal
// (1234 -> "12.34", -5 -> "-0.05").
func MinorToDecimal(minor int64) Decimal {
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = uint64(-minor)
	}
	whole, frac := u/100, u%100
	b := make([]byte, 0, 24)
	if neg {
		b = append(b, '-')
	}
	b = appendUint(b, whole)
	b = append(b, '.', byte('0'+frac/10), byte('0'+frac%10))
	return Decimal(b)
}

func appendUint(b []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
