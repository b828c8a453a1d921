package spapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// Feeds API 2021-06-30 (models/feeds-api-model/feeds_2021-06-30.json).
const (
	FeedsPath         = "/feeds/2021-06-30/feeds"
	FeedDocumentsPath = "/feeds/2021-06-30/documents"

	// FeedTypeUploadVATInvoice uploads a seller's VAT invoice or credit note
	// (a PDF) for an order; its metadata travels in the feed options.
	FeedTypeUploadVATInvoice = "UPLOAD_VAT_INVOICE"
	// ContentTypePDF is the content type of an UPLOAD_VAT_INVOICE document.
	ContentTypePDF = "application/pdf"
)

// Feed option keys of UPLOAD_VAT_INVOICE. Amazon wants amounts as decimals
// in the order's currency ("12.34") and documenttype Invoice or CreditNote.
const (
	FeedOptionOrderID        = "metadata:orderid"
	FeedOptionInvoiceNumber  = "metadata:invoicenumber"
	FeedOptionTotalAmount    = "metadata:totalamount"
	FeedOptionTotalVATAmount = "metadata:totalvatamount"
	FeedOptionDocumentType   = "metadata:documenttype"
)

// Document types of UPLOAD_VAT_INVOICE's metadata:documenttype.
const (
	DocumentTypeInvoice    = "Invoice"
	DocumentTypeCreditNote = "CreditNote"
)

// Processing statuses of a feed (Feed.ProcessingStatus).
const (
	FeedInQueue    = "IN_QUEUE"
	FeedInProgress = "IN_PROGRESS"
	FeedDone       = "DONE"
	FeedFatal      = "FATAL"
	FeedCancelled  = "CANCELLED"
)

// FeedDocument is createFeedDocument's and getFeedDocument's answer: where to
// upload the feed's content or download a result, for 5 minutes.
type FeedDocument struct {
	FeedDocumentID string `json:"feedDocumentId"`
	URL            string `json:"url"`
	// CompressionAlgorithm is "GZIP" when the content must be decompressed.
	CompressionAlgorithm string `json:"compressionAlgorithm,omitempty"`
}

func (d *FeedDocument) check() error {
	switch {
	case d.FeedDocumentID == "":
		return &ValidationError{"feedDocumentId", problemMissing}
	case d.URL == "":
		return &ValidationError{"url", problemMissing}
	case !presignedURL(d.URL):
		return &ValidationError{"url", "not an absolute http or https URL"}
	case d.CompressionAlgorithm != "" && d.CompressionAlgorithm != "GZIP":
		return &ValidationError{"compressionAlgorithm", "not GZIP"}
	}
	return nil
}

// presignedURL accepts an absolute http(s) URL; unlike the endpoint, a
// pre-signed URL carries its signature in the query.
func presignedURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// CreateFeedSpec is createFeed's body.
type CreateFeedSpec struct {
	FeedType            string            `json:"feedType"`
	MarketplaceIDs      []string          `json:"marketplaceIds"`
	InputFeedDocumentID string            `json:"inputFeedDocumentId"`
	FeedOptions         map[string]string `json:"feedOptions,omitempty"`
}

// Feed is getFeed's answer.
type Feed struct {
	FeedID               string   `json:"feedId"`
	FeedType             string   `json:"feedType"`
	MarketplaceIDs       []string `json:"marketplaceIds,omitempty"`
	CreatedTime          Time     `json:"createdTime"`
	ProcessingStatus     string   `json:"processingStatus"`
	ProcessingStartTime  Time     `json:"processingStartTime,omitzero"`
	ProcessingEndTime    Time     `json:"processingEndTime,omitzero"`
	ResultFeedDocumentID string   `json:"resultFeedDocumentId,omitempty"`
}

var feedStatuses = []string{FeedInQueue, FeedInProgress, FeedDone, FeedFatal, FeedCancelled}

// Finished reports whether Amazon is done with the feed (DONE, FATAL or CANCELLED).
func (f *Feed) Finished() bool {
	return f.ProcessingStatus == FeedDone || f.ProcessingStatus == FeedFatal || f.ProcessingStatus == FeedCancelled
}

