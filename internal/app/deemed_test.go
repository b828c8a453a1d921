package app_test

import (
	"errors"
	"testing"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/orders"
)

// Amazon, as deemed supplier (marketplace facilitator), invoices the buyer: the
// seller issues no invoice, and the PII is still sealed and purged.
func TestNoInvoiceWhenAmazonIsTheDeemedSupplier(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.must(s.sandbox.FacilitateByMarketplace(id), "facilitate")
	s.startOrder(ctx, id)
	res := s.purgeNow(ctx, id)
	if res.InvoiceNumber != "" || res.CertificateSeq == 0 {
		t.Fatalf("result %+v", res)
	}
	if _, err := s.app.Orders.Invoice(ctx, id); !errors.Is(err, orders.ErrNoInvoice) {
		t.Fatalf("invoice: %v", err)
	}
	ref, err := s.app.LifecycleActivities().IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id})
	if err == nil {
		t.Fatalf("invoicing a purged order must fail, got %+v", ref)
	}
}
