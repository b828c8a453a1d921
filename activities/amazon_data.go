package activities

import (
	"time"

	"context"
	"errors"

	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/orders"
)

// AmazonData sweeps non-PII Amazon Information kept longer than the policy
// allows (18 months: DPP_AMAZON_DATA_RETENTION).
type AmazonData struct {
	Orders    *orders.Service
	Retention time.Duration
}

// Register registers the sweep's activity.
func (x *AmazonData) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(x, registerOptions)
}

// SweepAmazonData empties one batch of orders' facts past the retention, each
// with a certificate, and deletes resolved sync rejects that old.
func (x *AmazonData) SweepAmazonData(ctx context.Context, in SweepInput) (*SweepResult, error) {
	if in.BatchSize <= 0 {
		return nil, final(ErrInvalidInput, errors.New("SweepAmazonData: batchSize must be positive"))
	}
	n, more, err := x.Orders.SweepAmazonData(ctx, x.Retention, in.BatchSize)
	if err != nil {
		return nil, err
	}
	return &SweepResult{Purged: n, Remaining: more}, nil
}
