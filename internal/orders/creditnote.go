package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/invoice"
	"github.com/plusranger/dpp/internal/vault"
)

// PurposeCreditNote is the data key of an order's credit notes: a tax record
// kept as long as the invoice, but under its own key, so each is erased when
// its own retention ends.
const PurposeCreditNote = "credit-note"

// SourceCancellation is the source id of the credit note a cancellation after
// the invoice gets: an order is cancelled once, so it has at most one.
const SourceCancellation = "cancellation"

// RefundSource is the source id of the credit note answering one refund.
func RefundSource(refundID string) string { return "refund/" + refundID }

// Errors of credit notes callers tell apart.
var (
	// ErrFullyCredited: the invoice has been credited in full already; a
	// cancellation after a full refund has nothing left to credit.
	ErrFullyCredited = errors.New("the invoice has been credited in full already")
	// ErrCreditRefused: the credit note cannot be issued as asked (the request
	// is malformed, names an item not on the invoice, or credits more than is
	// left of it); the message says why.
	ErrCreditRefused = errors.New("credit note refused")
	// ErrNoCreditNote: no credit note has this number.
	ErrNoCreditNote = errors.New("no credit note has this number")
	// ErrNoInvoiceDocument: the invoice was issued before invoices kept their
	// document, and the order's PII, from which it would be rebuilt, is purged.
	ErrNoInvoiceDocument = errors.New("the invoice was issued before its document was kept for credit notes, and the order's PII is purged: the credit note must be issued by hand")
)

// CreditRequest asks for a credit note. Either Full, or Lines.
type CreditRequest struct {
	AmazonOrderID string
	// SourceID is what the credit note answers (SourceCancellation or
	// RefundSource(id)): a second request with it returns the first note.
	SourceID string
	// Reason is a reason code (lower-case, digits, '-'), printed on the note.
	Reason string
	// By is the operator id, or actor.CreditNotes for automatic credit notes.
	By    string
	Full  bool
	Lines []CreditLineRequest
}

// CreditLineRequest credits part of one invoiced order item: Quantity units, or
// AmountMinor (VAT-inclusive) of it.
type CreditLineRequest struct {
	OrderItemID string `json:"orderItemId"`
	Quantity    int64  `json:"quantity,omitempty"`
	AmountMinor int64  `json:"amountMinor,omitempty"`
}

// CreditedLine is one line of a credit note as the database keeps it: product
// facts and amounts, no PII.
type CreditedLine struct {
	OrderItemID     string `json:"orderItemId"`
	SKU             string `json:"sku,omitempty"`
	Quantity        int64  `json:"quantity"`
	VATRateBP       int64  `json:"vatRateBasisPoints"`
	NetMinor        int64  `json:"net"`
	VATMinor        int64  `json:"vat"`
	GrossMinor      int64  `json:"gross"`
	PriceAdjustment bool   `json:"priceAdjustment,omitempty"`
}

// CreditNote describes an issued credit note; no PII.
type CreditNote struct {
	Number          string
	AmazonOrderID   string
	InvoiceNumber   string
	SourceID        string
	Reason          string
	By              string
	Lines           []CreditedLine
	Currency        string
	TotalNetMinor   int64
	TotalVATMinor   int64
	TotalGrossMinor int64
	IssuedAt        time.Time
	RetainUntil     time.Time
	PurgedAt        *time.Time
}

// invoiceRecord is what the tax record keeps of the invoice for its credit
// notes: the document as issued and the order item id of each line.
type invoiceRecord struct {
	Document invoice.Document `json:"document"`
	Items    []string         `json:"items"`
}

const documentField = "invoice.document"

func sealRecord(key *vault.DataKey, rec *invoiceRecord) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode invoice document: %w", err)
	}
	return key.Seal(documentField, b)
}

var (
	reasonCode = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	sourceID   = regexp.MustCompile(`^(cancellation|refund/[A-Za-z0-9._:-]{1,64})$`)
)

// reasonText is how a reason code reads on the credit note.
func reasonText(code string) string {
	switch code {
	case "cancelled":
		return "Order cancelled after invoicing"
	case "refund":
		return "Refund"
	case "item-cancelled":
		return "Item cancelled after invoicing"
	}
	return "Refund (" + code + ")"
}

