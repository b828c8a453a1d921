package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/taxupload"
)

// TaxDocumentUploadName uploads one tax document (a VAT invoice, later a credit
// note) to Amazon with the Feeds API (UPLOAD_VAT_INVOICE). It is a workflow of
// its own, not a step of the order's lifecycle, because it can outlive it: a
// cancelled order is purged at once, and Amazon's processing takes minutes, an
// outage days.
const TaxDocumentUploadName = "TaxDocumentUpload"

// TaxDocumentUploadWorkflowID is the upload's workflow ID:
// tax-document-upload-<documentNumber>.
func TaxDocumentUploadWorkflowID(documentNumber string) string {
	return "tax-document-upload-" + documentNumber
}

// TaxDocumentUploadInput is the upload's input: {amazonOrderId, documentNumber,
// documentType: "Invoice" | "CreditNote"} (schemas/json/tax-document-upload.input.schema.json).
type TaxDocumentUploadInput struct {
	AmazonOrderID  string `json:"amazonOrderId"`
	DocumentNumber string `json:"documentNumber"`
	DocumentType   string `json:"documentType"`
	problem        error
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *TaxDocumentUploadInput) UnmarshalJSON(b []byte) error {
	var v struct {
		AmazonOrderID  *string `json:"amazonOrderId"`
		DocumentNumber *string `json:"documentNumber"`
		DocumentType   *string `json:"documentType"`
	}
	if err := errors.Join(decodeStrict(b, &v), exactFields(b, &v)); err != nil {
		in.problem = firstError(err)
		return nil
	}
	for _, f := range []struct {
		dst *string
		src *string
	}{{&in.AmazonOrderID, v.AmazonOrderID}, {&in.DocumentNumber, v.DocumentNumber}, {&in.DocumentType, v.DocumentType}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	return nil
}

var documentNumberPattern = regexp.MustCompile(`^[A-Za-z0-9/_-]{1,64}$`)

// Validate names the first thing wrong with the input.
func (in TaxDocumentUploadInput) Validate() error {
	const want = `want {"amazonOrderId": "205-1234567-7654321", "documentNumber": "INV-000042", "documentType": "Invoice"}`
	switch {
	case in.problem != nil:
		return fmt.Errorf("TaxDocumentUpload input: %w; %s", in.problem, want)
	case !amazonOrderIDPattern.MatchString(in.AmazonOrderID):
		return fmt.Errorf(`TaxDocumentUpload input: field "amazonOrderId" is missing or not an Amazon order id (3-7-7 digits); %s`, want)
	case !documentNumberPattern.MatchString(in.DocumentNumber):
		return fmt.Errorf(`TaxDocumentUpload input: field "documentNumber" is missing or not 1 to 64 letters, digits, '/', '_' or '-'; %s`, want)
	case in.DocumentType != spapi.DocumentTypeInvoice && in.DocumentType != spapi.DocumentTypeCreditNote:
		return fmt.Errorf(`TaxDocumentUpload input: field "documentType" must be "Invoice" or "CreditNote"; %s`, want)
	}
	return nil
}

// TaxDocumentUploadStatus answers the upload's `status` query. No PII.
type TaxDocumentUploadStatus struct {
	AmazonOrderID  string `json:"amazonOrderId"`
	DocumentNumber string `json:"documentNumber"`
	DocumentType   string `json:"documentType"`
	// State is submitting, processing, accepted or rejected.
	State      string `json:"state"`
	FeedID     string `json:"feedId,omitempty"`
	ResultCode string `json:"resultCode,omitempty"`
	// Attempts counts the document's submissions, over every run (a transient
	// rejection submits again, and so does an operator's re-run).
	Attempts    int   `json:"attempts"`
	EvidenceSeq int64 `json:"evidenceSeq,omitempty"`
}

// TaxUploadOptions are the upload's retry settings.
type TaxUploadOptions struct {
	// MaxAttempts bounds the submissions of one document in one run: a transient
	// rejection (FATAL, CANCELLED, Amazon's internal error) submits again until then.
	MaxAttempts int
	// RetryDelay is the wait before the second submission; it doubles for each
	// further one.
	RetryDelay time.Duration
	// HeartbeatTimeout is how soon a worker that died while waiting for Amazon
	// is noticed and the wait handed to another (it heartbeats after each poll).
	HeartbeatTimeout time.Duration
}

// DefaultTaxUploadOptions: five submissions, 1, 2, 4 and 8 minutes apart; a
// dead poller noticed within 2 minutes.
var DefaultTaxUploadOptions = TaxUploadOptions{MaxAttempts: 5, RetryDelay: time.Minute, HeartbeatTimeout: 2 * time.Minute}

var (
	// Submitting makes two SP-API calls and an upload; one getFeed poll per
	// PollInterval within the poll, which heartbeats.
	submitOptions = workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute, RetryPolicy: uploadRetry()}
	awaitOptions  = workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Hour, RetryPolicy: uploadRetry()}
)

