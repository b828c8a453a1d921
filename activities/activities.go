package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
)

// OrderSource is the part of the SP-API client the activities use.
type OrderSource interface {
	GetOrder(ctx context.Context, orderID string, includedData []string) (*spapi.Order, error)
	SearchOrders(ctx context.Context, p spapi.SearchOrdersParams) (*spapi.SearchOrdersResponse, error)
}

// Activities holds the dependencies every activity needs. Methods are grouped by
// concern: seal.go (fetch, seal, invoice, purge, tax sweep), retention.go
// (retention records, problems, the retention audit), sync.go. Every exported
// method is an activity.
type Activities struct {
	Orders *orders.Service
	SPAPI  OrderSource
	// Lifecycles starts and signals order workflows (OrderSync only).
	Lifecycles OrderLifecycles
	// OrderRuns tells whether an order's workflow is still running (RetentionAudit only).
	OrderRuns OrderRuns
	// Sync settings; see internal/config for their defaults.
	MarketplaceIDs []string
	SyncLookback   time.Duration
	// SyncSettle keeps searches this far behind now: Amazon wants
	// lastUpdatedBefore at least two minutes in the past. Zero omits it.
	SyncSettle time.Duration
	// SyncRejectRetryFor is how long a malformed order is asked for again on
	// every pass; zero means DefaultSyncRejectRetryFor.
	SyncRejectRetryFor time.Duration
}

// final marks an error retrying cannot fix; the message must already be free of PII.
func final(errType string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, nil)
}

// classify turns errors from the domain and SP-API into final or retryable
// activity errors. Everything not known to be final is retried: an outage, or a
// bad setting fixed while the order waits, then continues where it stopped.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var respErr *spapi.ResponseError
	var apiErr *spapi.Error
	switch {
	case errors.Is(err, orders.ErrInvalidOrder), errors.As(err, &respErr):
		return final(ErrInvalidOrder, err)
	case errors.As(err, &apiErr) && (apiErr.NotFound() || apiErr.StatusCode == 400):
		return final(ErrOrderNotFound, err)
	}
	return err
}