func (r CreditRequest) validate() error {
	switch {
	case !sourceID.MatchString(r.SourceID):
		return fmt.Errorf("%w: source %q must be %q or refund/<refundId> (letters, digits, '.', '_', ':', '-', up to 64)", ErrCreditRefused, r.SourceID, SourceCancellation)
	case !reasonCode.MatchString(r.Reason):
		return fmt.Errorf("%w: the reason must be a code (a-z, 0-9, '-', up to 64 characters)", ErrCreditRefused)
	case actor.Valid(r.By) != nil:
		return fmt.Errorf("%w: 'by' %v", ErrCreditRefused, actor.ErrNotAnID)
	case r.Full == (len(r.Lines) > 0):
		return fmt.Errorf("%w: a credit note is either full or has lines, exactly one of the two", ErrCreditRefused)
	}
	return nil
}

// IssueCreditNote issues a credit note against the order's invoice: the next
// number of the credit-note series (gap-free: its counter row is locked and
// advanced in the transaction that inserts the note), the amounts and VAT
// reversed line by line, a PDF showing the invoice's customer details, sealed
// under the order's credit-note key. It never credits more than was invoiced
// (the invoice row is locked while the earlier notes are summed). A request with
// a source id already answered returns that note and issues nothing.
func (s *Service) IssueCreditNote(ctx context.Context, req CreditRequest) (*CreditNote, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	orderID := req.AmazonOrderID
	if cn, err := s.creditNoteBySource(ctx, s.Pool, orderID, req.SourceID); err == nil || !errors.Is(err, ErrNoCreditNote) {
		return cn, err
	}
	if s.Policy.CreditNoteSeries == "" || s.Policy.CreditNoteSeries == s.Policy.InvoiceSeries {
		return nil, errors.New("credit notes need their own series (DPP_CREDIT_NOTE_SERIES), not the invoices'")
	}
	inv, err := s.Invoice(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if inv.PurgedAt != nil {
		return nil, ErrTaxRecordPurged
	}
	rec, err := s.invoiceDocument(ctx, inv)
	if err != nil {
		return nil, err
	}
	var number string
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// One order's credit notes are issued one at a time: what is left to
		// credit is read under this lock.
		var purgedAt *time.Time
		if err := tx.QueryRow(ctx, `SELECT purged_at FROM invoices WHERE amazon_order_id = $1 FOR UPDATE`, orderID).Scan(&purgedAt); err != nil {
			return err
		}
		if cn, err := s.creditNoteBySource(ctx, tx, orderID, req.SourceID); err == nil || !errors.Is(err, ErrNoCreditNote) {
			if cn != nil {
				number = cn.Number
			}
			return err
		}
		if purgedAt != nil { // the sweep erased the invoice meanwhile
			return ErrTaxRecordPurged
		}
		already, err := creditedSoFar(ctx, tx, orderID)
		if err != nil {
			return err
		}
		lines, kept, err := creditLines(rec, already, req)
		if err != nil {
			return err
		}
		totals := invoice.Summarise(lines)
		key, err := s.creditNoteKey(ctx, tx, orderID)
		if err != nil {
			return err
		}
		defer key.Destroy()
		series := s.Policy.CreditNoteSeries
		if _, err := tx.Exec(ctx, `INSERT INTO invoice_counters (series) VALUES ($1) ON CONFLICT DO NOTHING`, series); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_number FROM invoice_counters WHERE series = $1 FOR UPDATE`, series).Scan(&last); err != nil {
			return err
		}
		now := s.now()
		doc := rec.Document
		doc.Number = fmt.Sprintf("%s-%06d", series, last+1)
		doc.IssueDate = now
		doc.Credit = &invoice.Credit{InvoiceNumber: inv.Number, InvoiceDate: inv.IssuedAt, Reason: reasonText(req.Reason)}
		doc.SetLines(lines, totals)
		pdf, err := invoice.Render(&doc)
		if err != nil {
			return problem(ProblemCreditNoteRender, "order %s: %v", orderID, err)
		}
		packed, err := packPDF(pdf)
		if err != nil {
			return err
		}
		sealed, err := key.Seal(creditNoteField(doc.Number), packed)
		if err != nil {
			return err
		}
		linesJSON, err := json.Marshal(kept)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO credit_notes (series, number, credit_note_number, amazon_order_id,
			invoice_number, source_id, reason_code, requested_by, lines, currency, total_net, total_vat, total_gross,
			issued_at, key_ref, pdf_sealed, retain_until)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)`,
			series, last+1, doc.Number, orderID, inv.Number, req.SourceID, req.Reason, req.By, linesJSON, doc.Currency,
			totals.NetMinor, totals.VATMinor, totals.GrossMinor, now, keyRef(PurposeCreditNote, orderID), sealed,
			now.Add(s.Policy.TaxRetention)); err != nil {
			return err
		}
		number = doc.Number
		if _, err := tx.Exec(ctx, `UPDATE invoice_counters SET last_number = $2 WHERE series = $1`, series, last+1); err != nil {
			return err
		}
		_, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: KindCreditNote, Subject: orderID, IdempotencyKey: "credit-note/" + doc.Number,
			Body: CreditNoteIssued{CreditNoteNumber: doc.Number, InvoiceNumber: inv.Number, SourceID: req.SourceID,
				Reason: req.Reason, By: req.By, Currency: doc.Currency, TotalNetMinor: totals.NetMinor,
				TotalVATMinor: totals.VATMinor, TotalGrossMinor: totals.GrossMinor},
		}, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("issue credit note for %s (%s): %w", orderID, req.SourceID, err)
	}
	return s.CreditNote(ctx, number)
}

