package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Registry is the part of a worker that workflows register with.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Options give the workflows what they need of the configuration.
type Options struct {
	// Operators are the identifiers people may sign signals with ("by"):
	// DPP_OPERATORS. The system's own names (SystemActors) are always accepted.
	Operators []string
	// SPAPITaskQueue and SPAPISyncTaskQueue are the task queues of the
	// activities that call Amazon's SP-API (FetchAndSeal; SyncOrders), where
	// the worker enforces Amazon's rates for every worker at once
	// (DPP_SPAPI_TASK_QUEUE, DPP_SPAPI_SYNC_TASK_QUEUE). Empty: the workflow's
	// own task queue.
	SPAPITaskQueue, SPAPISyncTaskQueue string
	// Access are the access review's and offboarding's settings.
	Access AccessOptions
	// SPAPIFeedsTaskQueue is the task queue of SubmitTaxDocument, dispatched at
	// createFeed's rate for all workers together. Empty: the workflow's own.
	SPAPIFeedsTaskQueue string
	// TaxUpload are TaxDocumentUpload's retry settings (zero: the defaults).
	TaxUpload TaxUploadOptions
}

// Register registers every workflow under its stable name.
func Register(r Registry, o Options) {
	r.RegisterWorkflowWithOptions(o.OrderLifecycle, registerOpts(OrderLifecycleName))
	r.RegisterWorkflowWithOptions(o.OrderSync, registerOpts(OrderSyncName))
	r.RegisterWorkflowWithOptions(TaxRecordSweep, registerOpts(TaxRecordSweepName))
	r.RegisterWorkflowWithOptions(RetentionAudit, registerOpts(RetentionAuditName))
	r.RegisterWorkflowWithOptions(o.AccessReview, registerOpts(AccessReviewName))
	r.RegisterWorkflowWithOptions(o.Offboarding, registerOpts(OffboardingName))
	r.RegisterWorkflowWithOptions(IncidentNotification, registerOpts(IncidentNotificationName))
	r.RegisterWorkflowWithOptions(KeyEpochs, registerOpts(KeyEpochsName))
	r.RegisterWorkflowWithOptions(ComplianceCalendar, registerOpts(ComplianceCalendarName))
	r.RegisterWorkflowWithOptions(ComplianceDuty, registerOpts(ComplianceDutyName))
	r.RegisterWorkflowWithOptions(AlertCheck, registerOpts(AlertCheckName))
	r.RegisterWorkflowWithOptions(AmazonDataSweep, registerOpts(AmazonDataSweepName))
	r.RegisterWorkflowWithOptions(OrderNotifications, registerOpts(OrderNotificationsName))
	r.RegisterWorkflowWithOptions(o.TaxDocumentUpload, registerOpts(TaxDocumentUploadName))
}

func registerOpts(name string) workflow.RegisterOptions { return workflow.RegisterOptions{Name: name} }
