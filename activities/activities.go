package activities

import (
	"context"
	"errors"
)

// Activities holds the dependencies every activity needs. Methods are grouped by
// concern: seal.go, invoice.go, purge.go, sync.go, taxsweep.go.
type Activities struct {
}

func (a *Activities) FetchAndSeal(ctx context.Context, in FetchAndSealInput) (*OrderFacts, error) {
	return nil, errors.New("todo")
}
func (a *Activities) IssueInvoice(ctx context.Context, in IssueInvoiceInput) (*InvoiceRef, error) {
	return nil, errors.New("todo")
}
func (a *Activities) PurgeOrder(ctx context.Context, in PurgeInput) (*PurgeResult, error) {
	return nil, errors.New("todo")
}
func (a *Activities) SyncOrders(ctx context.Context, in SyncOrdersInput) (*SyncResult, error) {
	return nil, errors.New("todo")
}
func (a *Activities) SweepTaxRecords(ctx context.Context, in SweepInput) (*SweepResult, error) {
	return nil, errors.New("todo")
}
