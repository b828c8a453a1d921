package main

import (
	"context"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/workflows"
)

// The baseline is an order-shaped workflow whose activities do nothing: the
// ceiling the Temporal dev server on this machine sets for our pipeline. It
// mirrors OrderLifecycle's path through history event for event: the same
// activity names and options, the same search-attribute upserts at the same
// points, a delivery wait (timer) ended by a `delivered` signal, a retention
// timer, then the purge. Only the activities' work and OrderSync are missing.

const baselineWorkflowName = "BenchBaselineOrder"

type baselineInput struct {
	AmazonOrderID string        `json:"amazonOrderId"`
	Retention     time.Duration `json:"retention"`
	LatestWait    time.Duration `json:"latestWait"`
}

type baselineFacts struct {
	AmazonOrderID string `json:"amazonOrderId"`
	SealedFields  int    `json:"sealedFields"`
}

// baselineActivities are no-ops; they count completions so the harness knows
// when every baseline order waits for its delivery.
type baselineActivities struct {
	sealed, invoiced, purged atomic.Int64
}

func (b *baselineActivities) seal(ctx context.Context, in baselineInput) (*baselineFacts, error) {
	b.sealed.Add(1)
	return &baselineFacts{AmazonOrderID: in.AmazonOrderID, SealedFields: 12}, nil
}

func (b *baselineActivities) invoice(ctx context.Context, in baselineInput) (string, error) {
	b.invoiced.Add(1)
	return "INV-000000", nil
}

func (b *baselineActivities) purge(ctx context.Context, in baselineInput) (int64, error) {
	b.purged.Add(1)
	return 1, nil
}

func (b *baselineActivities) register(r interface {
	RegisterActivityWithOptions(a interface{}, options activity.RegisterOptions)
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(baselineOrder, workflow.RegisterOptions{Name: baselineWorkflowName})
	// Same activity type names as the real ones: the history analysis is shared.
	r.RegisterActivityWithOptions(b.seal, activity.RegisterOptions{Name: actSeal})
	r.RegisterActivityWithOptions(b.invoice, activity.RegisterOptions{Name: actInvoice})
	r.RegisterActivityWithOptions(b.purge, activity.RegisterOptions{Name: actPurge})
}

func baselineOrder(ctx workflow.Context, in baselineInput) error {
	ao := workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute}}
	ctx = workflow.WithActivityOptions(ctx, ao)
	upsert := func(stage string, more ...temporal.SearchAttributeUpdate) {
		_ = workflow.UpsertTypedSearchAttributes(ctx, append([]temporal.SearchAttributeUpdate{workflows.OrderStageKey.ValueSet(stage)}, more...)...)
	}
	var deliveredAt *time.Time
	workflow.Go(ctx, func(ctx workflow.Context) {
		var s workflows.DeliveredSignal
		workflow.GetSignalChannel(ctx, workflows.SignalDelivered).Receive(ctx, &s)
		at := s.DeliveredAt
		deliveredAt = &at
	})

	upsert(workflows.StageSealing, workflows.AmazonOrderIDKey.ValueSet(in.AmazonOrderID))
	var facts baselineFacts
	if err := workflow.ExecuteActivity(ctx, actSeal, in).Get(ctx, &facts); err != nil {
		return err
	}
	upsert(workflows.StageInvoicing)
	var number string
	if err := workflow.ExecuteActivity(ctx, actInvoice, in).Get(ctx, &number); err != nil {
		return err
	}
	if deliveredAt == nil {
		upsert(workflows.StageAwaitingDelivery)
		if _, err := workflow.AwaitWithTimeout(ctx, in.LatestWait, func() bool { return deliveredAt != nil }); err != nil {
			return err
		}
	}
	due := workflow.Now(ctx)
	if deliveredAt != nil {
		due = deliveredAt.Add(in.Retention)
	}
	upsert(workflows.StageRetained, workflows.PurgeDueAtKey.ValueSet(due))
	if wait := due.Sub(workflow.Now(ctx)); wait > 0 {
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	upsert(workflows.StagePurging)
	var seq int64
	if err := workflow.ExecuteActivity(ctx, actPurge, in).Get(ctx, &seq); err != nil {
		return err
	}
	upsert(workflows.StagePurged)
	return nil
}
