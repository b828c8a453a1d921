package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/internal/orders"
)

// ErrCreditNoteRefused: the credit note cannot be issued as asked (more than
// is left of the invoice, an order item not on it, the invoice's tax record
// purged, an old invoice without its document after the PII purge). Final:
// the message says why.
const ErrCreditNoteRefused = "CreditNoteRefused"

// CreditNoteInput asks for one credit note of an order. SourceID is
// "cancellation" or "refund/<refundId>": a retry or a repeat returns the
// note issued first.
type CreditNoteInput struct {
	AmazonOrderID string           `json:"amazonOrderId"`
	SourceID      string           `json:"sourceId"`
	Reason        string           `json:"reason"`
	By            string           `json:"by"`
	Full          bool             `json:"full,omitempty"`
	Lines         []CreditNoteLine `json:"lines,omitempty"`
}

// CreditNoteLine credits one order item: units, or a VAT-inclusive amount in
// minor units.
type CreditNoteLine struct {
	OrderItemID string `json:"orderItemId"`
	Quantity    int64  `json:"quantity,omitempty"`
	AmountMinor int64  `json:"amountMinor,omitempty"`
}

// CreditNoteRef is an issued credit note (no PII), or why none was needed.
type CreditNoteRef struct {
	Number          string    `json:"number,omitempty"`
	InvoiceNumber   string    `json:"invoiceNumber,omitempty"`
	SourceID        string    `json:"sourceId"`
	Currency        string    `json:"currency,omitempty"`
	TotalGrossMinor int64     `json:"totalGross,omitempty"`
	TotalVATMinor   int64     `json:"totalVat,omitempty"`
	IssuedAt        time.Time `json:"issuedAt,omitzero"`
	// NoInvoice: the order has no invoice (cancelled before it was issued,
	// Amazon the deemed supplier, the invoice failed): nothing to credit.
	NoInvoice bool `json:"noInvoice,omitempty"`
	// FullyCredited: earlier credit notes credited the whole invoice.
	FullyCredited bool `json:"fullyCredited,omitempty"`
	// Upload says the credit note goes to Amazon (DPP_UPLOAD_INVOICES, read
	// when it was issued, so the lifecycle's decision is in its history).
	Upload bool `json:"upload,omitempty"`
}

// IssueCreditNote issues a credit note against the order's invoice (once per
// source: a retry returns the same note). It needs no PII: the invoice's
// document is in its tax record.
func (a *Lifecycle) IssueCreditNote(ctx context.Context, in CreditNoteInput) (*CreditNoteRef, error) {
	req := orders.CreditRequest{AmazonOrderID: in.AmazonOrderID, SourceID: in.SourceID, Reason: in.Reason, By: in.By, Full: in.Full}
	for _, l := range in.Lines {
		req.Lines = append(req.Lines, orders.CreditLineRequest{OrderItemID: l.OrderItemID, Quantity: l.Quantity, AmountMinor: l.AmountMinor})
	}
	cn, err := a.Orders.IssueCreditNote(ctx, req)
	switch {
	case errors.Is(err, orders.ErrNoInvoice):
		return &CreditNoteRef{SourceID: in.SourceID, NoInvoice: true}, nil
	case errors.Is(err, orders.ErrFullyCredited):
		return &CreditNoteRef{SourceID: in.SourceID, FullyCredited: true}, nil
	case errors.Is(err, orders.ErrCreditRefused), errors.Is(err, orders.ErrInvalidOrder), errors.Is(err, orders.ErrTaxRecordPurged), errors.Is(err, orders.ErrNoInvoiceDocument):
		return nil, final(ErrCreditNoteRefused, err)
	case err != nil:
		return nil, err
	}
	return &CreditNoteRef{Number: cn.Number, InvoiceNumber: cn.InvoiceNumber, SourceID: cn.SourceID, Currency: cn.Currency,
		TotalGrossMinor: cn.TotalGrossMinor, TotalVATMinor: cn.TotalVATMinor, IssuedAt: cn.IssuedAt, Upload: a.UploadInvoices}, nil
}

// creditLateCancellation issues the credit note of an order cancelled after its
// lifecycle ended (an early purge, then Amazon's cancellation), from the tax
// record: it needs no PII. Nothing to credit (no invoice, all credited) is not
// an error; a note that cannot be issued automatically is logged for an
// operator (`starter credit-note issue`), and never stops the sync.
func creditLateCancellation(ctx context.Context, svc *orders.Service, orderID string) (*orders.CreditNote, error) {
	cn, err := svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: orderID, SourceID: orders.SourceCancellation,
		Reason: "cancelled", By: actor.CreditNotes, Full: true})
	switch {
	case err == nil:
		return cn, nil
	case errors.Is(err, orders.ErrNoInvoice), errors.Is(err, orders.ErrFullyCredited):
		return nil, nil
	case errors.Is(err, orders.ErrCreditRefused), errors.Is(err, orders.ErrTaxRecordPurged), errors.Is(err, orders.ErrNoInvoiceDocument):
		if activity.IsActivity(ctx) {
			activity.GetLogger(ctx).Warn("No credit note for a cancellation after the lifecycle", "amazonOrderId", orderID, "error", err.Error())
		}
		return nil, nil
	}
	return nil, err
}
