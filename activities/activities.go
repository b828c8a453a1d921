package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
)

// OrderSource is the part of the SP-API client the activities use.
type OrderSource interface {
	GetOrder(ctx context.Context, orderID string, includedData []string) (*spapi.Order, error)
	SearchOrders(ctx context.Context, p spapi.SearchOrdersParams) (*spapi.SearchOrdersResponse, error)
}

// Activities are grouped by concern, each a struct holding only what that
// concern uses, so a command builds the dependencies it needs and nothing more:
// Lifecycle (lifecycle.go: fetch and seal, invoice, purge, notes), Retention
// (retention.go: retention records, problems, the tax-record sweep, the
// retention audit) and Sync (sync.go). Every exported method but Register is an
// activity; each concern registers itself.

// registerOptions lets a concern register itself as a struct: Register is
// exported but is no activity, so methods that are no activity are skipped.
// TestEveryActivityRegistered makes sure no real activity is skipped that way.
var registerOptions = activity.RegisterOptions{SkipInvalidStructFunctions: true}

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
