package orders

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/evidence"
)

// KindOrderProblem is the evidence kind of a step of an order that failed for
// good: the order goes on to its purge, and the problem stays on record.
const KindOrderProblem = "order-problem"

// Problem codes of an order's invoice step (orders.problem, the evidence log and
// the OrderProblem search attribute). They are codes, never free text.
const (
	// ProblemInvoiceNoBuyerAddress: a full VAT invoice needs the buyer's name and
	// address, and SP-API returned none (an app without the restricted PII role).
	ProblemInvoiceNoBuyerAddress = "invoice-no-buyer-address"
	// ProblemInvoiceNoLines: no line with a quantity above zero.
	ProblemInvoiceNoLines = "invoice-no-lines"
	// ProblemInvoiceInvalidLine: a line cannot be invoiced (e.g. a negative price).
	ProblemInvoiceInvalidLine = "invoice-invalid-line"
	// ProblemInvoiceRender: the PDF could not be rendered.
	ProblemInvoiceRender = "invoice-render-failed"
	// ProblemInvoiceFailed: any other final failure of the invoice step.
	ProblemInvoiceFailed = "invoice-failed"
)

var problemCodePattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// ProblemError is a final failure with a problem code; its message names what
// is wrong, never a value.
type ProblemError struct {
	Code string
	Err  error
}

func (e *ProblemError) Error() string { return e.Err.Error() }
func (e *ProblemError) Unwrap() error { return e.Err }

// problem wraps err, an ErrInvalidOrder, with a code.
func problem(code string, format string, args ...any) error {
	return &ProblemError{Code: code, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidOrder}, args...)...)}
}

// initialPurgeDue is the due time recorded when an order is sealed: its reported
// delivery or, until one is reported, its promised latest delivery, plus the
// retention; now for an order cancelled before it was sealed.
func (s *Service) initialPurgeDue(f *Facts) time.Time {
	if f.Cancelled {
		return s.now()
	}
	if f.DeliveredAt != nil {
		return f.DeliveredAt.Add(s.Policy.PIIRetention)
	}
	return f.LatestDeliveryAt.Add(s.Policy.PIIRetention)
}

// RecordRetention records an order's purge due time and legal-hold state, as its
// workflow knows them, so RetentionAudit can purge the order if the workflow
// never does. Writing the same values again changes nothing; a purged order is
// left as it is.
func (s *Service) RecordRetention(ctx context.Context, orderID string, dueAt time.Time, onHold bool) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE orders SET purge_due_at = $2, on_hold = $3
		WHERE amazon_order_id = $1 AND purged_at IS NULL`, orderID, dueAt.UTC(), onHold)
	if err != nil {
		return fmt.Errorf("record retention of %s: %w", orderID, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Facts(ctx, orderID); errors.Is(err, ErrNotSealed) {
			return fmt.Errorf("record retention of %s: %w", orderID, ErrNotSealed)
		}
	}
	return nil
}

// orderProblemBody is the evidence body of an order problem: ids and codes only.
type orderProblemBody struct {
	AmazonOrderID string `json:"amazonOrderId"`
	Step          string `json:"step"`
	Code          string `json:"code"`
	Consequence   string `json:"consequence"`
}

// RecordProblem records that a step of the order failed for good: the code on the
// order's row and a signed evidence entry, in one transaction. Recording the same
// step again returns the first entry.
func (s *Service) RecordProblem(ctx context.Context, orderID, step, code string) (evidence.Record, error) {
	if !problemCodePattern.MatchString(step) || !problemCodePattern.MatchString(code) {
		return evidence.Record{}, errors.New("record problem: step and code must be lower-case codes (a-z, 0-9, -)")
	}
	var rec evidence.Record
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET problem = $2 WHERE amazon_order_id = $1`, orderID, code)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("record problem of %s: %w", orderID, ErrNotSealed)
		}
		rec, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: KindOrderProblem, Subject: orderID, IdempotencyKey: "problem/" + step + "/" + orderID,
			Body: orderProblemBody{AmazonOrderID: orderID, Step: step, Code: code,
				Consequence: "the order continues to its retention and purge without this step"},
		}, s.now())
		return err
	})
	return rec, err
}

