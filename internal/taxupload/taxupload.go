// Package taxupload keeps the record of tax documents (VAT invoices, credit
// notes) uploaded to Amazon through the Feeds API (UPLOAD_VAT_INVOICE): one
// row per document in tax_document_uploads, each step written before the next
// one starts so a retry never submits a second feed, and an evidence entry when
// Amazon accepts or rejects the document for good. It holds no PII and never
// talks to Temporal or Amazon.
package taxupload

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/spapi"
)

// States of an upload, as the TaxDocumentUpload workflow's status query shows them.
const (
	StateSubmitting = "submitting" // creating the feed document, uploading, creating the feed
	StateProcessing = "processing" // the feed exists; Amazon is processing it
	StateAccepted   = "accepted"
	StateRejected   = "rejected"
)

// Evidence kinds of the log entries an upload writes.
const (
	KindAccepted = "tax-document-upload-accepted"
	KindRejected = "tax-document-upload-rejected"
)

// ErrInvalid is wrapped by errors about arguments that can never work.
var ErrInvalid = errors.New("invalid tax document upload")

var (
	numberPattern  = regexp.MustCompile(`^[A-Za-z0-9/_-]{1,64}$`)
	orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Upload is one document's row.
type Upload struct {
	DocumentNumber string
	DocumentType   string
	AmazonOrderID  string
	State          string
	Attempts       int
	FeedDocumentID string
	FeedID         string
	ResultCode     string
	EvidenceSeq    int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     *time.Time
}

// Store reads and writes tax_document_uploads.
type Store struct {
	Pool   *pgxpool.Pool
	Signer *evidence.Signer
}

func (s *Store) now() time.Time { return time.Now().UTC() }

// Check validates a document's identity: a number, Invoice or CreditNote, an order id.
func Check(number, docType, orderID string) error {
	switch {
	case !numberPattern.MatchString(number):
		return fmt.Errorf("%w: documentNumber must be 1 to 64 letters, digits, '/', '_' or '-'", ErrInvalid)
	case docType != spapi.DocumentTypeInvoice && docType != spapi.DocumentTypeCreditNote:
		return fmt.Errorf("%w: documentType must be %s or %s", ErrInvalid, spapi.DocumentTypeInvoice, spapi.DocumentTypeCreditNote)
	case !orderIDPattern.MatchString(orderID):
		return fmt.Errorf("%w: amazonOrderId must be 1 to 64 letters, digits, '_' or '-'", ErrInvalid)
	}
	return nil
}

const columns = `document_number, document_type, amazon_order_id, state, attempts, COALESCE(feed_document_id, ''),
	COALESCE(feed_id, ''), COALESCE(result_code, ''), COALESCE(evidence_seq, 0), created_at, updated_at, finished_at`

func scan(row pgx.Row) (*Upload, error) {
	var u Upload
	err := row.Scan(&u.DocumentNumber, &u.DocumentType, &u.AmazonOrderID, &u.State, &u.Attempts, &u.FeedDocumentID,
		&u.FeedID, &u.ResultCode, &u.EvidenceSeq, &u.CreatedAt, &u.UpdatedAt, &u.FinishedAt)
	return &u, err
}

// ErrNotFound: no upload of that document has begun.
var ErrNotFound = errors.New("no upload of this tax document")

// Get returns a document's upload.
func (s *Store) Get(ctx context.Context, number string) (*Upload, error) {
	u, err := scan(s.Pool.QueryRow(ctx, `SELECT `+columns+` FROM tax_document_uploads WHERE document_number = $1`, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("document %s: %w", number, ErrNotFound)
	}
	return u, err
}

// ForOrder returns the uploads of an order's documents, oldest first.
func (s *Store) ForOrder(ctx context.Context, orderID string) ([]*Upload, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+columns+` FROM tax_document_uploads WHERE amazon_order_id = $1 ORDER BY created_at, document_number`, orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Upload, error) { return scan(r) })
}

// Begin makes sure the row for submission runAttempt of workflow run runID
// exists and returns it. A row from an earlier submission (of this run after a
// transient rejection, or of an earlier run an operator is repeating) starts a
// new one: attempts plus one, state submitting, its feed forgotten. The same
// submission again (a retried activity) returns the row as it is, with the
// feed it recorded. An accepted document is returned as is: it is never
// submitted again.
func (s *Store) Begin(ctx context.Context, number, docType, orderID, runID string, runAttempt int) (*Upload, error) {
	if err := Check(number, docType, orderID); err != nil {
		return nil, err
	}
	if runAttempt < 1 || runID == "" {
		return nil, fmt.Errorf("%w: a workflow run and a submission number from 1 are required", ErrInvalid)
	}
	now := s.now()
	var u *Upload
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tax_document_uploads (document_number, document_type, amazon_order_id, state,
			attempts, created_at, updated_at) VALUES ($1, $2, $3, 'submitting', 0, $4, $4) ON CONFLICT DO NOTHING`,
			number, docType, orderID, now); err != nil {
			return err
		}
		var err error
		u, err = scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM tax_document_uploads WHERE document_number = $1 FOR UPDATE`, number))
		if err != nil {
			return err
		}
		if u.DocumentType != docType || u.AmazonOrderID != orderID {
			return fmt.Errorf("%w: document %s is the %s of order %s", ErrInvalid, number, u.DocumentType, u.AmazonOrderID)
		}
		var sameRun string
		var doneAttempt int
		if err := tx.QueryRow(ctx, `SELECT run_id, run_attempt FROM tax_document_uploads WHERE document_number = $1`,
			number).Scan(&sameRun, &doneAttempt); err != nil {
			return err
		}
		if u.State == StateAccepted || sameRun == runID && doneAttempt >= runAttempt {
			return nil
		}
		u, err = scan(tx.QueryRow(ctx, `UPDATE tax_document_uploads SET state = 'submitting', attempts = attempts + 1,
			run_id = $2, run_attempt = $3, feed_document_id = NULL, feed_id = NULL, result_code = NULL, evidence_seq = NULL,
			finished_at = NULL, updated_at = $4 WHERE document_number = $1 RETURNING `+columns, number, runID, runAttempt, now))
		return err
	})
	return u, err
}

