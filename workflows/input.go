package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
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
	if err := errors.Join(decodeStrict(b, &v), exactFields(b, &v)); err != nil {
		in.problem = firstError(err)
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

// exactFields names the first field of the JSON object b whose name matches a
// field of v only when case is ignored (encoding/json accepts "BatchSize" for
// "batchSize"; the JSON Schemas do not), or whose value is null (no schema
// allows null; encoding/json would silently keep the zero value). Call it
// after decodeStrict succeeded.
func exactFields(b []byte, v any) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil // decodeStrict reports it
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	known := jsonFields(v)
	for _, k := range names {
		if !slices.Contains(known, strconv.Quote(k)) {
			return fmt.Errorf("unknown field; the fields are: %s", strings.Join(known, ", "))
		}
		if string(bytes.TrimSpace(m[k])) == "null" {
			return fmt.Errorf("field %q must not be null; leave it out instead", k)
		}
	}
	return nil
}

// firstError is the first of the errors joined in err (errors.Join), or err.
func firstError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return j.Unwrap()[0]
	}
	return err
}

// wholeNumber checks an optional JSON integer (decoded as a float64, so that
// 5, 5.0 and 5e0 are all accepted as JSON Schema's "integer" does) against
// [lo, hi] and returns it, or 0 when it is absent.
func wholeNumber(field string, v *float64, lo, hi int64) (int, error) {
	if v == nil {
		return 0, nil
	}
	if *v != math.Trunc(*v) {
		return 0, fmt.Errorf("field %q must be a whole number", field)
	}
	if *v < float64(lo) || *v > float64(hi) {
		return 0, fmt.Errorf("field %q must be from %d to %d", field, lo, hi)
	}
	return int(*v), nil
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
	case strings.Contains(goType, "[]string"):
		return "list of strings"
	case strings.Contains(goType, "float64"), strings.Contains(goType, "int"):
		return "number"
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
	// strict is what only runs that take reasons as codes reject (CheckCodes):
	// a field named in the wrong case, or null.
	strict error
}

// ReleaseSignal releases the legal holds.
type ReleaseSignal struct {
	By      string `json:"by"`
	Note    string `json:"note,omitempty"`
	problem error
	strict  error // see HoldSignal
}

// PurgeNowSignal asks for the purge at once (Amazon's or the buyer's request).
type PurgeNowSignal struct {
	Reason  string `json:"reason"` // one of PurgeNowReasons
	By      string `json:"by"`
	Note    string `json:"note,omitempty"`
	problem error
	strict  error // see HoldSignal
}

// CancelledSignal reports the order's cancellation: its PII is purged at once.
type CancelledSignal struct {
	// Reason is one of CancelReasons, or empty (left out of the JSON) when
	// none was given.
	Reason  string `json:"reason,omitempty"`
	problem error
	strict  error // see HoldSignal; also an empty reason (leave it out instead)
}

func (s *DeliveredSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		DeliveredAt time.Time `json:"deliveredAt"`
	}
	var v plain
	s.problem = firstError(errors.Join(decodeStrict(b, &v), exactFields(b, &v)))
	if s.problem == nil && !validOffset(v.DeliveredAt) {
		s.problem = errors.New(`field "deliveredAt" is not an RFC 3339 time (e.g. 2026-11-27T10:00:00Z)`)
	}
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
	if s.problem == nil {
		s.strict = exactFields(b, &v)
	}
	s.Reason, s.By, s.Note = v.Reason, v.By, v.Note
	return nil
}

// Validate names the first thing wrong with the signal.
func (s HoldSignal) Validate() error { return firstProblem(s.problem, "reason", s.Reason, "by", s.By) }

// CheckCodes names the first field that is not a code of its list, an operator
// identifier or within its length limit.
func (s HoldSignal) CheckCodes() error {
	return errors.Join(s.strict, checkCode("reason", s.Reason, HoldReasons), checkBy(s.By), checkNote(s.Note))
}

func (s *ReleaseSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		By   string `json:"by"`
		Note string `json:"note"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	if s.problem == nil {
		s.strict = exactFields(b, &v)
	}
	s.By, s.Note = v.By, v.Note
	return nil
}

// Validate names the first thing wrong with the signal.
func (s ReleaseSignal) Validate() error { return firstProblem(s.problem, "by", s.By) }

// CheckCodes: see HoldSignal.CheckCodes.
func (s ReleaseSignal) CheckCodes() error {
	return errors.Join(s.strict, checkBy(s.By), checkNote(s.Note))
}

func (s *PurgeNowSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		Reason string `json:"reason"`
		By     string `json:"by"`
		Note   string `json:"note"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	if s.problem == nil {
		s.strict = exactFields(b, &v)
	}
	s.Reason, s.By, s.Note = v.Reason, v.By, v.Note
	return nil
}

// Validate names the first thing wrong with the signal.
func (s PurgeNowSignal) Validate() error {
	return firstProblem(s.problem, "reason", s.Reason, "by", s.By)
}

// CheckCodes: see HoldSignal.CheckCodes.
func (s PurgeNowSignal) CheckCodes() error {
	return errors.Join(s.strict, checkCode("reason", s.Reason, PurgeNowReasons), checkBy(s.By), checkNote(s.Note))
}