// unheldDue selects each sealed order that no hold stops, with its purge due
// time ($2: the PII retention in seconds, for rows sealed before due times were
// recorded).
const unheldDue = `SELECT amazon_order_id,
		COALESCE(purge_due_at, latest_delivery_at + make_interval(secs => $2), purchased_at) AS due
	FROM orders WHERE purged_at IS NULL AND NOT on_hold`

// CountOverdue counts sealed orders that no hold stops whose purge was due
// before cutoff.
func (s *Service) CountOverdue(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM (`+unheldDue+`) o WHERE due < $1`,
		cutoff.UTC(), s.Policy.PIIRetention.Seconds()).Scan(&n)
	return n, err
}

// OverdueOrder is a sealed order past its purge due time and not on hold.
type OverdueOrder struct {
	AmazonOrderID string
	DueAt         time.Time
}

// Overdue lists up to limit sealed orders whose purge was due at or before now
// and that no legal hold stops, oldest due first, after the cursor (due time and
// id of the last order a previous call returned; zero to start).
func (s *Service) Overdue(ctx context.Context, now time.Time, after OverdueOrder, limit int) ([]OverdueOrder, error) {
	rows, err := s.Pool.Query(ctx, `SELECT amazon_order_id, due FROM (`+unheldDue+`) o
		WHERE due <= $1 AND (due, amazon_order_id) > ($3, $4)
		ORDER BY due, amazon_order_id LIMIT $5`,
		now.UTC(), s.Policy.PIIRetention.Seconds(), after.DueAt.UTC(), after.AmazonOrderID, limit)
	if err != nil {
		return nil, fmt.Errorf("list overdue orders: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OverdueOrder, error) {
		var o OverdueOrder
		err := r.Scan(&o.AmazonOrderID, &o.DueAt)
		return o, err
	})
}

// AppendEvidence appends one evidence entry in its own transaction (an entry with
// the same idempotency key returns the first).
func (s *Service) AppendEvidence(ctx context.Context, e evidence.Entry) (evidence.Record, error) {
	var rec evidence.Record
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		rec, _, err = evidence.Append(ctx, tx, s.Signer, e, s.now())
		return err
	})
	return rec, err
}

// ErrInvalidNote: a note's field name or length is not acceptable.
var ErrInvalidNote = errors.New("invalid note")

var noteFieldPattern = regexp.MustCompile(`^note\.[a-z-]{1,32}\.[a-z0-9]{0,12}\.[0-9]{1,6}$`)

// maxNoteBytes bounds a sealed note (280 characters of up to 4 bytes).
const maxNoteBytes = 1120

// SealNote seals a person's note on an order under the order's PII data key, as
// one more sealed field: the order's purge erases it with the PII. Sealing the
// same field again keeps the first.
func (s *Service) SealNote(ctx context.Context, orderID, field, text string) error {
	if !noteFieldPattern.MatchString(field) || text == "" || len(text) > maxNoteBytes {
		return fmt.Errorf("%w: field must be note.<signal>.<run>.<n> and the text 1 to 280 characters", ErrInvalidNote)
	}
	k, err := s.loadKey(ctx, s.Pool, PurposePII, orderID)
	if err != nil {
		return err
	}
	defer k.Destroy()
	sealed, err := k.Seal(field, []byte(text))
	if err != nil {
		return err
	}
	_, err = s.Pool.Exec(ctx, `INSERT INTO sealed_fields (amazon_order_id, field, key_ref, ciphertext)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, orderID, field, keyRef(PurposePII, orderID), sealed)
	if err != nil {
		return fmt.Errorf("seal note of %s: %w", orderID, err)
	}
	return nil
}