// RecordFeed records the feed that carries the document (and the feed
// document it was uploaded as): state processing. Called before anything else
// happens, so a retry finds the feed instead of creating another.
func (s *Store) RecordFeed(ctx context.Context, number string, attempt int, feedDocumentID, feedID string) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE tax_document_uploads SET state = 'processing', feed_document_id = $3, feed_id = $4,
		updated_at = $5 WHERE document_number = $1 AND attempts = $2 AND state = 'submitting'`,
		number, attempt, feedDocumentID, feedID, s.now())
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("record feed of %s: attempt %d is not submitting", number, attempt)
	}
	return err
}

// Result is how a feed ended for the document.
type Result struct {
	FeedID string
	// Outcome is the judgement of the feed and its report.
	Outcome spapi.FeedOutcome
	// Final: accepted, or rejected for good (a permanent code, or the last
	// allowed attempt of a transient one). Not final: a transient rejection that
	// will be submitted again.
	Final bool
}

// Evidence is the body of an accepted or rejected upload's evidence entry: ids,
// counts and codes, never a value from the document.
type Evidence struct {
	DocumentNumber string   `json:"documentNumber"`
	DocumentType   string   `json:"documentType"`
	AmazonOrderID  string   `json:"amazonOrderId"`
	FeedType       string   `json:"feedType"`
	FeedID         string   `json:"feedId"`
	Attempt        int      `json:"attempt"`
	ResultCodes    []string `json:"resultCodes,omitempty"`
	Transient      bool     `json:"transient,omitempty"`
	Processed      int      `json:"messagesProcessed"`
	Successful     int      `json:"messagesSuccessful"`
	WithError      int      `json:"messagesWithError"`
}

// Finish records how the feed ended. A final result sets the state (accepted
// or rejected) and appends its evidence entry in the same transaction; a
// transient one only keeps its code for the status. Finishing the same feed
// again returns the recorded row.
func (s *Store) Finish(ctx context.Context, number string, attempt int, r Result) (*Upload, error) {
	code := ""
	if len(r.Outcome.Codes) > 0 {
		code = r.Outcome.Codes[0]
	}
	now := s.now()
	var u *Upload
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		u, err = scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM tax_document_uploads WHERE document_number = $1 FOR UPDATE`, number))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("document %s: %w", number, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if u.FeedID != r.FeedID || u.Attempts != attempt {
			return fmt.Errorf("finish upload of %s: feed %s attempt %d is not the recorded one", number, r.FeedID, attempt)
		}
		if u.State == StateAccepted || u.State == StateRejected {
			return nil
		}
		if !r.Final {
			u, err = scan(tx.QueryRow(ctx, `UPDATE tax_document_uploads SET result_code = $2, updated_at = $3
				WHERE document_number = $1 RETURNING `+columns, number, code, now))
			return err
		}
		state, kind := StateRejected, KindRejected
		if r.Outcome.Accepted {
			state, kind = StateAccepted, KindAccepted
		}
		rec, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: kind, Subject: number, IdempotencyKey: fmt.Sprintf("tax-upload/%s/%s", number, r.FeedID),
			Body: Evidence{DocumentNumber: number, DocumentType: u.DocumentType, AmazonOrderID: u.AmazonOrderID,
				FeedType: spapi.FeedTypeUploadVATInvoice, FeedID: r.FeedID, Attempt: attempt, ResultCodes: r.Outcome.Codes,
				Transient: r.Outcome.Transient, Processed: r.Outcome.Processed, Successful: r.Outcome.Successful,
				WithError: r.Outcome.WithError},
		}, now)
		if err != nil {
			return err
		}
		u, err = scan(tx.QueryRow(ctx, `UPDATE tax_document_uploads SET state = $2, result_code = NULLIF($3, ''), evidence_seq = $4,
			updated_at = $5, finished_at = $5 WHERE document_number = $1 RETURNING `+columns, number, state, code, rec.Seq, now))
		return err
	})
	return u, err
}
