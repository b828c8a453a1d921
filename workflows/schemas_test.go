package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/schemas"
)

// decoders decode a payload as the workflow does (for signals: as a run that
// takes reasons as codes) and return what it rejects it for, or nil.
var decoders = map[string]func(raw []byte) error{
	"order-lifecycle.input":  func(raw []byte) error { var v OrderInput; return unmarshalAndValidate(raw, &v) },
	"order-sync.input":       func(raw []byte) error { var v OrderSyncInput; return unmarshalAndValidate(raw, &v) },
	"tax-record-sweep.input": func(raw []byte) error { var v TaxRecordSweepInput; return unmarshalAndValidate(raw, &v) },
	"retention-audit.input":  func(raw []byte) error { var v RetentionAuditInput; return unmarshalAndValidate(raw, &v) },
	"key-epochs.input":       func(raw []byte) error { var v KeyEpochsInput; return unmarshalAndValidate(raw, &v) },
	"signal.delivered":       func(raw []byte) error { return decodeSignal(raw, &DeliveredSignal{}) },
	"tax-document-upload.input": func(raw []byte) error {
		var v TaxDocumentUploadInput
		return unmarshalAndValidate(raw, &v)
	},
	"signal.legal-hold":   func(raw []byte) error { return decodeCodedSignal(raw, &HoldSignal{}) },
	"signal.release-hold": func(raw []byte) error { return decodeCodedSignal(raw, &ReleaseSignal{}) },
	"signal.purge-now":    func(raw []byte) error { return decodeCodedSignal(raw, &PurgeNowSignal{}) },
	"signal.cancelled":    func(raw []byte) error { return decodeCodedSignal(raw, &CancelledSignal{}) },
	"signal.refund":       func(raw []byte) error { return decodeCodedSignal(raw, &RefundSignal{}) },
	"access-review.input": func(raw []byte) error { var v AccessReviewInput; return unmarshalAndValidate(raw, &v) },
	"offboarding.input":   func(raw []byte) error { var v OffboardingInput; return unmarshalAndValidate(raw, &v) },
	"signal.decision":     func(raw []byte) error { return decodeAccess(raw, &DecisionSignal{}) },
	"signal.extend":       func(raw []byte) error { return decodeAccess(raw, &ExtendSignal{}) },
	"signal.confirm-disabled": func(raw []byte) error {
		return decodeAccess(raw, &ConfirmDisabledSignal{})
	},
	"incident-notification.input": func(raw []byte) error {
		var v IncidentInput
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		// Far ahead, so that only what a schema can say is checked (not "in the future").
		_, err := v.Validate(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		return err
	},
	"signal.approve-notification":   func(raw []byte) error { return decodeIncidentSignal(raw, &ApproveNotificationSignal{}) },
	"signal.advance-stage":          func(raw []byte) error { return decodeIncidentSignal(raw, &AdvanceStageSignal{}) },
	"signal.ico-reported":           func(raw []byte) error { return decodeIncidentSignal(raw, &ICOReportedSignal{}) },
	"signal.close":                  func(raw []byte) error { return decodeIncidentSignal(raw, &CloseSignal{}) },
	"signal.confirm-false-positive": func(raw []byte) error { return decodeIncidentSignal(raw, &ConfirmFalsePositiveSignal{}) },
	"compliance-calendar.input":     func(raw []byte) error { var v ComplianceCalendarInput; return unmarshalAndValidate(raw, &v) },
	"compliance-duty.input":         func(raw []byte) error { var v ComplianceDutyInput; return unmarshalAndValidate(raw, &v) },
	"alert-check.input":             func(raw []byte) error { var v AlertCheckInput; return unmarshalAndValidate(raw, &v) },
	"amazon-data-sweep.input":       func(raw []byte) error { var v AmazonDataSweepInput; return unmarshalAndValidate(raw, &v) },
	"signal.complete": func(raw []byte) error {
		var v CompleteDutyRequest
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		// A duty with no evidence of its own, far ahead: only what a schema
		// can say is checked (not which duty needs which evidence, nor "not in
		// the future").
		return validateCompletion(calendar.RiskAssessment, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), v)
	},
}

// unmarshalAndValidate decodes raw as the SDK's JSON payload converter does.
func unmarshalAndValidate[T any, P interface {
	*T
	Validate() error
}](raw []byte, v P) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	return v.Validate()
}

// compiledSchemas compiles every schema in schemas/json with a JSON Schema
// draft 2020-12 validator, formats asserted, and returns them by name
// (file name without .schema.json).
func compiledSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	files, err := fs.Glob(schemas.JSONSchemas, "json/*.schema.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	out := map[string]*jsonschema.Schema{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "json/"), ".schema.json")
		b, _ := fs.ReadFile(schemas.JSONSchemas, f)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if m, _ := doc.(map[string]any); m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema is %v, want draft 2020-12", f, m["$schema"])
		}
		url := "https://plusranger.co.uk/dpp/schemas/" + path.Base(f)
		if m, _ := doc.(map[string]any); m["$id"] != url {
			t.Errorf("%s: $id is %v, want %s", f, m["$id"], url)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s does not compile: %v", f, err)
		}
		out[name] = sch
	}
	return out
}

