package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/invoice"
)

// Invoice describes an issued VAT invoice; no PII.
type Invoice struct {
	Number          string
	Kind            invoice.Kind
	AmazonOrderID   string
	IssuedAt        time.Time
	TaxPoint        time.Time
	Currency        string
	TotalNetMinor   int64
	TotalVATMinor   int64
	TotalGrossMinor int64
	RetainUntil     time.Time
	PurgedAt        *time.Time
}

const pdfField = "invoice.pdf"

// IssueInvoice issues the order's VAT invoice: the next number of the series
// (gap-free: a counter row locked and advanced in the same transaction as the
// insert), a PDF with every field UK law requires, sealed under the order's own
// tax-record key. Issuing again returns the same invoice, never a second number.
//
// Consumer orders up to the simplified limit get a simplified invoice, which
// carries no buyer name or address, so nothing personal is kept for six years.
func (s *Service) IssueInvoice(ctx context.Context, orderID string) (*Invoice, error) {
	if inv, err := s.Invoice(ctx, orderID); err == nil || !errors.Is(err, ErrNoInvoice) {
		return inv, err
	}
	facts, err := s.Facts(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if facts.Cancelled {
		return nil, fmt.Errorf("%w: order %s was cancelled: no supply, no invoice", ErrInvalidOrder, orderID)
	}
	if facts.DeemedSupplier {
		return nil, ErrDeemedSupplier
	}
	now := s.now()
	rec, err := s.invoiceRecord(ctx, orderID, facts, now)
	if err != nil {
		return nil, err
	}
	doc := &rec.Document
	totals := invoice.Totals{NetMinor: doc.TotalNetMinor, VATMinor: doc.TotalVATMinor, GrossMinor: doc.TotalGrossMinor}
	key, err := s.newDataKey(ctx, PurposeTaxRecord, orderID)
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	ref := keyRef(PurposeTaxRecord, orderID)
	retainUntil := now.Add(s.Policy.TaxRetention)
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO invoice_counters (series) VALUES ($1) ON CONFLICT DO NOTHING`,
			s.Policy.InvoiceSeries); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_number FROM invoice_counters WHERE series = $1 FOR UPDATE`,
			s.Policy.InvoiceSeries).Scan(&last); err != nil {
			return err
		}
		// Holding the counter lock, look again: a concurrent attempt may have won.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM invoices WHERE amazon_order_id = $1)`,
			orderID).Scan(&exists); err != nil || exists {
			return err
		}
		number := last + 1
		doc.Number = fmt.Sprintf("%s-%06d", s.Policy.InvoiceSeries, number)
		pdf, err := invoice.Render(doc)
		if err != nil {
			return problem(ProblemInvoiceRender, "order %s: %v", orderID, err)
		}
		packed, err := packPDF(pdf)
		if err != nil {
			return err
		}
		sealed, err := key.Seal(pdfField, packed)
		if err != nil {
			return err
		}
		sealedDoc, err := sealRecord(key, rec)
		if err != nil {
			return err
		}
		if err := s.storeDataKey(ctx, tx, PurposeTaxRecord, orderID, key); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO invoices (series, number, invoice_number, amazon_order_id, kind,
			issued_at, tax_point, currency, total_net, total_vat, total_gross, key_ref, pdf_sealed, retain_until,
			document_sealed)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
			s.Policy.InvoiceSeries, number, doc.Number, orderID, string(doc.Kind), now, doc.TaxPoint, doc.Currency,
			totals.NetMinor, totals.VATMinor, totals.GrossMinor, ref, sealed, retainUntil, sealedDoc); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE invoice_counters SET last_number = $2 WHERE series = $1`, s.Policy.InvoiceSeries, number)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("issue invoice for %s: %w", orderID, err)
	}
	return s.Invoice(ctx, orderID)
}

// invoiceRecord builds the order's invoice document (without its number) from
// its facts, decrypting the customer's details of a full invoice in memory.
func (s *Service) invoiceRecord(ctx context.Context, orderID string, facts *Facts, issuedAt time.Time) (*invoiceRecord, error) {
	lines := make([]invoice.LineInput, 0, len(facts.Items))
	var items []string
	for _, it := range facts.Items {
		if it.Quantity == 0 {
			// A line cancelled in full (a partly cancelled order) was not supplied.
			continue
		}
		rate, ok := s.Policy.VATRates[it.SKU]
		if !ok {
			rate = s.Policy.DefaultVATRate
		}
		lines = append(lines, invoice.LineInput{Description: it.Title, SKU: it.SKU, Quantity: it.Quantity,
			UnitGrossMinor: it.UnitGrossMinor, VATRateBasisPoints: rate})
		items = append(items, it.OrderItemID)
	}
	computed, totals, err := invoice.Compute(lines)
	if errors.Is(err, invoice.ErrNoLines) {
		return nil, problem(ProblemInvoiceNoLines, "order %s has no line with a quantity above zero", orderID)
	}
	if err != nil {
		return nil, problem(ProblemInvoiceInvalidLine, "order %s: %v", orderID, err)
	}
	rec := &invoiceRecord{Items: items, Document: invoice.Document{
		Kind: invoice.Choose(totals.GrossMinor, facts.Business, s.Policy.SimplifiedLimit, s.Policy.AlwaysFull),
		// The goods are paid for when the order is placed: that is the tax point.
		OrderID: orderID, IssueDate: issuedAt, TaxPoint: facts.PurchasedAt, Currency: facts.Currency,
		Seller: s.Policy.Seller,
	}}
	rec.Document.SetLines(computed, totals)
	if rec.Document.Kind == invoice.Full {
		if rec.Document.Customer, err = s.customer(ctx, orderID); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// customer builds the buyer's party for a full invoice, decrypting in memory.
// Business buyers are invoiced to their tax registration; others to the
// delivery address.
func (s *Service) customer(ctx context.Context, orderID string) (*invoice.Party, error) {
	pii, err := s.openPII(ctx, orderID)
	if err != nil {
		return nil, err
	}
	p := &invoice.Party{}
	if pii["tax.0.number"] != "" {
		p.Name = first(pii["tax.0.legalName"], pii[fieldBuyerCompany], pii["tax.0.address.name"], pii[fieldBuyerName])
		p.VATNumber = pii["tax.0.number"]
		p.Address = addressLines(pii, "tax.0.address.")
	}
	if p.Name == "" {
		p.Name = first(pii[fieldBuyerCompany], pii[fieldBuyerName], pii[prefixRecipient+"name"])
	}
	if len(p.Address) == 0 {
		p.Address = addressLines(pii, prefixRecipient)
	}
	if p.Name == "" || len(p.Address) == 0 {
		return nil, problem(ProblemInvoiceNoBuyerAddress, "order %s has no buyer name or address for a full VAT invoice (was it fetched with BUYER and RECIPIENT?)", orderID)
	}
	return p, nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Invoice returns the order's invoice, or ErrNoInvoice.
func (s *Service) Invoice(ctx context.Context, orderID string) (*Invoice, error) {
	var inv Invoice
	var kind string
	err := s.Pool.QueryRow(ctx, `SELECT invoice_number, kind, amazon_order_id, issued_at, tax_point, currency,
		total_net, total_vat, total_gross, retain_until, purged_at FROM invoices WHERE amazon_order_id = $1`, orderID).
		Scan(&inv.Number, &kind, &inv.AmazonOrderID, &inv.IssuedAt, &inv.TaxPoint, &inv.Currency,
			&inv.TotalNetMinor, &inv.TotalVATMinor, &inv.TotalGrossMinor, &inv.RetainUntil, &inv.PurgedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("order %s: %w", orderID, ErrNoInvoice)
	}
	if err != nil {
		return nil, fmt.Errorf("read invoice of %s: %w", orderID, err)
	}
	inv.Kind = invoice.Kind(kind)
	return &inv, nil
}

// InvoicePDF opens the sealed invoice PDF, in memory, for export. It works before
// and after the order's PII purge (the invoice has its own key) until the tax
// record itself is purged.
func (s *Service) InvoicePDF(ctx context.Context, orderID string) ([]byte, *Invoice, error) {
	inv, err := s.Invoice(ctx, orderID)
	if err != nil {
		return nil, nil, err
	}
	if inv.PurgedAt != nil {
		return nil, inv, ErrTaxRecordPurged
	}
	key, err := s.loadKey(ctx, s.Pool, PurposeTaxRecord, orderID)
	if err != nil {
		return nil, inv, err
	}
	defer key.Destroy()
	var sealed []byte
	if err := s.Pool.QueryRow(ctx, `SELECT pdf_sealed FROM invoices WHERE amazon_order_id = $1`, orderID).Scan(&sealed); err != nil {
		return nil, inv, err
	}
	packed, err := key.Open(pdfField, sealed)
	if err != nil {
		return nil, inv, err
	}
	pdf, err := unpackPDF(packed)
	return pdf, inv, err
}