// KindCreditNote is the evidence kind of an issued credit note.
const KindCreditNote = "credit-note"

// CreditNoteIssued is the evidence body of an issued credit note; no PII.
type CreditNoteIssued struct {
	CreditNoteNumber string `json:"creditNoteNumber"`
	InvoiceNumber    string `json:"invoiceNumber"`
	SourceID         string `json:"sourceId"`
	Reason           string `json:"reason"`
	By               string `json:"by"`
	Currency         string `json:"currency"`
	TotalNetMinor    int64  `json:"totalNet"`
	TotalVATMinor    int64  `json:"totalVat"`
	TotalGrossMinor  int64  `json:"totalGross"`
}

// ProblemCreditNoteRender: the credit note's document did not validate.
const ProblemCreditNoteRender = "credit-note-render"

// creditNoteField binds each sealed credit note to its number: one key seals
// all of an order's notes, and none can be swapped for another.
func creditNoteField(number string) string { return "credit-note.pdf/" + number }

// creditNoteKey is the order's credit-note key: made (wrapped by the tax-record
// epoch key of this year) with the order's first credit note, inside its
// transaction.
func (s *Service) creditNoteKey(ctx context.Context, tx pgx.Tx, orderID string) (*vault.DataKey, error) {
	key, err := s.loadKey(ctx, tx, PurposeCreditNote, orderID)
	if !errors.Is(err, ErrNoKey) {
		return key, err
	}
	if key, err = s.newDataKey(ctx, PurposeCreditNote, orderID); err != nil {
		return nil, err
	}
	if err := s.storeDataKey(ctx, tx, PurposeCreditNote, orderID, key); err != nil {
		key.Destroy()
		return nil, err
	}
	return key, nil
}

