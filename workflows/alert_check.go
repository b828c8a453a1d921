package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// AlertCheckInput configures the check; empty watches every schedule of the
// Schedules table.
type AlertCheckInput struct {
	Schedules []string `json:"schedules,omitempty"`
	problem   error
}

// alertCheckOptions: one check reads the database, Temporal and the whole
// evidence chain; a check that cannot finish is retried by the next run.
var alertCheckOptions = workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute, RetryPolicy: &temporal.RetryPolicy{
	InitialInterval: time.Second, MaximumAttempts: 3, NonRetryableErrorTypes: finalErrors}}

// AlertCheck is run every DPP_ALERT_INTERVAL by the alert-check Schedule: one
// CheckAlerts activity evaluates every condition, and raises, clears and
// announces alerts in the database (table alerts), so each alert is sent once
// per condition whichever worker runs the check.
func AlertCheck(ctx workflow.Context, in AlertCheckInput) (*activities.CheckAlertsResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	if len(in.Schedules) == 0 {
		for _, s := range Schedules {
			in.Schedules = append(in.Schedules, s.ID)
		}
	}
	var a *activities.Alerts
	var res activities.CheckAlertsResult
	err := workflow.ExecuteActivity(withOptions(ctx, alertCheckOptions), a.CheckAlerts,
		activities.CheckAlertsInput{Schedules: in.Schedules}).Get(ctx, &res)
	return &res, err
}

// AmazonDataSweepInput configures the sweep; zero values take defaults.
type AmazonDataSweepInput struct {
	// BatchSize is how many orders one activity sweeps (default 100).
	BatchSize int `json:"batchSize,omitempty"`
	problem   error
}

// AmazonDataSweep is run daily by the amazon-data-sweep Schedule: it deletes
// the non-PII Amazon Information kept longer than DPP_AMAZON_DATA_RETENTION
// (18 months), each order with a certificate (orders.SweepAmazonData).
func AmazonDataSweep(ctx workflow.Context, in AmazonDataSweepInput) (*TaxRecordSweepResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	if in.BatchSize == 0 {
		in.BatchSize = 100
	}
	var a *activities.AmazonData
	total := 0
	for i := 0; i < maxAuditBatches; i++ {
		var res activities.SweepResult
		if err := workflow.ExecuteActivity(withOptions(ctx, sweepOptions), a.SweepAmazonData,
			activities.SweepInput{BatchSize: in.BatchSize}).Get(ctx, &res); err != nil {
			return nil, err
		}
		total += res.Purged
		if !res.Remaining {
			return &TaxRecordSweepResult{Purged: total}, nil
		}
	}
	return nil, workflow.NewContinueAsNewError(ctx, AmazonDataSweepName, in)
}
