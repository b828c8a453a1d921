package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/workflows"
)

// lifecycles implements activities.OrderLifecycles over the Temporal client.
type lifecycles struct {
	c         client.Client
	taskQueue string
}

// StartOrderOptions are the options every start of an order's lifecycle uses.
func StartOrderOptions(amazonOrderID, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: workflows.OrderWorkflowID(amazonOrderID), TaskQueue: taskQueue,
		// A failed run may start again once its cause is fixed; a completed one never.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.AmazonOrderIDKey.ValueSet(amazonOrderID)),
	}
}

func (l *lifecycles) Start(ctx context.Context, id string) (bool, error) {
	_, err := l.c.ExecuteWorkflow(ctx, StartOrderOptions(id, l.taskQueue), workflows.OrderLifecycleName,
		workflows.OrderInput{AmazonOrderID: id})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("start %s: %w", workflows.OrderWorkflowID(id), err)
	}
	return true, nil
}

// Running tells whether the order's lifecycle workflow is running; false when
// it closed in any way or never started.
func (l *lifecycles) Running(ctx context.Context, id string) (bool, error) {
	d, err := l.c.DescribeWorkflow(ctx, workflows.OrderWorkflowID(id), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe %s: %w", workflows.OrderWorkflowID(id), err)
	}
	return d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

func (l *lifecycles) Delivered(ctx context.Context, id string, at time.Time) error {
	return l.signal(ctx, id, workflows.SignalDelivered, workflows.DeliveredSignal{DeliveredAt: at})
}

func (l *lifecycles) Cancelled(ctx context.Context, id, reason string) error {
	return l.signal(ctx, id, workflows.SignalCancelled, workflows.CancelledSignal{Reason: reason})
}

// ItemsCancelled asks the running lifecycle for a credit note per cancelled
// item, as a refund ("item-cancelled-<orderItemId>", so a repeated report
// changes nothing). An item that was not invoiced is refused there, and listed
// in the order's rejectedSignals.
func (l *lifecycles) ItemsCancelled(ctx context.Context, id string, items []activities.CancelledItem) error {
	for _, it := range items {
		refund := workflows.RefundSignal{RefundID: "item-cancelled-" + it.OrderItemID, Reason: workflows.RefundItemCancelled,
			By: actor.OrderSync, Lines: []workflows.RefundLine{{OrderItemID: it.OrderItemID, Quantity: it.Quantity}}}
		if err := l.signal(ctx, id, workflows.SignalRefund, refund); err != nil {
			return err
		}
	}
	return nil
}

func (l *lifecycles) signal(ctx context.Context, id, name string, payload any) error {
	err := l.c.SignalWorkflow(ctx, workflows.OrderWorkflowID(id), "", name, payload)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil // finished: nothing left to tell it
	}
	if err != nil {
		return fmt.Errorf("signal %s to %s: %w", name, workflows.OrderWorkflowID(id), err)
	}
	return nil
}