// invoiceDocument opens the invoice document kept in the tax record; for an
// invoice issued before it was kept, it rebuilds it from the facts and the
// sealed PII while the order's PII is not purged.
func (s *Service) invoiceDocument(ctx context.Context, inv *Invoice) (*invoiceRecord, error) {
	orderID := inv.AmazonOrderID
	var sealed []byte
	if err := s.Pool.QueryRow(ctx, `SELECT document_sealed FROM invoices WHERE amazon_order_id = $1`, orderID).Scan(&sealed); err != nil {
		return nil, fmt.Errorf("read invoice document of %s: %w", orderID, err)
	}
	if sealed == nil {
		facts, err := s.Facts(ctx, orderID)
		if errors.Is(err, ErrPurged) || err == nil && facts.PurgedAt != nil {
			return nil, fmt.Errorf("order %s, invoice %s: %w", orderID, inv.Number, ErrNoInvoiceDocument)
		}
		if err != nil {
			return nil, err
		}
		rec, err := s.invoiceRecord(ctx, orderID, facts, inv.IssuedAt)
		if err != nil {
			return nil, err
		}
		if rec.Document.TotalGrossMinor != inv.TotalGrossMinor || rec.Document.Kind != inv.Kind {
			return nil, fmt.Errorf("order %s: the invoice rebuilt from the order's facts differs from invoice %s as issued (settings changed since?): %w",
				orderID, inv.Number, ErrNoInvoiceDocument)
		}
		rec.Document.Number = inv.Number
		return rec, nil
	}
	key, err := s.loadKey(ctx, s.Pool, PurposeTaxRecord, orderID)
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	plain, err := key.Open(documentField, sealed)
	if err != nil {
		return nil, fmt.Errorf("open invoice document of %s: %w", orderID, err)
	}
	var rec invoiceRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("decode invoice document of %s: %w", orderID, err)
	}
	rec.Document.Number = inv.Number
	return &rec, nil
}

// creditedSoFar sums, per order item, what the order's credit notes reversed.
func creditedSoFar(ctx context.Context, q pgx.Tx, orderID string) (map[string]invoice.Credited, error) {
	rows, err := q.Query(ctx, `SELECT lines FROM credit_notes WHERE amazon_order_id = $1`, orderID)
	if err != nil {
		return nil, err
	}
	out := map[string]invoice.Credited{}
	all, err := pgx.CollectRows(rows, pgx.RowTo[[]CreditedLine])
	if err != nil {
		return nil, err
	}
	for _, lines := range all {
		for _, l := range lines {
			c := out[l.OrderItemID]
			if !l.PriceAdjustment {
				c.Quantity += l.Quantity
			}
			c.GrossMinor += l.GrossMinor
			c.VATMinor += l.VATMinor
			out[l.OrderItemID] = c
		}
	}
	return out, nil
}

// creditLines computes the lines of a credit note: everything left on every
// invoiced line for a full credit, else the requested lines.
func creditLines(rec *invoiceRecord, already map[string]invoice.Credited, req CreditRequest) ([]invoice.Line, []CreditedLine, error) {
	index := map[string]int{}
	for i, id := range rec.Items {
		index[id] = i
	}
	var lines []invoice.Line
	var kept []CreditedLine
	add := func(i int, l invoice.Line, adjustment bool) {
		lines = append(lines, l)
		kept = append(kept, CreditedLine{OrderItemID: rec.Items[i], SKU: l.SKU, Quantity: l.Quantity, VATRateBP: l.VATRateBasisPoints,
			NetMinor: l.NetMinor, VATMinor: l.VATMinor, GrossMinor: l.GrossMinor, PriceAdjustment: adjustment})
	}
	if req.Full {
		for i, inv := range rec.Document.Lines {
			done := already[rec.Items[i]]
			if done.GrossMinor >= inv.GrossMinor {
				continue
			}
			// What is left of the line: its units if none was credited by amount,
			// else the rest of its amount.
			qty, amount := inv.Quantity-done.Quantity, int64(0)
			if done.GrossMinor != inv.GrossMinor/inv.Quantity*done.Quantity || qty <= 0 {
				qty, amount = 0, inv.GrossMinor-done.GrossMinor
			}
			l, err := invoice.CreditLine(fmt.Sprintf("lines[%d]", i), inv, done, qty, amount)
			if err != nil {
				return nil, nil, refused(err)
			}
			add(i, l, amount != 0)
		}
		if len(lines) == 0 {
			return nil, nil, ErrFullyCredited
		}
		return lines, kept, nil
	}
	seen := map[string]bool{}
	for j, r := range req.Lines {
		i, ok := index[r.OrderItemID]
		if !ok {
			return nil, nil, fmt.Errorf("%w: refund line %d: order item %q is not on the invoice", ErrCreditRefused, j, r.OrderItemID)
		}
		if seen[r.OrderItemID] {
			return nil, nil, fmt.Errorf("%w: refund line %d: order item %q is given twice", ErrCreditRefused, j, r.OrderItemID)
		}
		seen[r.OrderItemID] = true
		l, err := invoice.CreditLine(fmt.Sprintf("refund line %d", j), rec.Document.Lines[i], already[r.OrderItemID], r.Quantity, r.AmountMinor)
		if err != nil {
			return nil, nil, refused(err)
		}
		add(i, l, r.Quantity == 0)
	}
	return lines, kept, nil
}

