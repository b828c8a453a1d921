package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// OrderSync is run by the order-sync Schedule: one pass asks SP-API for orders
// updated since the watermark, starts an OrderLifecycle per new order and reports
// deliveries and cancellations to running ones. The watermark lives in Postgres
// and only moves once a whole search has been handled, so no order is skipped.
// A bad input fails the run at once (ErrInvalidInput), naming the field.
func (o Options) OrderSync(ctx workflow.Context, in OrderSyncInput) (*activities.SyncResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	var a *activities.Sync
	var res activities.SyncResult
	err := workflow.ExecuteActivity(withOptions(ctx, onQueue(syncOptions, o.SPAPISyncTaskQueue)), a.SyncOrders,
		activities.SyncOrdersInput{Name: in.Name}).Get(ctx, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// TaxRecordSweepInput configures the sweep; zero values take defaults. It
// decodes strictly (input.go).
type TaxRecordSweepInput struct {
	// BatchSize is how many tax records one activity purges (1 to 1000,
	// default 100).
	BatchSize int `json:"batchSize,omitempty"`
	problem   error
}

// TaxRecordSweepResult counts what the sweep purged.
type TaxRecordSweepResult struct {
	Purged int `json:"purged"`
}

// maxSweepBatches bounds one run's history; the rest continues as new.
const maxSweepBatches = 200

// TaxRecordSweep is run daily by the tax-record-sweep Schedule: it crypto-erases
// VAT invoices older than the tax retention, each with its certificate. A bad
// input fails the run at once (ErrInvalidInput), naming the field.
func TaxRecordSweep(ctx workflow.Context, in TaxRecordSweepInput) (*TaxRecordSweepResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	var a *activities.Retention
	if in.BatchSize <= 0 {
		in.BatchSize = 100
	}
	total := 0
	for i := 0; i < maxSweepBatches; i++ {
		var res activities.SweepResult
		if err := workflow.ExecuteActivity(withOptions(ctx, sweepOptions), a.SweepTaxRecords,
			activities.SweepInput{BatchSize: in.BatchSize}).Get(ctx, &res); err != nil {
			return nil, err
		}
		total += res.Purged
		if !res.Remaining {
			return &TaxRecordSweepResult{Purged: total}, nil
		}
	}
	return nil, workflow.NewContinueAsNewError(ctx, TaxRecordSweepName, in)
}