// validates reports whether the schema accepts the JSON document raw.
func validates(t *testing.T, sch *jsonschema.Schema, raw string) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("test input %s is not JSON: %v", raw, err)
	}
	return sch.Validate(inst)
}

// TestJSONSchemasAgreeWithTheDecoders keeps schemas/json and the workflows'
// decoders from drifting apart: a real JSON Schema validator (draft 2020-12)
// compiles every schema and checks its examples, and on every example, every
// input that must be accepted and every input that must be rejected, the
// validator and the workflow's own decoder give the same answer.
func TestJSONSchemasAgreeWithTheDecoders(t *testing.T) {
	compiled := compiledSchemas(t)
	fields := map[string][]string{
		"order-lifecycle.input": {"amazonOrderId"}, "signal.delivered": {"deliveredAt"},
		"signal.legal-hold": {"by", "note", "reason"}, "signal.release-hold": {"by", "note"},
		"signal.purge-now": {"by", "note", "reason"}, "signal.cancelled": {"reason"},
		"order-sync.input": {"name"}, "tax-record-sweep.input": {"batchSize"},
		"incident-notification.input":   {"detectedAt", "id", "personalData", "reportedBy", "severity", "summary", "title"},
		"signal.approve-notification":   {"by", "target", "text"},
		"signal.advance-stage":          {"by", "note", "noteRef", "stage"},
		"signal.ico-reported":           {"by", "reference"},
		"signal.close":                  {"by", "falsePositive", "lessons", "lessonsRef", "reason", "reasonRef"},
		"signal.confirm-false-positive": {"by"},
		"retention-audit.input":         {"afterDueAt", "afterId", "asOf", "batchSize", "found", "maxBatches", "purged", "running", "runningIds"},
		"key-epochs.input":              {"batchSize", "maxBatches", "rewrapped"},
		"access-review.input":           {"campaign"}, "offboarding.input": {"personId", "requestedBy", "terminatedAt"},
		"signal.decision": {"by", "decision", "itemId", "reason", "reasonRef"}, "signal.extend": {"by", "until"},
		"signal.confirm-disabled":   {"account", "by", "system"},
		"compliance-calendar.input": {"duty"}, "alert-check.input": {"schedules"}, "amazon-data-sweep.input": {"batchSize"},
		"compliance-duty.input":     {"dueAt", "duty", "notYet", "overdueEvery", "period", "reminders"},
		"signal.complete":           {"by", "note", "noteRef", "reportSha256", "rotatedAt"},
		"signal.refund":             {"by", "full", "lines", "reason", "refundId"},
		"tax-document-upload.input": {"amazonOrderId", "documentNumber", "documentType"},
	}
	if len(compiled) != len(fields) || len(decoders) != len(fields) {
		t.Fatalf("%d schemas, %d decoders, want %d of each", len(compiled), len(decoders), len(fields))
	}
	id := func(n int) string { return fmt.Sprintf("%03d-%07d-%07d", n%1000, n, n) }
	ids := func(n int) string {
		var q []string
		for i := range n {
			q = append(q, strconv.Quote(id(i)))
		}
		return "[" + strings.Join(q, ",") + "]"
	}
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	asOf := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	const hold, purge = `"reason":"dispute","by":"dpo"`, `"reason":"buyer-erasure-request","by":"dpo"`
	long := func(s string, n int) string { return strconv.Quote(strings.Repeat(s, n)) }
	accept := map[string][]string{
		"order-lifecycle.input": {`{"amazonOrderId":"205-1234567-7654321"}`},
		"order-sync.input": {
			marshal(activities.SyncOrdersInput{}), // what the order-sync schedule sends
			marshal(activities.SyncOrdersInput{Name: "seller-2"}), `{"name":""}`,
		},
		"tax-record-sweep.input": {
			marshal(TaxRecordSweepInput{}), marshal(TaxRecordSweepInput{BatchSize: 100}), // schedule, continue-as-new
			`{"batchSize":1}`, `{"batchSize":1000}`, `{"batchSize":5.0}`, `{"batchSize":1e2}`,
		},
		"retention-audit.input": {
			marshal(RetentionAuditInput{}), // what the retention-audit schedule sends (zero times included)
			marshal(RetentionAuditInput{BatchSize: 100, MaxBatches: 200, AsOf: asOf, AfterDueAt: asOf.Add(-time.Hour),
				AfterID: id(7), Found: 250, Purged: 3, Running: 101, RunningIDs: strings.Split(strings.Trim(strings.ReplaceAll(ids(100), `"`, ""), "[]"), ",")}), // continue-as-new
			`{"maxBatches":1000,"found":0,"runningIds":[]}`, `{"asOf":"2026-11-27T03:00:00+01:00"}`,
		},
		"key-epochs.input": {
			marshal(KeyEpochsInput{}), marshal(KeyEpochsInput{BatchSize: 100, MaxBatches: 200, Rewrapped: 12345}), // schedule, continue-as-new
			`{"batchSize":1}`, `{"maxBatches":1000}`, `{"rewrapped":0}`,
		},
		"signal.delivered": {`{"deliveredAt":"2026-11-27T10:00:00.5+01:00"}`, `{"deliveredAt":"2026-11-27T10:00:00-00:00"}`,
			`{"deliveredAt":"2026-11-27T10:00:00.123456789123+23:59"}`},
		"signal.legal-hold": {`{` + hold + `,"note":""}`, `{` + hold + `,"note":` + long("é", MaxNoteLength) + `}`,
			`{"reason":"dispute","by":"` + strings.Repeat("a", MaxByLength) + `"}`},
		"signal.release-hold": {`{"by":"order-sync"}`, `{"by":"dpo","note":"x"}`},
		"signal.purge-now":    {`{` + purge + `,"note":"A-to-z 117"}`},
		"signal.cancelled":    {`{}`, `{"reason":"seller-cancelled"}`, marshal(CancelledSignal{})},
		"signal.refund": {marshal(RefundSignal{RefundID: "R-1", Reason: RefundGoodwill, By: "dpo", Full: true}),
			`{"refundId":"AMZ:adj.1_2-3","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","quantity":2},{"orderItemId":"2","amount":"0.01"}]}`,
			`{"refundId":"` + strings.Repeat("R", 64) + `","reason":"chargeback","by":"order-sync","lines":[{"orderItemId":"x","amount":"999999999.99"}]}`},
		"access-review.input": {marshal(AccessReviewInput{}), // what the access-review schedule sends
			marshal(AccessReviewInput{Campaign: "2026-Q4"}), `{"campaign":""}`, `{"campaign":"review.2027_a-1"}`},
		"offboarding.input": {marshal(OffboardingInput{PersonID: "p-7", TerminatedAt: asOf, RequestedBy: "p-hr"}),
			`{"personId":"e1042","terminatedAt":"2026-12-01T17:30:00.5+01:00","requestedBy":"p-dpo"}`},
		"signal.decision": {marshal(DecisionSignal{ItemID: "1", Decision: "keep", By: "p-mgr"}),
			`{"itemId":"12","decision":"keep","by":"p-dpo","reason":` + long("é", maxReason) + `}`, `{"itemId":"1","decision":"revoke","by":"p-1","reason":""}`,
			`{"itemId":"2","decision":"keep","by":"p-dpo","reasonRef":"access-review-2026-Q4/item/2/reason/0a1b2c3d4e5f6071"}`},
		"signal.extend":           {marshal(ExtendSignal{By: "p-dpo", Until: asOf}), `{"by":"p-dpo","until":"2026-12-01T09:00:00-05:00"}`},
		"signal.confirm-disabled": {marshal(ConfirmDisabledSignal{System: "seller-central", Account: "a b@c", By: "p-mgr"})},
		"incident-notification.input": {
			`{"title":"x","severity":"critical"}`, `{"title":"x","severity":"low","id":"","detectedAt":"","reportedBy":""}`,
			`{"title":` + long("é", 200) + `,"severity":"medium","summary":` + long("é", 4000) + `}`,
			`{"title":"x","severity":"high","detectedAt":"2026-12-01T09:00:00.5+01:00","personalData":false,"id":"a.b_c-1"}`,
		},
		"signal.approve-notification": {`{"by":"U1","target":"ico"}`, `{"by":"dpo@plusranger.example","target":"amazon","text":` + long("é", 4000) + `}`},
		"signal.advance-stage":        {`{"by":"U1","stage":""}`, `{"by":"U1","stage":"lessons-learned","note":""}`},
		"signal.ico-reported":         {`{"by":"U1","reference":"IC/2026:0042.a"}`},
		"signal.close": {`{"by":"U1"}`, `{"by":"U1","falsePositive":false,"lessons":"","reason":""}`,
			`{"by":"U1","falsePositive":true,"reasonRef":"incident-20261201-abc123/close/20261201T120000.000000000Z/reason"}`},
		"signal.confirm-false-positive": {`{"by":"` + strings.Repeat("a", 254) + `"}`},
		"compliance-calendar.input":     {marshal(ComplianceCalendarInput{Duty: calendar.VulnerabilityScan}), `{"duty":"incident-plan-review"}`},
		"alert-check.input": {marshal(AlertCheckInput{}), // what the alert-check schedule sends
			marshal(AlertCheckInput{Schedules: []string{OrderSyncScheduleID}}), `{"schedules":[]}`},
		"amazon-data-sweep.input": {marshal(AmazonDataSweepInput{}), marshal(AmazonDataSweepInput{BatchSize: 100}), // schedule, continue-as-new
			`{"batchSize":1}`, `{"batchSize":1000}`, `{"batchSize":5.0}`},
		"compliance-duty.input": {
			marshal(activities.DutyPlan{Duty: calendar.VulnerabilityScan, Period: "2026-12-01", DueAt: asOf,
				Reminders: []time.Duration{72 * time.Hour, time.Hour}, OverdueEvery: 24 * time.Hour}), // what ComplianceCalendar sends
			`{"duty":"lwa-secret-rotation","period":"2026-06-04","dueAt":"2026-12-01T09:00:00.5+01:00","overdueEvery":1,"notYet":false}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1,"reminders":[]}`,
		},
		"signal.complete": {marshal(CompleteDutyRequest{By: "p-dpo"}), `{"by":"U0DPO","note":` + long("é", 500) + `}`,
			`{"by":"p.dpo_1-a","note":"","rotatedAt":"2026-12-01T09:00:00-05:00","reportSha256":"` + strings.Repeat("0", 64) + `"}`,
			`{"by":"` + strings.Repeat("a", 64) + `"}`, `{"by":"dpo","noteRef":"compliance-duty-completed/duty-risk-assessment-2026/note/20261201T090000.000000000Z"}`},
	}
	accept["tax-document-upload.input"] = []string{
		marshal(TaxDocumentUploadInput{AmazonOrderID: "205-1234567-7654321", DocumentNumber: "INV-000001", DocumentType: "Invoice"}), // what the lifecycle and the starter send
		`{"amazonOrderId":"205-1234567-7654321","documentNumber":"CN/2026_0001-a","documentType":"CreditNote"}`,
		`{"amazonOrderId":"205-1234567-7654321","documentNumber":` + long("9", 64) + `,"documentType":"Invoice"}`,
	}
	// Every way a payload can be wrong that the schema can express, per schema.
	reject := map[string][]string{
		"tax-document-upload.input": {
			`{}`, `{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV-1"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV-1","documentType":"Receipt"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV-1","documentType":"invoice"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":"","documentType":"Invoice"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV 1","documentType":"Invoice"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":` + long("9", 65) + `,"documentType":"Invoice"}`,
			`{"amazonOrderId":"205-123","documentNumber":"INV-1","documentType":"Invoice"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":7,"documentType":"Invoice"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":null,"documentType":"Invoice"}`,
			`{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV-1","documentType":"Invoice","attempt":2}`,
			`{"AmazonOrderId":"205-1234567-7654321","documentNumber":"INV-1","documentType":"Invoice"}`, `null`, `[]`,
		},
		"order-lifecycle.input": {
			`{}`, `{"amazonOrderId":""}`, `{"amazonOrderId":205}`, `{"amazonOrderId":"205-123"}`, `{"amazonOrderId":null}`,
			`{"amazonOrderId":"205-1234567-7654321","extra":1}`, `{"AmazonOrderId":"205-1234567-7654321"}`,
			`null`, `[]`, `"205-1234567-7654321"`,
		},
		"order-sync.input": {
			`{"name":5}`, `{"name":null}`, `{"batchSize":10}`, `{"Name":"x"}`, `null`, `[]`, `5`,
		},
		"tax-record-sweep.input": {
			`{"batchSize":0}`, `{"batchSize":-1}`, `{"batchSize":1.5}`, `{"batchSize":"100"}`, `{"batchSize":1001}`,
			`{"batchSize":1e20}`, `{"batchSize":null}`, `{"batchsize":5}`, `{"extra":1}`, `null`, `[]`,
		},
		"retention-audit.input": {
			`{"batchSize":0}`, `{"batchSize":1001}`, `{"maxBatches":0}`, `{"maxBatches":2.5}`, `{"maxBatches":1001}`,
			`{"asOf":"yesterday"}`, `{"asOf":5}`, `{"asOf":null}`, `{"afterDueAt":"2026-13-01T00:00:00Z"}`,
			`{"afterDueAt":"2026-11-27 10:00:00"}`, `{"asOf":"2026-11-27t10:00:00z"}`, `{"asOf":"2016-12-31T23:59:60Z"}`,
			`{"afterDueAt":"2026-11-27T10:00:00-24:00"}`, `{"afterId":"abc"}`, `{"afterId":""}`, `{"afterId":7}`,
			`{"found":-1}`, `{"purged":1.5}`, `{"running":"3"}`, `{"running":1e16}`,
			`{"runningIds":` + ids(101) + `}`, `{"runningIds":["x"]}`, `{"runningIds":[null]}`, `{"runningIds":"205-1234567-7654321"}`,
			`{"runningIds":null}`, `{"extra":1}`, `{"BatchSize":5}`, `null`,
		},
		"key-epochs.input": {
			`{"batchSize":0}`, `{"batchSize":1001}`, `{"maxBatches":0}`, `{"maxBatches":2.5}`, `{"rewrapped":-1}`,
			`{"rewrapped":"3"}`, `{"batchSize":null}`, `{"extra":1}`, `{"BatchSize":5}`, `null`, `[]`,
		},
		"signal.delivered": {
			`{}`, `{"deliveredAt":"yesterday"}`, `{"deliveredAt":5}`, `{"deliveredAt":null}`,
			`{"deliveredAt":"2026-11-27t10:00:00z"}`, `{"deliveredAt":"2016-12-31T23:59:60Z"}`, `{"deliveredAt":"2026-11-27T10:00:00+24:00"}`,
			`{"deliveredAt":"2026-11-27T24:00:00Z"}`, `{"deliveredAt":"2026-02-30T10:00:00Z"}`, `{"deliveredAt":"2026-11-27T10:00Z"}`,
			`{"deliveredAt":"2026-11-27T10:00:00Z","by":"dpo"}`, `{"DeliveredAt":"2026-11-27T10:00:00Z"}`, `null`,
		},
		"signal.legal-hold": {
			`{"by":"dpo"}`, `{"reason":"dispute"}`, `{"reason":"because","by":"dpo"}`, `{"reason":5,"by":"dpo"}`,
			`{"reason":"dispute","by":"Jane Doe"}`, `{"reason":"dispute","by":"jane@example.com"}`,
			`{"reason":"dispute","by":"` + strings.Repeat("a", MaxByLength+1) + `"}`,
			`{` + hold + `,"note":` + long("é", MaxNoteLength+1) + `}`, `{` + hold + `,"note":5}`, `{` + hold + `,"note":null}`,
			`{` + hold + `,"extra":1}`, `{"Reason":"dispute","by":"dpo"}`, `{"reason":null,"by":"dpo"}`, `null`,
		},
		"signal.release-hold": {
			`{}`, `{"by":""}`, `{"by":"Jane"}`, `{"by":"dpo","note":` + long("x", MaxNoteLength+1) + `}`,
			`{"by":"dpo","note":null}`, `{"by":"dpo","reason":"dispute"}`, `{"By":"dpo"}`, `null`,
		},
		"signal.refund": {
			`{}`, `null`, `{"refundId":"R-1","reason":"damaged","by":"dpo"}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","full":false}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","full":false,"lines":[{"orderItemId":"1","quantity":1}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","full":true,"lines":[{"orderItemId":"1","quantity":1}]}`,
			`{"refundId":"R 1","reason":"damaged","by":"dpo","full":true}`,
			`{"refundId":"` + strings.Repeat("R", 65) + `","reason":"damaged","by":"dpo","full":true}`,
			`{"refundId":"R-1","reason":"broken","by":"dpo","full":true}`,
			`{"refundId":"R-1","reason":"damaged","by":"Jane Doe","full":true}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1"}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","quantity":1,"amount":"1.00"}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","quantity":0}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","quantity":1.5}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","amount":"12.5"}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","amount":"0.00"}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","amount":12.50}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":" ","quantity":1}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","Quantity":1}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","lines":[{"orderItemId":"1","quantity":1,"x":1}]}`,
			`{"refundId":"R-1","reason":"damaged","by":"dpo","full":true,"note":"x"}`,
			`{"RefundId":"R-1","reason":"damaged","by":"dpo","full":true}`,
		},
		"signal.purge-now": {
			`{"by":"dpo"}`, `{"reason":"dispute","by":"dpo"}`, `{"reason":"buyer-erasure-request","by":"-dpo"}`,
			`{` + purge + `,"note":` + long("x", MaxNoteLength+1) + `}`, `{` + purge + `,"note":null}`,
			`{` + purge + `,"extra":1}`, `{"reason":"buyer-erasure-request","BY":"dpo"}`, `null`,
		},
		"access-review.input": {
			`{"campaign":5}`, `{"campaign":null}`, `{"campaign":"2026 Q4"}`, `{"campaign":"-x"}`, `{"Campaign":"2026-Q4"}`,
			`{"extra":1}`, `null`, `[]`,
		},
		"offboarding.input": {
			`{}`, `{"personId":"p-7","terminatedAt":"2026-12-01T17:30:00Z"}`, `{"personId":"Jane Doe","terminatedAt":"2026-12-01T17:30:00Z","requestedBy":"p-hr"}`,
			`{"personId":"p-7","terminatedAt":"yesterday","requestedBy":"p-hr"}`, `{"personId":"p-7","terminatedAt":"2026-12-01t17:30:00z","requestedBy":"p-hr"}`,
			`{"personId":"p-7","terminatedAt":"2026-12-01T17:30:00+24:00","requestedBy":"p-hr"}`, `{"personId":"p-7","terminatedAt":null,"requestedBy":"p-hr"}`,
			`{"personId":"p-7","terminatedAt":"2026-12-01T17:30:00Z","requestedBy":"Jane"}`,
			`{"PersonId":"p-7","terminatedAt":"2026-12-01T17:30:00Z","requestedBy":"p-hr"}`,
			`{"personId":"p-7","terminatedAt":"2026-12-01T17:30:00Z","requestedBy":"p-hr","extra":1}`, `null`,
		},
		"signal.decision": {
			`{}`, `{"itemId":"","decision":"keep","by":"p-mgr"}`, `{"itemId":"1","decision":"maybe","by":"p-mgr"}`,
			`{"itemId":"1","decision":"keep","by":"Jane Doe"}`, `{"itemId":"1","decision":"keep"}`, `{"itemId":1,"decision":"keep","by":"p-mgr"}`,
			`{"itemId":"1","decision":"keep","by":"p-mgr","reason":` + long("x", maxReason+1) + `}`,
			`{"itemId":"1","decision":"keep","by":"p-mgr","reason":null}`, `{"ItemId":"1","decision":"keep","by":"p-mgr"}`,
			`{"itemId":"1","decision":"keep","by":"p-mgr","extra":1}`, `null`, `[]`,
			`{"itemId":"1","decision":"keep","by":"p-mgr","reasonRef":"kept for Jane Doe"}`,
			`{"itemId":"1","decision":"keep","by":"p-mgr","reason":"x","reasonRef":"access-review-1/item/1/reason/00"}`,
		},
		"signal.extend": {
			`{}`, `{"by":"p-dpo"}`, `{"until":"2026-12-01T09:00:00Z"}`, `{"by":"Jane","until":"2026-12-01T09:00:00Z"}`,
			`{"by":"p-dpo","until":"yesterday"}`, `{"by":"p-dpo","until":"2016-12-31T23:59:60Z"}`, `{"by":"p-dpo","until":null}`,
			`{"By":"p-dpo","until":"2026-12-01T09:00:00Z"}`, `null`,
		},
		"signal.confirm-disabled": {
			`{}`, `{"system":"","account":"x","by":"p-mgr"}`, `{"system":"s","account":"","by":"p-mgr"}`, `{"system":"s","account":"x","by":"Jane"}`,
			`{"system":"s","account":"x"}`, `{"system":"s","account":5,"by":"p-mgr"}`, `{"System":"s","account":"x","by":"p-mgr"}`,
			`{"system":"s","account":"x","by":"p-mgr","extra":1}`, `null`,
		},
		"signal.cancelled": {
			`{"reason":"because"}`, `{"reason":""}`, `{"reason":5}`, `{"reason":null}`, `{"extra":1}`,
			`{"Reason":"buyer-cancelled"}`, `null`, `[]`,
		},
		"incident-notification.input": {
			`{}`, `{"severity":"high"}`, `{"title":"","severity":"high"}`, `{"title":"   ","severity":"high"}`, `{"title":"x"}`,
			`{"title":"x","severity":"apocalyptic"}`, `{"title":"x","severity":"High"}`, `{"title":"x","severity":null}`,
			`{"title":` + long("é", 201) + `,"severity":"low"}`, `{"title":"x","severity":"low","summary":` + long("x", 4001) + `}`,
			`{"title":"x","severity":"low","detectedAt":"yesterday"}`, `{"title":"x","severity":"low","detectedAt":"2026-11-27t10:00:00z"}`,
			`{"title":"x","severity":"low","detectedAt":"2026-11-27T10:00:00+24:00"}`, `{"title":"x","severity":"low","detectedAt":5}`,
			`{"title":"x","severity":"low","id":"-x"}`, `{"title":"x","severity":"low","id":"a b"}`,
			`{"title":"x","severity":"low","reportedBy":"jane@example.com"}`, `{"title":"x","severity":"low","reportedBy":"Jane Doe"}`,
			`{"title":"x","severity":"low","personalData":"yes"}`, `{"title":"x","severity":"low","personalData":null}`,
			`{"title":"x","severity":"low","victim":"x"}`, `{"Title":"x","severity":"low"}`, `null`, `[]`,
		},
		"signal.approve-notification": {
			`{"by":"U1"}`, `{"target":"amazon"}`, `{"by":"U1","target":"press"}`, `{"by":"","target":"amazon"}`,
			`{"by":"Jane Doe","target":"amazon"}`, `{"by":"<j@x.example>","target":"amazon"}`, `{"by":"` + strings.Repeat("a", 255) + `","target":"ico"}`,
			`{"by":"U1","target":"amazon","text":` + long("x", 4001) + `}`, `{"by":"U1","target":"amazon","text":null}`,
			`{"by":"U1","target":"amazon","extra":1}`, `{"By":"U1","target":"amazon"}`, `null`,
		},
		"signal.advance-stage": {
			`{}`, `{"by":"U1","stage":"Containment"}`, `{"by":"U1","stage":"1st"}`, `{"by":"U1","stage":5}`,
			`{"by":"U1","note":` + long("x", 4001) + `}`, `{"by":"U1","stage":null}`, `{"by":"U1","Stage":"x"}`, `null`,
			`{"by":"U1","noteRef":"fixed by Jane"}`, `{"by":"U1","note":"x","noteRef":"incident-1/advance-stage/1/note"}`,
		},
		"signal.ico-reported": {
			`{"by":"U1"}`, `{"reference":"IC-1"}`, `{"by":"U1","reference":""}`, `{"by":"U1","reference":"IC 1"}`,
			`{"by":"U1","reference":"-IC1"}`, `{"by":"U1","reference":` + long("a", 65) + `}`, `{"by":"U1","reference":1}`, `null`,
		},
		"signal.close": {
			`{}`, `{"by":"U1","lessons":` + long("x", 4001) + `}`, `{"by":"U1","reason":` + long("x", 4001) + `}`,
			`{"by":"U1","falsePositive":"yes"}`, `{"by":"U1","lessons":null}`, `{"by":"U1","Lessons":"x"}`, `null`,
			`{"by":"U1","reasonRef":"a drill by Jane Doe"}`, `{"by":"U1","lessons":"x","lessonsRef":"incident-1/close/1/lessons"}`,
		},
		"signal.confirm-false-positive": {`{}`, `{"by":""}`, `{"by":"a b"}`, `{"by":"U1","reason":"x"}`, `null`},
		"compliance-calendar.input": {
			`{}`, `{"duty":""}`, `{"duty":"tea-break"}`, `{"duty":"Risk-Assessment"}`, `{"duty":5}`, `{"duty":null}`,
			`{"Duty":"risk-assessment"}`, `{"duty":"risk-assessment","extra":1}`, `null`, `[]`,
		},
		"alert-check.input": {
			`{"schedules":[""]}`, `{"schedules":"order-sync"}`, `{"schedules":[5]}`, `{"schedules":[null]}`, `{"schedules":null}`,
			`{"Schedules":[]}`, `{"extra":1}`, `null`, `[]`,
		},
		"amazon-data-sweep.input": {
			`{"batchSize":0}`, `{"batchSize":-1}`, `{"batchSize":1.5}`, `{"batchSize":"100"}`, `{"batchSize":1001}`,
			`{"batchSize":null}`, `{"BatchSize":5}`, `{"extra":1}`, `null`, `[]`,
		},
		"compliance-duty.input": {
			`{}`, `{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z"}`,
			`{"duty":"tea-break","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":"","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":"2026 H2","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":` + long("a", 33) + `,"dueAt":"2026-12-01T09:00:00Z","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":"2026","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"yesterday","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01t09:00:00z","overdueEvery":1}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":0}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":-1}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":"24h"}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1,"reminders":[0]}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1,"reminders":null}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1,"notYet":"no"}`,
			`{"duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1,"extra":1}`,
			`{"Duty":"risk-assessment","period":"2026","dueAt":"2026-12-01T09:00:00Z","overdueEvery":1}`, `null`, `[]`,
		},
		"signal.complete": {
			`{}`, `{"by":""}`, `{"by":"Jane Doe"}`, `{"by":"jane@example.com"}`, `{"by":"-p"}`, `{"by":"` + strings.Repeat("a", 65) + `"}`,
			`{"by":"p-dpo","note":` + long("é", 501) + `}`, `{"by":"p-dpo","note":null}`, `{"by":"p-dpo","reportSha256":"ABC"}`,
			`{"by":"p-dpo","reportSha256":"` + strings.Repeat("A", 64) + `"}`, `{"by":"p-dpo","rotatedAt":"yesterday"}`,
			`{"by":"p-dpo","rotatedAt":"2026-12-01t09:00:00z"}`, `{"by":"p-dpo","rotatedAt":"2016-12-31T23:59:60Z"}`,
			`{"by":"p-dpo","rotatedAt":null}`, `{"By":"p-dpo"}`, `{"by":"p-dpo","extra":1}`, `null`, `[]`,
			`{"by":"p-dpo","noteRef":"reviewed by Jane Doe"}`, `{"by":"p-dpo","note":"x","noteRef":"compliance-duty-completed/duty-x/note/1"}`,
		},
	}
	for name, sch := range compiled {
		t.Run(name, func(t *testing.T) {
			b, _ := fs.ReadFile(schemas.JSONSchemas, "json/"+name+".schema.json")
			var s struct {
				Properties map[string]any    `json:"properties"`
				Examples   []json.RawMessage `json:"examples"`
			}
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			props := slices.Sorted(maps.Keys(s.Properties))
			if !slices.Equal(props, fields[name]) {
				t.Errorf("properties %v, decoder knows %v", props, fields[name])
			}
			if len(s.Examples) == 0 {
				t.Error("no examples")
			}
			decode := decoders[name]
			var good []string
			for _, ex := range s.Examples {
				good = append(good, string(ex))
			}
			for _, in := range append(good, accept[name]...) {
				if err := validates(t, sch, in); err != nil {
					t.Errorf("schema rejects %s: %v", in, err)
				}
				if err := decode([]byte(in)); err != nil {
					t.Errorf("decoder rejects %s: %v", in, err)
				}
			}
			if len(reject[name]) == 0 {
				t.Fatal("no inputs that must fail")
			}
			for _, in := range reject[name] {
				if validates(t, sch, in) == nil {
					t.Errorf("schema accepts %s", in)
				}
				if err := decode([]byte(in)); err == nil {
					t.Errorf("decoder accepts %s", in)
				} else if strings.Contains(err.Error(), "Jane") || strings.Contains(err.Error(), "yesterday") || strings.Contains(err.Error(), "because") {
					t.Errorf("decoder's error echoes the value: %v", err)
				}
			}
		})
	}
}

