package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/taxupload"
)

// ErrTaxDocumentUnavailable: the document to upload does not exist (any more),
// or its type has no source yet: retrying cannot help.
const ErrTaxDocumentUnavailable = "TaxDocumentUnavailable"

// FeedsAPI is the part of the SP-API client an upload uses.
type FeedsAPI interface {
	CreateFeedDocument(ctx context.Context, contentType string) (*spapi.FeedDocument, error)
	UploadFeedDocument(ctx context.Context, doc *spapi.FeedDocument, contentType string, content []byte) error
	CreateFeed(ctx context.Context, spec spapi.CreateFeedSpec) (string, error)
	GetFeed(ctx context.Context, feedID string) (*spapi.Feed, error)
	GetFeedDocument(ctx context.Context, feedDocumentID string) (*spapi.FeedDocument, error)
	DownloadFeedDocument(ctx context.Context, doc *spapi.FeedDocument) ([]byte, error)
}

// TaxDocumentUploads starts TaxDocumentUpload workflows (implemented over the
// Temporal client in internal/app).
type TaxDocumentUploads interface {
	// Start starts the document's upload; started is false when one runs or ran
	// before (the lifecycle starts each document's upload once).
	Start(ctx context.Context, in TaxDocumentInput) (started bool, err error)
}

// TaxUpload is the I/O of the TaxDocumentUpload workflow: it submits a tax
// document to Amazon as an UPLOAD_VAT_INVOICE feed and waits for Amazon's
// verdict, recording each step in tax_document_uploads first.
type TaxUpload struct {
	Store     *taxupload.Store
	Documents *taxupload.Documents
	Feeds     FeedsAPI
	Uploads   TaxDocumentUploads
	// MarketplaceID is the marketplace the feeds are for (the first of SPAPI_MARKETPLACE_IDS).
	MarketplaceID string
	// PollInterval is the time between getFeed calls while Amazon processes a
	// feed; zero means DefaultFeedPollInterval.
	PollInterval time.Duration

	// afterFeedRecorded, when set (tests), runs once the feed is recorded and
	// before the activity returns: a crash there must not cost a second feed.
	afterFeedRecorded func() error
}

// DefaultFeedPollInterval spaces getFeed calls (Amazon's rate is 2/s for the
// seller; a VAT invoice takes minutes to process).
const DefaultFeedPollInterval = 30 * time.Second

// Register registers the upload's activities.
func (a *TaxUpload) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a, registerOptions)
}

// TaxDocumentInput names a tax document to upload: the input of
// TaxDocumentUpload and of its submission. Numbers and ids only.
type TaxDocumentInput struct {
	AmazonOrderID  string `json:"amazonOrderId"`
	DocumentNumber string `json:"documentNumber"`
	// DocumentType is "Invoice" or "CreditNote".
	DocumentType string `json:"documentType"`
	// Attempt numbers the submissions of the document in one workflow run, from
	// 1 (set by the workflow; empty in the workflow's input).
	Attempt int `json:"attempt,omitempty"`
}

// TaxDocumentSubmission is where a submission stands.
type TaxDocumentSubmission struct {
	State  string `json:"state"`
	FeedID string `json:"feedId,omitempty"`
	// Attempt counts the document's submissions over all runs: the one that
	// made FeedID.
	Attempt int `json:"attempt"`
	// ResultCode is the code that finished the document before (accepted or rejected).
	ResultCode string `json:"resultCode,omitempty"`
}

// SubmitTaxDocument creates a feed document, uploads the PDF (opened from the
// sealed tax record, in memory) and creates the UPLOAD_VAT_INVOICE feed, then
// records the feed before returning. A retry of the same attempt finds the
// recorded feed and returns it: one feed per attempt. An accepted document is
// not submitted again.
func (a *TaxUpload) SubmitTaxDocument(ctx context.Context, in TaxDocumentInput) (*TaxDocumentSubmission, error) {
	run := activity.GetInfo(ctx).WorkflowExecution.RunID
	u, err := a.Store.Begin(ctx, in.DocumentNumber, in.DocumentType, in.AmazonOrderID, run, max(in.Attempt, 1))
	if errors.Is(err, taxupload.ErrInvalid) {
		return nil, final(ErrInvalidInput, err)
	}
	if err != nil {
		return nil, err
	}
	out := &TaxDocumentSubmission{State: u.State, FeedID: u.FeedID, Attempt: u.Attempts, ResultCode: u.ResultCode}
	if u.State != taxupload.StateSubmitting {
		return out, nil
	}
	doc, err := a.Documents.Open(ctx, in.DocumentType, in.AmazonOrderID, in.DocumentNumber)
	switch {
	case errors.Is(err, taxupload.ErrGone):
		return nil, final(ErrTaxDocumentUnavailable, err)
	case errors.Is(err, taxupload.ErrInvalid):
		return nil, final(ErrInvalidInput, err)
	case err != nil:
		return nil, err
	}
	fd, err := a.Feeds.CreateFeedDocument(ctx, spapi.ContentTypePDF)
	if err != nil {
		return nil, uploadError(err)
	}
	if err := a.Feeds.UploadFeedDocument(ctx, fd, spapi.ContentTypePDF, doc.PDF); err != nil {
		return nil, uploadError(err)
	}
	feedID, err := a.Feeds.CreateFeed(ctx, spapi.CreateFeedSpec{FeedType: spapi.FeedTypeUploadVATInvoice,
		MarketplaceIDs: []string{a.MarketplaceID}, InputFeedDocumentID: fd.FeedDocumentID,
		FeedOptions: taxupload.FeedOptions(in.DocumentType, doc)})
	if err != nil {
		return nil, uploadError(err)
	}
	if err := a.Store.RecordFeed(ctx, in.DocumentNumber, u.Attempts, fd.FeedDocumentID, feedID); err != nil {
		return nil, err
	}
	if a.afterFeedRecorded != nil {
		if err := a.afterFeedRecorded(); err != nil {
			return nil, err
		}
	}
	out.State, out.FeedID = taxupload.StateProcessing, feedID
	return out, nil
}