// uploadRetry retries steps through an SP-API outage for days without a
// crowded history: a retry adds no event.
func uploadRetry() *temporal.RetryPolicy {
	p := retry()
	p.MaximumInterval = 30 * time.Minute
	p.NonRetryableErrorTypes = append(p.NonRetryableErrorTypes, activities.ErrTaxDocumentUnavailable)
	return p
}

// TaxDocumentUpload submits the document, waits for Amazon's verdict and
// submits again after a transient rejection, up to MaxAttempts. It completes
// when Amazon accepts or rejects the document for good (state accepted or
// rejected, each with its evidence entry); `starter invoice upload` runs it
// again after an operator fixed a rejected document.
func (o Options) TaxDocumentUpload(ctx workflow.Context, input TaxDocumentUploadInput) (*TaxDocumentUploadStatus, error) {
	if err := input.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	if id := workflow.GetInfo(ctx).WorkflowExecution.ID; id != TaxDocumentUploadWorkflowID(input.DocumentNumber) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"TaxDocumentUpload input: documentNumber does not match the workflow ID %q; start it with ID %q",
			id, TaxDocumentUploadWorkflowID(input.DocumentNumber)), ErrInvalidInput, nil)
	}
	in := activities.TaxDocumentInput{AmazonOrderID: input.AmazonOrderID, DocumentNumber: input.DocumentNumber,
		DocumentType: input.DocumentType}
	opts := o.TaxUpload
	if opts.MaxAttempts < 1 {
		opts = DefaultTaxUploadOptions
	}
	st := &TaxDocumentUploadStatus{AmazonOrderID: in.AmazonOrderID, DocumentNumber: in.DocumentNumber,
		DocumentType: in.DocumentType, State: taxupload.StateSubmitting}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (*TaxDocumentUploadStatus, error) { return st, nil }); err != nil {
		return nil, err
	}
	var a *activities.TaxUpload
	submitCtx := withSummary(ctx, onQueue(submitOptions, o.SPAPIFeedsTaskQueue), "upload the "+in.DocumentType+" PDF and create the feed")
	await := awaitOptions
	await.HeartbeatTimeout = opts.HeartbeatTimeout
	if await.HeartbeatTimeout <= 0 {
		await.HeartbeatTimeout = DefaultTaxUploadOptions.HeartbeatTimeout
	}
	awaitCtx := withSummary(ctx, await, "wait for Amazon's processing report")
	// A run numbers its own submissions; the document's record counts them over
	// every run, so a re-run submits anew instead of finding the old feed.
	for n, delay := 1, opts.RetryDelay; ; n, delay = n+1, delay*2 {
		st.State = taxupload.StateSubmitting
		in.Attempt = n
		var sub activities.TaxDocumentSubmission
		if err := workflow.ExecuteActivity(submitCtx, a.SubmitTaxDocument, in).Get(ctx, &sub); err != nil {
			return nil, err
		}
		st.Attempts, st.FeedID, st.State, st.ResultCode = sub.Attempt, sub.FeedID, sub.State, sub.ResultCode
		if sub.State == taxupload.StateAccepted || sub.State == taxupload.StateRejected {
			return st, nil // finished before (the document was accepted by an earlier run)
		}
		var res activities.TaxDocumentFeedResult
		if err := workflow.ExecuteActivity(awaitCtx, a.AwaitTaxDocumentFeed, activities.TaxDocumentFeedInput{
			DocumentNumber: in.DocumentNumber, FeedID: sub.FeedID, Attempt: sub.Attempt, LastAttempt: n >= opts.MaxAttempts,
		}).Get(ctx, &res); err != nil {
			return nil, err
		}
		st.State, st.ResultCode, st.EvidenceSeq = res.State, res.ResultCode, res.EvidenceSeq
		if res.State != taxupload.StateSubmitting {
			return st, nil
		}
		if err := workflow.NewTimerWithOptions(ctx, delay, workflow.TimerOptions{
			Summary: fmt.Sprintf("%s was rejected for a transient reason (%s): submit again", in.DocumentNumber, res.ResultCode)}).Get(ctx, nil); err != nil {
			return nil, err
		}
	}
}