func (s *CancelledSignal) UnmarshalJSON(b []byte) error {
	type plain struct {
		Reason *string `json:"reason"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	if s.problem == nil {
		s.strict = exactFields(b, &v)
	}
	if v.Reason != nil {
		s.Reason = *v.Reason
		if s.Reason == "" && s.strict == nil {
			s.strict = errors.New(`field "reason" is empty; leave it out when there is no reason`)
		}
	}
	return nil
}

// Validate names the first thing wrong with the signal. The reason is optional:
// OrderSync reports cancellations Amazon gives no reason for.
func (s CancelledSignal) Validate() error { return s.problem }

// CheckCodes: the reason, when given, is one of CancelReasons.
func (s CancelledSignal) CheckCodes() error {
	if s.strict != nil || s.Reason == "" {
		return s.strict
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

// Inputs of the scheduled workflows. Like OrderInput they decode strictly and
// never fail to decode: a problem is kept and reported by Validate, and the
// workflow fails at once with ErrInvalidInput naming the field (never its
// value). Their JSON Schemas are in schemas/json; TestJSONSchemasAgreeWithTheDecoders
// keeps both in step.

// Limits of the scheduled workflows' inputs (also in their JSON Schemas).
const (
	maxBatchSize  = 1000 // batchSize: rows per activity
	maxMaxBatches = 1000 // maxBatches: activities per run before continue-as-new
	maxCount      = 1<<53 - 1
)

// OrderSyncInput is OrderSync's input: {} from the order-sync schedule, or
// {"name": "..."} for a separate watermark. It is the JSON of
// activities.SyncOrdersInput, which the schedule sends.
type OrderSyncInput struct {
	// Name of the watermark row (default order-sync).
	Name    string `json:"name,omitempty"`
	problem error
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *OrderSyncInput) UnmarshalJSON(b []byte) error {
	var v struct {
		Name *string `json:"name"`
	}
	if err := errors.Join(decodeStrict(b, &v), exactFields(b, &v)); err != nil {
		in.problem = firstError(err)
		return nil
	}
	if v.Name != nil {
		in.Name = *v.Name
	}
	return nil
}

// Validate names the first thing wrong with the input.
func (in OrderSyncInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf(`OrderSync input: %w; want {} or {"name": "order-sync"}`, in.problem)
	}
	return nil
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *TaxRecordSweepInput) UnmarshalJSON(b []byte) error {
	var v struct {
		BatchSize *float64 `json:"batchSize"`
	}
	err := errors.Join(decodeStrict(b, &v), exactFields(b, &v))
	if err == nil {
		in.BatchSize, err = wholeNumber("batchSize", v.BatchSize, 1, maxBatchSize)
	}
	in.problem = firstError(err)
	return nil
}

// Validate names the first thing wrong with the input.
func (in TaxRecordSweepInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf(`TaxRecordSweep input: %w; want {} or {"batchSize": 100}`, in.problem)
	}
	return nil
}

// UnmarshalJSON decodes strictly and records, rather than returns, any
// problem. Every field decodes: the audit continues as new with its own input.
func (in *RetentionAuditInput) UnmarshalJSON(b []byte) error {
	var v struct {
		BatchSize  *float64 `json:"batchSize"`
		MaxBatches *float64 `json:"maxBatches"`
		AsOf       *string  `json:"asOf"`
		AfterDueAt *string  `json:"afterDueAt"`
		AfterID    *string  `json:"afterId"`
		Found      *float64 `json:"found"`
		Purged     *float64 `json:"purged"`
		Running    *float64 `json:"running"`
		RunningIDs []string `json:"runningIds"`
	}
	*in = RetentionAuditInput{}
	if err := errors.Join(decodeStrict(b, &v), exactFields(b, &v)); err != nil {
		in.problem = firstError(err)
		return nil
	}
	var errs []error
	whole := func(dst *int, field string, src *float64, lo, hi int64) {
		n, err := wholeNumber(field, src, lo, hi)
		*dst = n
		errs = append(errs, err)
	}
	whole(&in.BatchSize, "batchSize", v.BatchSize, 1, maxBatchSize)
	whole(&in.MaxBatches, "maxBatches", v.MaxBatches, 1, maxMaxBatches)
	errs = append(errs, rfc3339("asOf", v.AsOf, &in.AsOf), rfc3339("afterDueAt", v.AfterDueAt, &in.AfterDueAt))
	if v.AfterID != nil {
		in.AfterID = *v.AfterID
		if !amazonOrderIDPattern.MatchString(in.AfterID) {
			errs = append(errs, errors.New(`field "afterId" is not an Amazon order id (3-7-7 digits)`))
		}
	}
	whole(&in.Found, "found", v.Found, 0, maxCount)
	whole(&in.Purged, "purged", v.Purged, 0, maxCount)
	whole(&in.Running, "running", v.Running, 0, maxCount)
	if len(v.RunningIDs) > maxAuditRunningIDs {
		errs = append(errs, fmt.Errorf(`field "runningIds" has more than %d ids`, maxAuditRunningIDs))
	}
	for _, id := range v.RunningIDs {
		if !amazonOrderIDPattern.MatchString(id) {
			errs = append(errs, errors.New(`field "runningIds" holds something that is not an Amazon order id (3-7-7 digits)`))
			break
		}
	}
	in.RunningIDs = v.RunningIDs
	in.problem = firstError(errors.Join(errs...))
	return nil
}

// rfc3339 parses an optional RFC 3339 time field into dst.
func rfc3339(field string, s *string, dst *time.Time) error {
	if s == nil {
		return nil
	}
	if err := dst.UnmarshalText([]byte(*s)); err != nil || !validOffset(*dst) {
		return fmt.Errorf("field %q is not an RFC 3339 time (e.g. 2026-11-27T10:00:00Z)", field)
	}
	return nil
}

// validOffset reports whether t's UTC offset is one RFC 3339 allows (less
// than 24 hours; time.Time's parser takes "+24:00").
func validOffset(t time.Time) bool {
	_, off := t.Zone()
	return off > -24*3600 && off < 24*3600
}

// Validate names the first thing wrong with the input.
func (in RetentionAuditInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf(`RetentionAudit input: %w; want {} or {"batchSize": 100, "maxBatches": 200}`, in.problem)
	}
	return nil
}