// uploadError: a request Amazon refuses as malformed (400), a feed or document
// it does not know (404), an unusable answer or an invalid argument is final;
// the rest (throttling, outages, a 403 while credentials are being fixed) is
// retried by the activity's policy, as the lifecycle's steps are.
func uploadError(err error) error {
	var apiErr *spapi.Error
	var respErr *spapi.ResponseError
	switch {
	case errors.Is(err, spapi.ErrInvalidParams), errors.As(err, &respErr):
		return final(ErrInvalidInput, err)
	case errors.As(err, &apiErr) && (apiErr.StatusCode == 400 || apiErr.NotFound()):
		return final(ErrInvalidInput, err)
	}
	return err
}

// TaxDocumentFeedInput names the feed to wait for.
type TaxDocumentFeedInput struct {
	DocumentNumber string `json:"documentNumber"`
	FeedID         string `json:"feedId"`
	// Attempt is the submission's number over all runs (TaxDocumentSubmission.Attempt).
	Attempt int `json:"attempt"`
	// LastAttempt: the workflow will not submit again, so a transient rejection is final.
	LastAttempt bool `json:"lastAttempt,omitempty"`
}

// TaxDocumentFeedResult is Amazon's verdict on one feed.
type TaxDocumentFeedResult struct {
	// State is accepted, rejected, or submitting (a transient rejection: submit again).
	State       string   `json:"state"`
	FeedID      string   `json:"feedId"`
	ResultCode  string   `json:"resultCode,omitempty"`
	ResultCodes []string `json:"resultCodes,omitempty"`
	Transient   bool     `json:"transient,omitempty"`
	EvidenceSeq int64    `json:"evidenceSeq,omitempty"`
}

// AwaitTaxDocumentFeed polls getFeed until Amazon has finished the feed,
// heartbeating between polls, then reads the processing report, judges it
// (spapi.JudgeFeed) and records the result: accepted or rejected with its
// evidence entry, or a transient code to submit again. Polling inside one
// activity keeps the workflow's history at three events however long Amazon
// takes; a worker that dies is noticed by the heartbeat timeout and the retry
// polls on.
func (a *TaxUpload) AwaitTaxDocumentFeed(ctx context.Context, in TaxDocumentFeedInput) (*TaxDocumentFeedResult, error) {
	if in.FeedID == "" || in.DocumentNumber == "" || in.Attempt < 1 {
		return nil, final(ErrInvalidInput, errors.New("AwaitTaxDocumentFeed: documentNumber, feedId and attempt are required"))
	}
	interval := a.PollInterval
	if interval <= 0 {
		interval = DefaultFeedPollInterval
	}
	var f *spapi.Feed
	for polls := 1; ; polls++ {
		var err error
		if f, err = a.Feeds.GetFeed(ctx, in.FeedID); err != nil {
			return nil, uploadError(err)
		}
		activity.RecordHeartbeat(ctx, f.ProcessingStatus)
		if f.Finished() {
			break
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	var report *spapi.ProcessingReport
	if f.ProcessingStatus == spapi.FeedDone {
		doc, err := a.Feeds.GetFeedDocument(ctx, f.ResultFeedDocumentID)
		if err != nil {
			return nil, uploadError(err)
		}
		b, err := a.Feeds.DownloadFeedDocument(ctx, doc)
		if err != nil {
			return nil, uploadError(err)
		}
		if report, err = spapi.ParseProcessingReport(b); err != nil {
			return nil, final(ErrInvalidInput, fmt.Errorf("processing report of feed %s: %w", in.FeedID, err))
		}
	}
	outcome := spapi.JudgeFeed(f, report)
	res := taxupload.Result{FeedID: in.FeedID, Outcome: outcome,
		Final: outcome.Accepted || !outcome.Transient || in.LastAttempt}
	u, err := a.Store.Finish(ctx, in.DocumentNumber, in.Attempt, res)
	if err != nil {
		return nil, err
	}
	state := u.State
	if !res.Final {
		state = taxupload.StateSubmitting
	}
	return &TaxDocumentFeedResult{State: state, FeedID: in.FeedID, ResultCode: u.ResultCode, ResultCodes: outcome.Codes,
		Transient: outcome.Transient, EvidenceSeq: u.EvidenceSeq}, nil
}

// StartTaxDocumentUpload starts the document's TaxDocumentUpload workflow (the
// order lifecycle runs it as a local activity once the invoice is issued). A
// second start of the same document is a no-op.
func (a *TaxUpload) StartTaxDocumentUpload(ctx context.Context, in TaxDocumentInput) (bool, error) {
	if err := taxupload.Check(in.DocumentNumber, in.DocumentType, in.AmazonOrderID); err != nil {
		return false, final(ErrInvalidInput, err)
	}
	return a.Uploads.Start(ctx, in)
}