// The continue-as-new input of RetentionAudit decodes to the very value it was
// made from: every field survives the strict decoder.
func TestRetentionAuditInputRoundTrips(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	want := RetentionAuditInput{BatchSize: 100, MaxBatches: 200, AsOf: at, AfterDueAt: at.Add(-time.Hour),
		AfterID: "205-1234567-7654321", Found: 250, Purged: 3, Running: 2, RunningIDs: []string{"205-1234567-7654321", "206-1234567-7654321"}}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got RetentionAuditInput
	if err := json.Unmarshal(b, &got); err != nil || got.Validate() != nil {
		t.Fatalf("%v %v", err, got.Validate())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	var sweep TaxRecordSweepInput
	if err := json.Unmarshal([]byte(`{"batchSize":100}`), &sweep); err != nil || sweep.Validate() != nil || sweep.BatchSize != 100 {
		t.Fatalf("%+v", sweep)
	}
	var sync OrderSyncInput
	if err := json.Unmarshal([]byte(`{"name":"seller-2"}`), &sync); err != nil || sync.Validate() != nil || sync.Name != "seller-2" {
		t.Fatalf("%+v", sync)
	}
}

func decodeCodedSignal(raw []byte, s codedSignal) error {
	if err := decodeSignal(raw, s); err != nil {
		return err
	}
	return s.CheckCodes()
}

// schemaEnum is the enum of property prop in schema file.
func schemaEnum(t *testing.T, file, prop string) []string {
	t.Helper()
	b, _ := fs.ReadFile(schemas.JSONSchemas, file)
	var s struct {
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Properties[prop].Enum
}

// TestDutySchemasListEveryDuty: the calendar schemas' duty enum is calendar.Duties.
func TestDutySchemasListEveryDuty(t *testing.T) {
	for _, file := range []string{"json/compliance-calendar.input.schema.json", "json/compliance-duty.input.schema.json"} {
		if got := schemaEnum(t, file, "duty"); !slices.Equal(got, calendar.Duties) {
			t.Errorf("%s: duty enum %v, the calendar knows %v", file, got, calendar.Duties)
		}
	}
}

// TestSchemaCodeListsMatchTheWorkflow: the enums operators read are the lists
// the workflow enforces.
func TestSchemaCodeListsMatchTheWorkflow(t *testing.T) {
	for file, want := range map[string][]string{
		"json/signal.legal-hold.schema.json": HoldReasons, "json/signal.purge-now.schema.json": PurgeNowReasons,
		"json/signal.cancelled.schema.json": CancelReasons, "json/signal.refund.schema.json": RefundReasons,
	} {
		if got := schemaEnum(t, file, "reason"); !slices.Equal(got, want) {
			t.Errorf("%s: reason enum %v, the workflow accepts %v", file, got, want)
		}
	}
}

func TestOrderSyncCancelsWithACode(t *testing.T) {
	if !slices.Contains(CancelReasons, activities.CancelReasonOnAmazon) || CancelOnAmazon != activities.CancelReasonOnAmazon {
		t.Fatalf("OrderSync's cancellation reason %q is not the workflow's code %q", activities.CancelReasonOnAmazon, CancelOnAmazon)
	}
}
