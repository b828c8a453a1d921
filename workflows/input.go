package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// amazonOrderIDPattern is Amazon's order id form, 3-7-7 digits.
var amazonOrderIDPattern = regexp.MustCompile(`^[0-9]{3}-[0-9]{7}-[0-9]{7}$`)

// OrderInput is OrderLifecycle's input: {"amazonOrderId": "..."}.
//
// Decoding never fails: a payload that is not the expected JSON is kept as a
// problem and reported by Validate, so a bad `temporal workflow start --input`
// fails the workflow at once with a clear error instead of failing workflow tasks
// forever.
type OrderInput struct {
	AmazonOrderID string `json:"amazonOrderId"`
	problem       error
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *OrderInput) UnmarshalJSON(b []byte) error {
	var v struct {
		AmazonOrderID *string `json:"amazonOrderId"`
	}
	if err := decodeStrict(b, &v); err != nil {
		in.problem = err
		return nil
	}
	if v.AmazonOrderID != nil {
		in.AmazonOrderID = *v.AmazonOrderID
	}
	return nil
}

// Validate names the first thing wrong with the input.
func (in OrderInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf("OrderLifecycle input: %w; want {\"amazonOrderId\": \"123-1234567-1234567\"}", in.problem)
	}
	if in.AmazonOrderID == "" {
		return errors.New(`OrderLifecycle input: field "amazonOrderId" is missing or empty; want {"amazonOrderId": "123-1234567-1234567"}`)
	}
	if !amazonOrderIDPattern.MatchString(in.AmazonOrderID) {
		return errors.New(`OrderLifecycle input: field "amazonOrderId" is not an Amazon order id (3-7-7 digits, e.g. 205-1234567-7654321)`)
	}
	return nil
}

// decodeStrict decodes one JSON value, rejecting unknown fields and trailing data.
// Its errors name fields and types, never values (values may be personal data).
func decodeStrict(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 || string(bytes.TrimSpace(b)) == "null" {
		return errors.New("no payload; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err, v)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func describeJSONError(err error, v any) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Errorf("payload must be a JSON object, not a JSON %s", typeErr.Value)
		}
		return fmt.Errorf("field %q must be a %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("malformed JSON at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The unknown name is not echoed: operators have typed personal data
		// where a field name belongs, and this text reaches logs.
		return fmt.Errorf("unknown field; the fields are: %s", strings.Join(jsonFields(v), ", "))
	case strings.Contains(err.Error(), "parsing time"):
		return errors.New("a time field is not RFC 3339 (e.g. 2026-11-27T10:00:00Z)")
	default:
		return errors.New("malformed JSON payload")
	}
}

func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "string"):
		return "string"
	case strings.Contains(goType, "time.Time"):
		return "RFC 3339 time string"
	default:
		return goType
	}
}

// Signal payloads. Each decodes leniently like OrderInput; Validate names the problem.

// DeliveredSignal reports the order's delivery.
type DeliveredSignal struct {
	DeliveredAt time.Time `json:"deliveredAt"`
	problem     error
}

// HoldSignal places a legal hold: the purge waits until released.
type HoldSignal struct {
	Reason string `json:"reason"` // one of HoldReasons
	By     string `json:"by"`     // an operator identifier
	// Note is optional free text, sealed with the order's PII and erased with it.
	Note    string `json:"note,omitempty"`
	problem error
}

// ReleaseSignal releases the legal holds.
type ReleaseSignal struct {
	By      string `json:"by"`
	Note    string `json:"note,omitempty"`
	problem error
}

// PurgeNowSignal asks for the purge at once (Amazon's or the buyer's request).
type PurgeNowSignal struct {
	Reason  string `json:"reason"` // one of PurgeNowReasons
	By      string `json:"by"`
	Note    string `json:"note,omitempty"`
	problem error
}

// CancelledSignal reports the order's cancellation: its PII is purged at once.
type CancelledSignal struct {
	Reason  string `json:"reason"`
	problem error
}

func (s *DeliveredSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		DeliveredAt time.Time `json:"deliveredAt"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	s.DeliveredAt = v.DeliveredAt
	return nil
}

// Validate names the first thing wrong with the signal.
func (s DeliveredSignal) Validate() error {
	if s.problem != nil {
		return s.problem
	}
	if s.DeliveredAt.IsZero() {
		return errors.New(`field "deliveredAt" is required (RFC 3339, e.g. 2026-11-27T10:00:00Z)`)
	}
	return nil
}

func (s *HoldSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		Reason string `json:"reason"`
		By     string `json:"by"`
		Note   string `json:"note"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	s.Reason, s.By, s.Note = v.Reason, v.By, v.Note
	return nil
}

// Validate names the first thing wrong with the signal.
func (s HoldSignal) Validate() error { return firstProblem(s.problem, "reason", s.Reason, "by", s.By) }

// CheckCodes names the first field that is not a code of its list, an operator
// identifier or within its length limit.
func (s HoldSignal) CheckCodes() error {
	return errors.Join(checkCode("reason", s.Reason, HoldReasons), checkBy(s.By), checkNote(s.Note))
}

func (s *ReleaseSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		By   string `json:"by"`
		Note string `json:"note"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	s.By, s.Note = v.By, v.Note
	return nil
}

// Validate names the first thing wrong with the signal.
func (s ReleaseSignal) Validate() error { return firstProblem(s.problem, "by", s.By) }

// CheckCodes: see HoldSignal.CheckCodes.
func (s ReleaseSignal) CheckCodes() error { return errors.Join(checkBy(s.By), checkNote(s.Note)) }

func (s *PurgeNowSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		Reason string `json:"reason"`
		By     string `json:"by"`
		Note   string `json:"note"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	s.Reason, s.By, s.Note = v.Reason, v.By, v.Note
	return nil
}

// Validate names the first thing wrong with the signal.
func (s PurgeNowSignal) Validate() error {
	return firstProblem(s.problem, "reason", s.Reason, "by", s.By)
}

// CheckCodes: see HoldSignal.CheckCodes.
func (s PurgeNowSignal) CheckCodes() error {
	return errors.Join(checkCode("reason", s.Reason, PurgeNowReasons), checkBy(s.By), checkNote(s.Note))
}

func (s *CancelledSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		Reason string `json:"reason"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	s.Reason = v.Reason
	return nil
}

// Validate names the first thing wrong with the signal. The reason is optional:
// OrderSync reports cancellations Amazon gives no reason for.
func (s CancelledSignal) Validate() error { return s.problem }

// CheckCodes: the reason, when given, is one of CancelReasons.
func (s CancelledSignal) CheckCodes() error {
	if s.Reason == "" {
		return nil
	}
	return checkCode("reason", s.Reason, CancelReasons)
}

// firstProblem returns the decoding problem, else names the first empty required
// field of the (name, value) pairs.
func firstProblem(problem error, pairs ...string) error {
	if problem != nil {
		return problem
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return fmt.Errorf("field %q is required", pairs[i])
		}
	}
	return nil
}

// jsonFields lists the JSON field names of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := 0; t.Kind() == reflect.Struct && i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" {
			names = append(names, strconv.Quote(name))
		}
	}
	return names
}
