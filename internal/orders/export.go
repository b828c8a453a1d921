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
	InvoiceNumber string `json:"invoiceNumber"`
	ExportedBy    string `json:"exportedBy"`
	Purpose       string `json:"purpose"`
	PDFSHA256     string `json:"pdfSha256"`
}

// ExportInvoice opens the invoice PDF and records in the evidence log who
// exported it and when, in the same breath: no export goes unrecorded.
func (s *Service) ExportInvoice(ctx context.Context, orderID, by, purpose string) ([]byte, *Invoice, error) {
	if err := actor.Valid(by); err != nil {
		return nil, nil, fmt.Errorf("export invoice of %s: who is exporting (by) %w", orderID, err)
	}
	if !slices.Contains(ExportPurposes, purpose) {
		return nil, nil, fmt.Errorf("export invoice of %s: purpose must be one of: %s", orderID, strings.Join(ExportPurposes, ", "))
	}
	pdf, inv, err := s.InvoicePDF(ctx, orderID)
	if err != nil {
		return nil, inv, err
	}
	sum := sha256.Sum256(pdf)
	now := s.now()
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		_, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: KindInvoiceExport, Subject: orderID,
			IdempotencyKey: fmt.Sprintf("export/%s/%s", inv.Number, now.Format("20060102T150405.000000000Z")),
			Body:           InvoiceExport{InvoiceNumber: inv.Number, ExportedBy: by, Purpose: purpose, PDFSHA256: hex.EncodeToString(sum[:])},
		}, now)
		return err
	})
	if err != nil {
		return nil, inv, fmt.Errorf("export invoice of %s: record the export: %w", orderID, err)
	}
	return pdf, inv, nil
}