// refused names what CreditLine found wrong, without the invoice package's prefix.
func refused(err error) error {
	var fe *invoice.FieldError
	if errors.As(err, &fe) {
		return fmt.Errorf("%w: %s %s", ErrCreditRefused, fe.Field, fe.Reason)
	}
	return fmt.Errorf("%w: %v", ErrCreditRefused, err)
}

const creditNoteColumns = `credit_note_number, amazon_order_id, invoice_number, source_id, reason_code, requested_by,
	lines, currency, total_net, total_vat, total_gross, issued_at, retain_until, purged_at`

func scanCreditNote(row pgx.Row) (*CreditNote, error) {
	var c CreditNote
	err := row.Scan(&c.Number, &c.AmazonOrderID, &c.InvoiceNumber, &c.SourceID, &c.Reason, &c.By, &c.Lines, &c.Currency,
		&c.TotalNetMinor, &c.TotalVATMinor, &c.TotalGrossMinor, &c.IssuedAt, &c.RetainUntil, &c.PurgedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoCreditNote
	}
	return &c, err
}

func (s *Service) creditNoteBySource(ctx context.Context, q querier, orderID, source string) (*CreditNote, error) {
	cn, err := scanCreditNote(q.QueryRow(ctx, `SELECT `+creditNoteColumns+` FROM credit_notes
		WHERE amazon_order_id = $1 AND source_id = $2`, orderID, source))
	if errors.Is(err, ErrNoCreditNote) {
		return nil, fmt.Errorf("order %s, %s: %w", orderID, source, ErrNoCreditNote)
	}
	return cn, err
}

// CreditNote returns the credit note with this number, or ErrNoCreditNote.
func (s *Service) CreditNote(ctx context.Context, number string) (*CreditNote, error) {
	cn, err := scanCreditNote(s.Pool.QueryRow(ctx, `SELECT `+creditNoteColumns+` FROM credit_notes
		WHERE credit_note_number = $1`, number))
	if errors.Is(err, ErrNoCreditNote) {
		return nil, fmt.Errorf("credit note %q: %w", number, ErrNoCreditNote)
	}
	return cn, err
}

// CreditNotes lists the order's credit notes, oldest first.
func (s *Service) CreditNotes(ctx context.Context, orderID string) ([]CreditNote, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+creditNoteColumns+` FROM credit_notes
		WHERE amazon_order_id = $1 ORDER BY series, number`, orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CreditNote, error) {
		cn, err := scanCreditNote(r)
		if err != nil {
			return CreditNote{}, err
		}
		return *cn, nil
	})
}

// CreditNotePDF opens a sealed credit note's PDF, in memory, for export, until
// the credit note is purged at the end of its tax retention.
func (s *Service) CreditNotePDF(ctx context.Context, number string) ([]byte, *CreditNote, error) {
	cn, err := s.CreditNote(ctx, number)
	if err != nil {
		return nil, nil, err
	}
	if cn.PurgedAt != nil {
		return nil, cn, ErrTaxRecordPurged
	}
	key, err := s.loadKey(ctx, s.Pool, PurposeCreditNote, cn.AmazonOrderID)
	if err != nil {
		return nil, cn, err
	}
	defer key.Destroy()
	var sealed []byte
	if err := s.Pool.QueryRow(ctx, `SELECT pdf_sealed FROM credit_notes WHERE credit_note_number = $1`, number).Scan(&sealed); err != nil {
		return nil, cn, err
	}
	packed, err := key.Open(creditNoteField(number), sealed)
	if err != nil {
		return nil, cn, err
	}
	pdf, err := unpackPDF(packed)
	return pdf, cn, err
}