// CreateFeedDocument asks for a feed document to upload content of
// contentType to (POST /feeds/2021-06-30/documents).
func (c *Client) CreateFeedDocument(ctx context.Context, contentType string) (*FeedDocument, error) {
	if contentType == "" {
		return nil, fmt.Errorf("spapi %s: %w: contentType is required", OpCreateFeedDocument, ErrInvalidParams)
	}
	body, _ := json.Marshal(map[string]string{"contentType": contentType})
	var out FeedDocument
	if err := c.call(ctx, OpCreateFeedDocument, http.MethodPost, FeedDocumentsPath, "", body, &out, out.check); err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadFeedDocument PUTs content to a feed document's pre-signed URL. The
// URL is its own authorisation: no access token goes with it. Transport
// errors and 5xx are retried like any call.
func (c *Client) UploadFeedDocument(ctx context.Context, doc *FeedDocument, contentType string, content []byte) error {
	if doc == nil || doc.check() != nil {
		return fmt.Errorf("spapi %s: %w: a feed document from CreateFeedDocument is required", OpUploadFeedDocument, ErrInvalidParams)
	}
	_, err := c.presigned(ctx, OpUploadFeedDocument, http.MethodPut, doc.URL, contentType, content)
	return err
}

// CreateFeed creates a feed from an uploaded document (POST
// /feeds/2021-06-30/feeds) and returns its feedId.
func (c *Client) CreateFeed(ctx context.Context, spec CreateFeedSpec) (string, error) {
	switch {
	case spec.FeedType == "":
		return "", fmt.Errorf("spapi %s: %w: FeedType is required", OpCreateFeed, ErrInvalidParams)
	case spec.InputFeedDocumentID == "":
		return "", fmt.Errorf("spapi %s: %w: InputFeedDocumentID is required", OpCreateFeed, ErrInvalidParams)
	case len(spec.MarketplaceIDs) < 1 || len(spec.MarketplaceIDs) > 25:
		return "", fmt.Errorf("spapi %s: %w: MarketplaceIDs must have 1 to 25 IDs", OpCreateFeed, ErrInvalidParams)
	}
	body, _ := json.Marshal(spec)
	var out struct {
		FeedID string `json:"feedId"`
	}
	err := c.call(ctx, OpCreateFeed, http.MethodPost, FeedsPath, "", body, &out, func() error {
		if out.FeedID == "" {
			return &ValidationError{"feedId", problemMissing}
		}
		return nil
	})
	return out.FeedID, err
}

// GetFeed returns a feed's processing status (GET /feeds/2021-06-30/feeds/{feedId}).
func (c *Client) GetFeed(ctx context.Context, feedID string) (*Feed, error) {
	if feedID == "" {
		return nil, fmt.Errorf("spapi %s: %w: feedID is required", OpGetFeed, ErrInvalidParams)
	}
	var out Feed
	err := c.get(ctx, OpGetFeed, FeedsPath+"/"+url.PathEscape(feedID), "", &out, func() error {
		switch {
		case out.FeedID != feedID:
			return &ValidationError{"feedId", "not the requested feed"}
		case out.FeedType == "":
			return &ValidationError{"feedType", problemMissing}
		case out.CreatedTime.IsZero():
			return &ValidationError{"createdTime", problemMissing}
		case !slices.Contains(feedStatuses, out.ProcessingStatus):
			return &ValidationError{"processingStatus", "missing or not one of " + strings.Join(feedStatuses, ", ")}
		case out.ProcessingStatus == FeedDone && out.ResultFeedDocumentID == "":
			return &ValidationError{"resultFeedDocumentId", "missing for a DONE feed"}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetFeedDocument returns where to download a feed document, such as a feed's
// processing report (GET /feeds/2021-06-30/documents/{feedDocumentId}).
func (c *Client) GetFeedDocument(ctx context.Context, feedDocumentID string) (*FeedDocument, error) {
	if feedDocumentID == "" {
		return nil, fmt.Errorf("spapi %s: %w: feedDocumentID is required", OpGetFeedDocument, ErrInvalidParams)
	}
	var out FeedDocument
	err := c.get(ctx, OpGetFeedDocument, FeedDocumentsPath+"/"+url.PathEscape(feedDocumentID), "", &out, func() error {
		if err := out.check(); err != nil {
			return err
		}
		if out.FeedDocumentID != feedDocumentID {
			return &ValidationError{"feedDocumentId", "not the requested document"}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DownloadFeedDocument fetches a feed document's content from its pre-signed
// URL (no access token) and decompresses it when it is GZIP.
func (c *Client) DownloadFeedDocument(ctx context.Context, doc *FeedDocument) ([]byte, error) {
	if doc == nil || doc.check() != nil {
		return nil, fmt.Errorf("spapi %s: %w: a feed document from GetFeedDocument is required", OpDownloadFeedDocument, ErrInvalidParams)
	}
	b, err := c.presigned(ctx, OpDownloadFeedDocument, http.MethodGet, doc.URL, "", nil)
	if err != nil || doc.CompressionAlgorithm != "GZIP" {
		return b, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, &ResponseError{Operation: OpDownloadFeedDocument, Problem: "body: not GZIP as compressionAlgorithm says"}
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxBodyBytes+1))
	if err != nil {
		return nil, &ResponseError{Operation: OpDownloadFeedDocument, Problem: "body: corrupt GZIP"}
	}
	if len(out) > maxBodyBytes {
		return nil, &ResponseError{Operation: OpDownloadFeedDocument, Problem: errBodyTooLarge.Error()}
	}
	return out, nil
}

// presigned sends one request to a pre-signed document URL, retrying what is
// retryable like call does, and returns the 2xx body. Neither the URL (its
// query is a credential) nor the body appear in errors or logs.
func (c *Client) presigned(ctx context.Context, op, method, u, contentType string, content []byte) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		b, err := c.presignedOnce(ctx, op, method, u, contentType, content)
		if err == nil || !IsRetryable(err) {
			return b, err
		}
		if attempt >= c.maxAttempts {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		}
	}
}

func (c *Client) presignedOnce(ctx context.Context, op, method, u, contentType string, content []byte) ([]byte, error) {
	var body io.Reader
	if content != nil {
		body = bytes.NewReader(content)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("spapi %s: building request: invalid pre-signed URL", op)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error would print the signed URL
		}
		return nil, &TransportError{Operation: op, Err: err}
	}
	b, err := readBody(resp)
	c.log.Debug("spapi: response", zap.String("operation", op), zap.Int("status", resp.StatusCode))
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return nil, &ResponseError{Operation: op, Problem: err.Error()}
		}
		return nil, &TransportError{Operation: op, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &Error{Operation: op, StatusCode: resp.StatusCode}
	}
	return b, nil
}

// ProcessingReport is a feed's processing report: Amazon's XML
// ProcessingReport (AmazonEnvelope, MessageType ProcessingReport) with its
// summary counts and one Result per message that has an error or warning.
type ProcessingReport struct {
	// StatusCode is "Complete" when Amazon processed the whole feed.
	StatusCode  string
	Processed   int
	Successful  int
	WithError   int
	WithWarning int
	Results     []ReportResult
}

// ReportResult is one error or warning of a processing report. Code is the
// ResultMessageCode (e.g. INVALID_INVOICE_NUMBER). Amazon's ResultDescription
// is never decoded: it is text about our document, and a full invoice's PDF
// carries the buyer's name and address, which the text may quote.
type ReportResult struct {
	MessageID  int
	ResultCode string // "Error" or "Warning"
	Code       string
}

type xmlEnvelope struct {
	XMLName     xml.Name `xml:"AmazonEnvelope"`
	MessageType string   `xml:"MessageType"`
	Report      *struct {
		StatusCode string `xml:"StatusCode"`
		Summary    *struct {
			Processed   int `xml:"MessagesProcessed"`
			Successful  int `xml:"MessagesSuccessful"`
			WithError   int `xml:"MessagesWithError"`
			WithWarning int `xml:"MessagesWithWarning"`
		} `xml:"ProcessingSummary"`
		Results []struct {
			MessageID  int    `xml:"MessageID"`
			ResultCode string `xml:"ResultCode"`
			Code       string `xml:"ResultMessageCode"`
		} `xml:"Result"`
	} `xml:"Message>ProcessingReport"`
}

// ParseProcessingReport parses a processing report. A report that is not
// one (bad XML, another message type, no summary) is a *ValidationError
// naming what is wrong.
func ParseProcessingReport(b []byte) (*ProcessingReport, error) {
	var env xmlEnvelope
	if err := xml.Unmarshal(b, &env); err != nil {
		return nil, &ValidationError{"AmazonEnvelope", "not a well-formed XML envelope"}
	}
	switch {
	case env.MessageType != "ProcessingReport":
		return nil, &ValidationError{"AmazonEnvelope.MessageType", "not ProcessingReport"}
	case env.Report == nil:
		return nil, &ValidationError{"AmazonEnvelope.Message.ProcessingReport", problemMissing}
	case env.Report.Summary == nil:
		return nil, &ValidationError{"ProcessingReport.ProcessingSummary", problemMissing}
	}
	s := env.Report.Summary
	r := &ProcessingReport{StatusCode: env.Report.StatusCode, Processed: s.Processed, Successful: s.Successful,
		WithError: s.WithError, WithWarning: s.WithWarning}
	for i, res := range env.Report.Results {
		if res.ResultCode != "Error" && res.ResultCode != "Warning" {
			return nil, &ValidationError{fmt.Sprintf("ProcessingReport.Result[%d].ResultCode", i), "not Error or Warning"}
		}
		r.Results = append(r.Results, ReportResult{MessageID: res.MessageID, ResultCode: res.ResultCode,
			Code: capMessage(res.Code)})
	}
	return r, nil
}

// Result codes of UPLOAD_VAT_INVOICE processing reports. Amazon publishes no
// schema for them (see ../shared/spapi-models/README.md); these are the ones
// our sandbox produces, named after what Amazon's seller-central reports say.
const (
	// Amazon failed inside: submit the same document again later.
	ResultInternalError      = "INTERNAL_ERROR"
	ResultServiceUnavailable = "SERVICE_UNAVAILABLE"
	// Our document is wrong: no resubmission fixes it without a person.
	ResultInvalidInvoiceNumber = "INVALID_INVOICE_NUMBER"
	ResultOrderNotFound        = "ORDER_NOT_FOUND"
	ResultAmountMismatch       = "AMOUNT_MISMATCH"
	ResultDuplicateInvoice     = "DUPLICATE_INVOICE"
	ResultInvalidDocument      = "INVALID_DOCUMENT"
)

// transientResults are the errors worth resubmitting. Every other error code,
// including one we do not know, is permanent: an operator looks at it rather
// than us resubmitting a document Amazon may be refusing for good.
var transientResults = []string{ResultInternalError, ResultServiceUnavailable}

// FeedOutcome is what a finished feed means for the document it carried.
type FeedOutcome struct {
	Accepted bool
	// Transient: the rejection may go away when the same document is sent again.
	Transient bool
	// Codes are the error codes (the processing status FATAL or CANCELLED for a
	// feed Amazon did not finish); empty when accepted.
	Codes []string
	// Processed, Successful and WithError are the report's counts.
	Processed, Successful, WithError int
}

// JudgeFeed decides what a finished feed and its report (nil for FATAL and
// CANCELLED feeds, which have none to rely on) mean: accepted when DONE with
// no error, transient when Amazon did not finish (FATAL, CANCELLED: Amazon's
// guide says to submit again) or every error is an Amazon-side one, permanent
// otherwise.
func JudgeFeed(f *Feed, r *ProcessingReport) FeedOutcome {
	if f.ProcessingStatus != FeedDone {
		return FeedOutcome{Transient: true, Codes: []string{f.ProcessingStatus}}
	}
	if r == nil {
		return FeedOutcome{Transient: true, Codes: []string{"NO_REPORT"}}
	}
	out := FeedOutcome{Processed: r.Processed, Successful: r.Successful, WithError: r.WithError, Transient: true}
	for _, res := range r.Results {
		if res.ResultCode != "Error" {
			continue
		}
		code := res.Code
		if code == "" {
			code = "UNKNOWN"
		}
		out.Codes = append(out.Codes, code)
		if !slices.Contains(transientResults, code) {
			out.Transient = false
		}
	}
	if len(out.Codes) == 0 && r.WithError > 0 {
		out.Codes, out.Transient = []string{"UNKNOWN"}, false
	}
	if len(out.Codes) == 0 && r.Successful == 0 {
		out.Codes, out.Transient = []string{"NOTHING_PROCESSED"}, true
	}
	out.Accepted = len(out.Codes) == 0
	if out.Accepted {
		out.Transient = false
	}
	return out
}
