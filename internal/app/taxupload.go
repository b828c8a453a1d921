package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/taxupload"
	"github.com/plusranger/dpp/workflows"
)

// TaxUploads is the record of tax documents uploaded to Amazon (Database).
func (a *App) TaxUploads() *taxupload.Store {
	return &taxupload.Store{Pool: a.Pool, Signer: a.Signer}
}

// TaxUploadActivities are TaxDocumentUpload's activities (Database, Sealing,
// SPAPI, Temporal). In the sandbox the poll and the retry delay shrink with
// DPP_SPAPI_SANDBOX_SPEEDUP like the rates.
func (a *App) TaxUploadActivities() *activities.TaxUpload {
	marketplace := spapi.MarketplaceUK
	if len(a.Config.MarketplaceIDs) > 0 {
		marketplace = a.Config.MarketplaceIDs[0]
	}
	return &activities.TaxUpload{Store: a.TaxUploads(), Documents: &taxupload.Documents{Orders: a.Orders},
		Feeds: a.SPAPI, Uploads: a.taxDocumentUploads(),
		MarketplaceID: marketplace, PollInterval: a.sandboxScaled(activities.DefaultFeedPollInterval)}
}

// taxUploadOptions are the upload workflow's retry settings; in the sandbox the
// heartbeat timeout shrinks too, but not below 5 s (ten polls at 1000 times
// Amazon's pace), so a busy test machine does not take a live poller for dead.
func (a *App) taxUploadOptions() workflows.TaxUploadOptions {
	o := workflows.DefaultTaxUploadOptions
	o.RetryDelay = a.sandboxScaled(o.RetryDelay)
	o.HeartbeatTimeout = max(a.sandboxScaled(o.HeartbeatTimeout), 5*time.Second)
	return o
}

// sandboxScaled divides a wait meant for Amazon by DPP_SPAPI_SANDBOX_SPEEDUP
// (sandbox only).
func (a *App) sandboxScaled(d time.Duration) time.Duration {
	if s := a.Config.SPAPISandboxSpeedup; s > 1 && a.Config.Sandbox() {
		return time.Duration(float64(d) / s)
	}
	return d
}

// taxDocumentUploads implements activities.TaxDocumentUploads over the Temporal client.
type taxDocumentUploads struct {
	c         client.Client
	taskQueue string
}

// TaxDocumentUploadOptions are the options of an upload's start. The lifecycle
// starts each document's upload once (a second start is refused and taken as
// done); an operator's re-run (rerun) may follow any closed run, never join an
// open one, and UploadInvoice refuses it for a document Amazon accepted.
func TaxDocumentUploadOptions(in activities.TaxDocumentInput, taskQueue string, rerun bool) client.StartWorkflowOptions {
	policy := enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	if rerun {
		policy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	}
	return client.StartWorkflowOptions{
		ID: workflows.TaxDocumentUploadWorkflowID(in.DocumentNumber), TaskQueue: taskQueue,
		WorkflowIDReusePolicy:                    policy,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.AmazonOrderIDKey.ValueSet(in.AmazonOrderID)),
	}
}

func (u *taxDocumentUploads) Start(ctx context.Context, in activities.TaxDocumentInput) (bool, error) {
	_, err := u.c.ExecuteWorkflow(ctx, TaxDocumentUploadOptions(in, u.taskQueue, false), workflows.TaxDocumentUploadName,
		workflows.TaxDocumentUploadInput{AmazonOrderID: in.AmazonOrderID, DocumentNumber: in.DocumentNumber, DocumentType: in.DocumentType})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("start %s: %w", workflows.TaxDocumentUploadWorkflowID(in.DocumentNumber), err)
	}
	return true, nil
}

// ErrUploadAccepted: Amazon accepted the document already; it is not sent again.
var ErrUploadAccepted = errors.New("accepted by Amazon already")

// UploadInvoice starts the upload of an order's invoice again (`starter invoice
// upload`), after an operator fixed what Amazon rejected. It refuses an
// accepted invoice and an upload that is still running, and returns the run.
func (a *App) UploadInvoice(ctx context.Context, orderID string) (client.WorkflowRun, error) {
	inv, err := a.Orders.Invoice(ctx, orderID)
	if err != nil {
		return nil, err
	}
	return a.uploadAgain(ctx, activities.TaxDocumentInput{AmazonOrderID: orderID, DocumentNumber: inv.Number,
		DocumentType: spapi.DocumentTypeInvoice}, "invoice "+inv.Number+" of order "+orderID)
}

// UploadCreditNote starts the upload of a credit note again (`starter
// credit-note upload`), like UploadInvoice.
func (a *App) UploadCreditNote(ctx context.Context, number string) (client.WorkflowRun, error) {
	cn, err := a.Orders.CreditNote(ctx, number)
	if err != nil {
		return nil, err
	}
	return a.uploadAgain(ctx, activities.TaxDocumentInput{AmazonOrderID: cn.AmazonOrderID, DocumentNumber: cn.Number,
		DocumentType: spapi.DocumentTypeCreditNote}, "credit note "+cn.Number+" of order "+cn.AmazonOrderID)
}

func (a *App) uploadAgain(ctx context.Context, in activities.TaxDocumentInput, what string) (client.WorkflowRun, error) {
	u, err := a.TaxUploads().Get(ctx, in.DocumentNumber)
	switch {
	case err == nil && u.State == taxupload.StateAccepted:
		return nil, fmt.Errorf("%s: %w (feed %s)", what, ErrUploadAccepted, u.FeedID)
	case err != nil && !errors.Is(err, taxupload.ErrNotFound):
		return nil, err
	}
	run, err := a.Temporal.ExecuteWorkflow(ctx, TaxDocumentUploadOptions(in, a.Config.TaskQueue, true), workflows.TaxDocumentUploadName,
		workflows.TaxDocumentUploadInput{AmazonOrderID: in.AmazonOrderID, DocumentNumber: in.DocumentNumber, DocumentType: in.DocumentType})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return nil, fmt.Errorf("%s: its upload %s is still running", what, workflows.TaxDocumentUploadWorkflowID(in.DocumentNumber))
	}
	return run, err
}

// StartCreditNoteUpload sends a credit note issued outside the order's
// lifecycle (after it ended: `starter credit-note issue`) to Amazon when
// DPP_UPLOAD_INVOICES is on; started is false when uploads are off or the
// note's upload ran before.
func (a *App) StartCreditNoteUpload(ctx context.Context, orderID, number string) (started bool, err error) {
	if !a.Config.UploadInvoices {
		return false, nil
	}
	return a.taxDocumentUploads().Start(ctx, activities.TaxDocumentInput{AmazonOrderID: orderID, DocumentNumber: number,
		DocumentType: spapi.DocumentTypeCreditNote})
}

func (a *App) taxDocumentUploads() *taxDocumentUploads {
	return &taxDocumentUploads{c: a.Temporal, taskQueue: a.Config.TaskQueue}
}
