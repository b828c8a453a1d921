// Package workflows defines the durable workflows that keep the data protection
// policy's promises, and every name other programs rely on: task queue, workflow
// types and IDs, signals, queries and search attributes. Workflows only
// orchestrate; activities do all I/O.
package workflows

import (
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/activities"
)

// TaskQueue is the default task queue of the worker (DPP_TASK_QUEUE overrides it).
const TaskQueue = "dpp"

// Workflow type names.
const (
	OrderLifecycleName = "OrderLifecycle"
	OrderSyncName      = "OrderSync"
	TaxRecordSweepName = "TaxRecordSweep"
	RetentionAuditName = "RetentionAudit"
)

// Schedule IDs created by `starter setup`.
const (
	OrderSyncScheduleID      = "order-sync"
	TaxRecordSweepScheduleID = "tax-record-sweep"
	RetentionAuditScheduleID = "retention-audit"
)

// Schedule is one Temporal Schedule `starter setup` creates: every interval, or
// at calendar times in a time zone.
type Schedule struct {
	ID       string
	Workflow string
	// Input is what each start sends.
	Input any
	// Every is the interval; a worker setting may override it (see
	// internal/app's Setup). Zero for a calendar schedule.
	Every time.Duration
	// Calendar, when set, starts the workflow at these times instead.
	Calendar *Calendar
}

// Calendar is a schedule's calendar: at Hour:Minute on DaysOfMonth of Months, in
// TimeZone (IANA name). An empty list matches every month or every day.
type Calendar struct {
	Months      []int
	DaysOfMonth []int
	Hour        int
	Minute      int
	TimeZone    string
	Comment     string
}

// Quarterly is the calendar of a quarterly duty: 09:00 London time on the 1st of
// January, April, July and October (the access review uses it).
var Quarterly = Calendar{Months: []int{1, 4, 7, 10}, DaysOfMonth: []int{1}, Hour: 9, TimeZone: "Europe/London",
	Comment: "quarterly, 09:00 Europe/London on the 1st of Jan, Apr, Jul and Oct"}

// Schedules is the one table of the schedules `starter setup` creates.
var Schedules = []Schedule{
	{ID: OrderSyncScheduleID, Workflow: OrderSyncName, Input: activities.SyncOrdersInput{}, Every: 5 * time.Minute},
	{ID: TaxRecordSweepScheduleID, Workflow: TaxRecordSweepName, Input: TaxRecordSweepInput{}, Every: 24 * time.Hour},
	{ID: RetentionAuditScheduleID, Workflow: RetentionAuditName, Input: RetentionAuditInput{},
		Calendar: &Calendar{Hour: 3, Minute: 30, TimeZone: "Europe/London", Comment: "daily at 03:30 Europe/London, after the night's orders"}},
	// Empty input: each run reviews the quarter it starts in (AccessReviewInput).
	{ID: AccessReviewScheduleID, Workflow: AccessReviewName, Input: AccessReviewInput{}, Calendar: &Quarterly},
	// Every DPP_KEY_EPOCH (Setup sets it), aligned to the epochs' starts.
	{ID: KeyEpochsScheduleID, Workflow: KeyEpochsName, Input: KeyEpochsInput{}, Every: 24 * time.Hour},
}

// OrderLifecycle signals and query.
const (
	SignalDelivered   = "delivered"    // {"deliveredAt": RFC 3339}
	SignalLegalHold   = "legal-hold"   // {"reason", "by"}
	SignalReleaseHold = "release-hold" // {"by"}
	SignalPurgeNow    = "purge-now"    // {"reason", "by"}
	SignalCancelled   = "cancelled"    // {"reason"}
	QueryStatus       = "status"
)

// OrderLifecycle updates: the same requests as the signals of the same names,
// for a caller who wants an answer. Each returns the order's status, or the
// validator's error; a refused update is not recorded in the history.
const (
	UpdateLegalHold   = SignalLegalHold   // {"reason", "by", "note"?}
	UpdateReleaseHold = SignalReleaseHold // {"by", "note"?}
	UpdatePurgeNow    = SignalPurgeNow    // {"reason", "by", "note"?}
)

// Order stages, shown in the OrderStage search attribute and the status query.
const (
	StageSealing          = "sealing"
	StageInvoicing        = "invoicing"
	StageAwaitingDelivery = "awaiting-delivery"
	StageRetained         = "retained"
	StageOnHold           = "on-hold"
	StagePurging          = "purging"
	StagePurged           = "purged"
)

// Search attributes registered by `starter setup` and the dev server. Every key
// is listed once more in SearchAttributes, the table everything else reads.
var (
	AmazonOrderIDKey      = temporal.NewSearchAttributeKeyKeyword("AmazonOrderId")
	OrderStageKey         = temporal.NewSearchAttributeKeyKeyword("OrderStage")
	PurgeDueAtKey         = temporal.NewSearchAttributeKeyTime("PurgeDueAt")
	ComplianceDeadlineKey = temporal.NewSearchAttributeKeyTime("ComplianceDeadline")
	// OrderProblemKey holds the code of a step that failed for good (e.g.
	// invoice-no-buyer-address): `OrderProblem IS NOT NULL` finds orders that need attention.
	OrderProblemKey = temporal.NewSearchAttributeKeyKeyword("OrderProblem")
)

// SearchAttributes is the one table of the custom search attributes: `starter
// setup` registers them, internal/testenv and the benchmark start the dev server
// with them (SearchAttributeFlags), and a test checks scripts/dev-stack and
// docker-compose.yml list exactly these.
var SearchAttributes = []temporal.SearchAttributeKey{
	AmazonOrderIDKey, OrderStageKey, PurgeDueAtKey, ComplianceDeadlineKey, OrderProblemKey,
}

// SearchAttributeFlags are the search attributes in the `NAME=Type` form of the
// dev server's --search-attribute flag and the CLI.
func SearchAttributeFlags() []string {
	out := make([]string, len(SearchAttributes))
	for i, k := range SearchAttributes {
		out[i] = k.GetName() + "=" + searchAttributeTypeName(k.GetValueType())
	}
	return out
}

// searchAttributeTypeName is the CLI's name of an indexed value type.
func searchAttributeTypeName(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD:
		return "Keyword"
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	case enumspb.INDEXED_VALUE_TYPE_TEXT:
		return "Text"
	case enumspb.INDEXED_VALUE_TYPE_INT:
		return "Int"
	case enumspb.INDEXED_VALUE_TYPE_DOUBLE:
		return "Double"
	case enumspb.INDEXED_VALUE_TYPE_BOOL:
		return "Bool"
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST:
		return "KeywordList"
	}
	panic("workflows: search attribute type " + t.String() + " has no CLI name")
}

// Error types workflows fail with.
const (
	ErrInvalidInput = "InvalidInput"
)

const orderIDPrefix = "order-"

// OrderWorkflowID is the workflow ID of an order's lifecycle: one per order, so
// starting it twice is a no-op.
func OrderWorkflowID(amazonOrderID string) string { return orderIDPrefix + amazonOrderID }

// AmazonOrderIDFromWorkflowID is the inverse of OrderWorkflowID.
func AmazonOrderIDFromWorkflowID(id string) (string, bool) {
	return strings.CutPrefix(id, orderIDPrefix)
}
