package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/internal/evidence"
)

// KindInvoiceExport is the evidence kind recording who exported an invoice.
const KindInvoiceExport = "invoice-export"

// Why an invoice is exported (ExportInvoice's purpose): codes, since the
// evidence log keeps them for years.
var ExportPurposes = []string{"vat-return", "accounting", "tax-enquiry", "buyer-request", "amazon-request", "audit", "legal"}

// InvoiceExport is the evidence body of one export; no PII.
type InvoiceExport struct {
	// InvoiceNumber is the invoice's or, for a credit-note export, the credit note's number.
	InvoiceNumber string `json:"invoiceNumber"`
	ExportedBy    string `json:"exportedBy"`
	Purpose       string `json:"purpose"`
	PDFSHA256     string `json:"pdfSha256"`
}

// ExportInvoice opens the invoice PDF and records in the evidence log who
// exported it and when, in the same breath: no export goes unrecorded.
func (s *Service) ExportInvoice(ctx context.Context, orderID, by, purpose string) ([]byte, *Invoice, error) {
	if err := checkExport(by, purpose); err != nil {
		return nil, nil, fmt.Errorf("export invoice of %s: %w", orderID, err)
	}
	pdf, inv, err := s.InvoicePDF(ctx, orderID)
	if err != nil {
		return nil, inv, err
	}
	if err := s.recordExport(ctx, KindInvoiceExport, orderID, inv.Number, by, purpose, pdf); err != nil {
		return nil, inv, fmt.Errorf("export invoice of %s: %w", orderID, err)
	}
	return pdf, inv, nil
}

func checkExport(by, purpose string) error {
	if err := actor.Valid(by); err != nil {
		return fmt.Errorf("who is exporting (by) %w", err)
	}
	if !slices.Contains(ExportPurposes, purpose) {
		return fmt.Errorf("purpose must be one of: %s", strings.Join(ExportPurposes, ", "))
	}
	return nil
}

// recordExport appends the evidence of one export of a tax document.
func (s *Service) recordExport(ctx context.Context, kind, orderID, number, by, purpose string, pdf []byte) error {
	sum := sha256.Sum256(pdf)
	now := s.now()
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		_, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: kind, Subject: orderID,
			IdempotencyKey: fmt.Sprintf("export/%s/%s", number, now.Format("20060102T150405.000000000Z")),
			Body:           InvoiceExport{InvoiceNumber: number, ExportedBy: by, Purpose: purpose, PDFSHA256: hex.EncodeToString(sum[:])},
		}, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the export: %w", err)
	}
	return nil
}

// KindCreditNoteExport is the evidence kind recording who exported a credit note.
const KindCreditNoteExport = "credit-note-export"

// ExportCreditNote opens a credit note's PDF and records in the evidence log who
// exported it and why, as ExportInvoice does for invoices.
func (s *Service) ExportCreditNote(ctx context.Context, number, by, purpose string) ([]byte, *CreditNote, error) {
	if err := checkExport(by, purpose); err != nil {
		return nil, nil, fmt.Errorf("export credit note %s: %w", number, err)
	}
	pdf, cn, err := s.CreditNotePDF(ctx, number)
	if err != nil {
		return nil, cn, err
	}
	if err := s.recordExport(ctx, KindCreditNoteExport, cn.AmazonOrderID, number, by, purpose, pdf); err != nil {
		return nil, cn, fmt.Errorf("export credit note %s: %w", number, err)
	}
	return pdf, cn, nil
}
