package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// Activities retry transient failures (SP-API, KMS, Postgres outages) without a
// limit: the order waits, visibly, in the Web UI, rather than failing. Only errors
// retrying cannot fix are final.
var finalErrors = []string{activities.ErrInvalidOrder, activities.ErrInvalidInput, activities.ErrOrderNotFound,
	activities.ErrInvoiceNotIssuable}

func retry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        5 * time.Minute,
		NonRetryableErrorTypes: finalErrors,
	}
}

// Order steps take well under a second; a short StartToClose means a step lost
// with a crashed worker is retried elsewhere within half a minute.
var (
	sealOptions    = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry()}
	invoiceOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry()}
	purgeOptions   = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry()}
	// Sync and sweep heartbeat their progress, so a dead worker is noticed quickly
	// and the retry resumes where the last heartbeat left off.
	syncOptions  = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: time.Minute, RetryPolicy: retry()}
	sweepOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: time.Minute, RetryPolicy: retry()}
	auditOptions = sweepOptions
	// Recording problems and audit summaries is one short transaction.
	recordOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry()}
	// The retention record is a one-row update: a local activity, one history
	// event instead of three, retried by the worker like any activity.
	retentionRecordOptions = workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry()}
	// Starting the invoice's upload is one call to the Temporal server; ten
	// minutes of retries ride out a server restart.
	startUploadOptions = workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second, ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: retry()}
)

// Default suffixes of the SP-API task queues: DPP_TASK_QUEUE "dpp" gives
// "dpp-spapi" (FetchAndSeal, one getOrder call each, dispatched at most at
// getOrder's rate for all workers together) and "dpp-spapi-sync" (SyncOrders,
// one pass at a time per worker; see internal/app/spapiqueues.go). DPP_SPAPI_TASK_QUEUE and
// DPP_SPAPI_SYNC_TASK_QUEUE name others.
const (
	SPAPITaskQueueSuffix     = "-spapi"
	SPAPISyncTaskQueueSuffix = "-spapi-sync"
	// SPAPIFeedsTaskQueueSuffix: SubmitTaxDocument, one createFeed call each,
	// dispatched at createFeed's rate (0.0083/s) for all workers together.
	SPAPIFeedsTaskQueueSuffix = "-spapi-feeds"
)

// onQueue runs activities on taskQueue ("": the workflow's). Replay does not
// compare an activity's task queue with its history, so moving an activity to
// another queue needs no version guard; tasks already scheduled on the old
// queue are still served there (every worker registers every activity).
func onQueue(o workflow.ActivityOptions, taskQueue string) workflow.ActivityOptions {
	o.TaskQueue = taskQueue
	return o
}

func withOptions(ctx workflow.Context, o workflow.ActivityOptions) workflow.Context {
	return workflow.WithActivityOptions(ctx, o)
}

// withSummary adds the one line the Web UI shows for the activity (no PII).
func withSummary(ctx workflow.Context, o workflow.ActivityOptions, summary string) workflow.Context {
	o.Summary = summary
	return workflow.WithActivityOptions(ctx, o)
}
