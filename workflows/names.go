// Package workflows defines the durable workflows that keep the data protection
// policy's promises, and every name other programs rely on: task queue, workflow
// types and IDs, signals, queries and search attributes. Workflows only
// orchestrate; activities do all I/O.
package workflows

import (
	"strings"

	"go.temporal.io/sdk/temporal"
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

// OrderLifecycle signals and query.
const (
	SignalDelivered   = "delivered"    // {"deliveredAt": RFC 3339}
	SignalLegalHold   = "legal-hold"   // {"reason", "by"}
	SignalReleaseHold = "release-hold" // {"by"}
	SignalPurgeNow    = "purge-now"    // {"reason", "by"}
	SignalCancelled   = "cancelled"    // {"reason"}
	QueryStatus       = "status"
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

// Search attributes registered by `starter setup` and the dev server.
var (
	AmazonOrderIDKey      = temporal.NewSearchAttributeKeyKeyword("AmazonOrderId")
	OrderStageKey         = temporal.NewSearchAttributeKeyKeyword("OrderStage")
	PurgeDueAtKey         = temporal.NewSearchAttributeKeyTime("PurgeDueAt")
	ComplianceDeadlineKey = temporal.NewSearchAttributeKeyTime("ComplianceDeadline")
	// OrderProblemKey holds the code of a step that failed for good (e.g.
	// invoice-no-buyer-address): `OrderProblem IS NOT NULL` finds orders that need attention.
	OrderProblemKey = temporal.NewSearchAttributeKeyKeyword("OrderProblem")
)

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
