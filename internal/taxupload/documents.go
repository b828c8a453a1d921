package taxupload

import (
	"context"
	"errors"
	"fmt"

	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
)

// Document is what an upload sends of a tax document: its PDF (opened from
// the sealed tax record, in memory only) and the totals the feed options carry.
type Document struct {
	Number          string
	AmazonOrderID   string
	Currency        string
	TotalGrossMinor int64
	TotalVATMinor   int64
	PDF             []byte
}

// ErrGone: the document cannot be uploaded, now or later (no such document,
// or its tax record was purged).
var ErrGone = errors.New("tax document not available")

// Documents opens tax documents by type: invoices and credit notes, both
// sealed tax records of the order.
type Documents struct {
	Orders *orders.Service
}

// Open returns the document of docType with that number for the order.
func (d *Documents) Open(ctx context.Context, docType, orderID, number string) (*Document, error) {
	switch docType {
	case spapi.DocumentTypeInvoice:
		return d.invoice(ctx, orderID, number)
	case spapi.DocumentTypeCreditNote:
		return d.creditNote(ctx, orderID, number)
	default:
		return nil, fmt.Errorf("%w: documentType must be %s or %s", ErrInvalid, spapi.DocumentTypeInvoice, spapi.DocumentTypeCreditNote)
	}
}

func (d *Documents) invoice(ctx context.Context, orderID, number string) (*Document, error) {
	pdf, inv, err := d.Orders.InvoicePDF(ctx, orderID)
	switch {
	case errors.Is(err, orders.ErrNoInvoice) || errors.Is(err, orders.ErrTaxRecordPurged):
		return nil, fmt.Errorf("upload of invoice %s: %w: %w", number, ErrGone, err)
	case err != nil:
		return nil, err
	case inv.Number != number:
		return nil, fmt.Errorf("upload of invoice %s: %w: order %s's invoice is %s", number, ErrGone, orderID, inv.Number)
	}
	return &Document{Number: inv.Number, AmazonOrderID: orderID, Currency: inv.Currency,
		TotalGrossMinor: inv.TotalGrossMinor, TotalVATMinor: inv.TotalVATMinor, PDF: pdf}, nil
}

// creditNote opens a credit note. Its totals are what it credits, as positive
// amounts: the document type tells Amazon they reverse the invoice.
func (d *Documents) creditNote(ctx context.Context, orderID, number string) (*Document, error) {
	pdf, cn, err := d.Orders.CreditNotePDF(ctx, number)
	switch {
	case errors.Is(err, orders.ErrNoCreditNote) || errors.Is(err, orders.ErrTaxRecordPurged):
		return nil, fmt.Errorf("upload of credit note %s: %w: %w", number, ErrGone, err)
	case err != nil:
		return nil, err
	case cn.AmazonOrderID != orderID:
		return nil, fmt.Errorf("upload of credit note %s: %w: it belongs to order %s, not %s", number, ErrGone, cn.AmazonOrderID, orderID)
	}
	return &Document{Number: cn.Number, AmazonOrderID: orderID, Currency: cn.Currency,
		TotalGrossMinor: cn.TotalGrossMinor, TotalVATMinor: cn.TotalVATMinor, PDF: pdf}, nil
}

// FeedOptions are the UPLOAD_VAT_INVOICE feed options of a document: ids and
// totals, nothing about the buyer.
func FeedOptions(docType string, doc *Document) map[string]string {
	return map[string]string{
		spapi.FeedOptionOrderID:        doc.AmazonOrderID,
		spapi.FeedOptionInvoiceNumber:  doc.Number,
		spapi.FeedOptionTotalAmount:    string(spapi.MinorToDecimal(doc.TotalGrossMinor)),
		spapi.FeedOptionTotalVATAmount: string(spapi.MinorToDecimal(doc.TotalVATMinor)),
		spapi.FeedOptionDocumentType:   docType,
	}
}
