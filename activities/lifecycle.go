package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
)

// Lifecycle is the order lifecycle's I/O: it fetches and seals an order's PII,
// issues its invoice, seals operators' notes and purges the PII.
type Lifecycle struct {
	Orders *orders.Service
	SPAPI  OrderSource
	// UploadInvoices: issued invoices go to Amazon (DPP_UPLOAD_INVOICES).
	UploadInvoices bool
}

// Register registers every lifecycle activity.
func (a *Lifecycle) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a, registerOptions)
}

// includedData asks for everything the lifecycle and the invoice need.
var includedData = []string{spapi.IncludeBuyer, spapi.IncludeRecipient, spapi.IncludeProceeds,
	spapi.IncludeFulfillment, spapi.IncludePackages, spapi.IncludeTax, spapi.IncludeCancellation}

// FetchAndSeal gets the order with its PII from SP-API and seals every PII field
// before anything is stored. It returns only non-PII facts. A retry after a
// successful commit returns the stored facts; an order purged before is not
// fetched again.
func (a *Lifecycle) FetchAndSeal(ctx context.Context, in FetchAndSealInput) (*OrderFacts, error) {
	if in.AmazonOrderID == "" {
		return nil, final(ErrInvalidInput, errors.New("FetchAndSeal: amazonOrderId is required"))
	}
	facts, err := a.Orders.Facts(ctx, in.AmazonOrderID)
	switch {
	case errors.Is(err, orders.ErrPurged):
		return &OrderFacts{AmazonOrderID: in.AmazonOrderID, AlreadyPurged: true}, nil
	case errors.Is(err, orders.ErrNotSealed):
		o, err := a.SPAPI.GetOrder(ctx, in.AmazonOrderID, includedData)
		if err != nil {
			return nil, classify(err)
		}
		if o.OrderID != in.AmazonOrderID {
			return nil, final(ErrInvalidOrder, fmt.Errorf("spapi getOrder: order.orderId differs from the order asked for (%s)", in.AmazonOrderID))
		}
		if facts, err = a.Orders.Seal(ctx, o); err != nil {
			return nil, classify(err)
		}
	case err != nil:
		return nil, err
	}
	return &OrderFacts{
		AmazonOrderID: facts.AmazonOrderID, MarketplaceID: facts.MarketplaceID, PurchasedAt: facts.PurchasedAt,
		LatestDeliveryAt: facts.LatestDeliveryAt, DeliveredAt: facts.DeliveredAt, Cancelled: facts.Cancelled,
		Business: facts.Business, Currency: facts.Currency, GrandTotalMinor: facts.GrandTotalMinor,
		SealedFields: facts.SealedFields, PIIRetention: a.Orders.Policy.PIIRetention,
		RecordedPurgeDueAt: facts.PurgeDueAt, OnHold: facts.OnHold, SealLevel: SealLevel,
	}, nil
}

// IssueInvoice issues the order's VAT invoice (once: a retry returns the same one).
func (a *Lifecycle) IssueInvoice(ctx context.Context, in IssueInvoiceInput) (*InvoiceRef, error) {
	inv, err := a.Orders.IssueInvoice(ctx, in.AmazonOrderID)
	if errors.Is(err, orders.ErrDeemedSupplier) {
		return &InvoiceRef{Kind: InvoiceByAmazon}, nil
	}
	if err != nil {
		if errors.Is(err, orders.ErrNotSealed) || errors.Is(err, orders.ErrPurged) {
			return nil, final(ErrInvalidInput, err)
		}
		var p *orders.ProblemError
		if errors.As(err, &p) {
			// The code travels in the details, so the workflow records it without
			// parsing the message.
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvoiceNotIssuable, nil, p.Code)
		}
		return nil, classify(err)
	}
	return &InvoiceRef{Number: inv.Number, Kind: string(inv.Kind), IssuedAt: inv.IssuedAt,
		TotalGrossMinor: inv.TotalGrossMinor, TotalVATMinor: inv.TotalVATMinor, Upload: a.UploadInvoices}, nil
}

// PurgeOrder crypto-erases the order's PII and writes its certificate of
// sanitization (once: a retry returns the same certificate).
func (a *Lifecycle) PurgeOrder(ctx context.Context, in PurgeInput) (*PurgeResult, error) {
	p, err := a.Orders.PurgePII(ctx, orders.PurgeRequest{AmazonOrderID: in.AmazonOrderID, Reason: in.Reason,
		Detail: in.Detail, RequestedBy: in.RequestedBy, DueAt: in.DueAt})
	if err != nil {
		if errors.Is(err, orders.ErrNotSealed) {
			return nil, final(ErrInvalidInput, err)
		}
		return nil, err
	}
	return &PurgeResult{PurgedAt: p.PurgedAt, FieldsErased: p.FieldsErased, CertificateSeq: p.Certificate.Seq,
		CertificateHash: fmt.Sprintf("%x", p.Certificate.Hash)}, nil
}

// SealNote seals a person's note on an order under the order's PII key: the
// note is erased with the PII. Sealing the same field again changes nothing.
func (a *Lifecycle) SealNote(ctx context.Context, in NoteInput) error {
	err := a.Orders.SealNote(ctx, in.AmazonOrderID, in.Field, in.Text)
	if errors.Is(err, orders.ErrNotSealed) || errors.Is(err, orders.ErrNoKey) || errors.Is(err, orders.ErrInvalidNote) {
		return final(ErrInvalidInput, err)
	}
	return err
}
