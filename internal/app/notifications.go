package app

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/workflows"
)

// notificationVisibility hides a received notification long enough for its
// starts and signals; one not deleted by then is delivered again.
const notificationVisibility = 60

// openNotifications builds the ORDER_CHANGE queue when DPP_ORDER_CHANGE_QUEUE_URL
// is set; it makes no call.
func (a *App) openNotifications(ctx context.Context) error {
	if a.Config.OrderChangeQueueURL == "" {
		return nil
	}
	c, err := notifications.NewSQSClient(ctx, a.Config.AWSRegion, a.Config.SQSEndpoint)
	if err != nil {
		return err
	}
	a.OrderChanges = &notifications.Queue{SQS: c, URL: a.Config.OrderChangeQueueURL}
	return nil
}

// NotificationActivities are OrderNotifications' activities (Sealing, Temporal).
func (a *App) NotificationActivities() *activities.Notifications {
	return &activities.Notifications{Orders: a.Orders, Queue: a.OrderChanges,
		Lifecycles: &lifecycles{c: a.Temporal, taskQueue: a.Config.TaskQueue}, Visibility: notificationVisibility}
}

// notificationDestinationName names the SP-API destination of the queue.
const notificationDestinationName = "dpp-order-change"

// SetupNotifications is `starter notifications setup` (SPAPI, Temporal): it
// creates the SP-API destination for DPP_ORDER_CHANGE_QUEUE_URL, subscribes it
// to ORDER_CHANGE, and starts the OrderNotifications workflow that consumes it
// (left alone when it runs already). It returns what it did, one line a step.
func (a *App) SetupNotifications(ctx context.Context) ([]string, error) {
	if a.OrderChanges == nil {
		return nil, activities.ErrNotificationsOff
	}
	var report []string
	arn, err := a.OrderChanges.ARN(ctx)
	if err != nil {
		return nil, fmt.Errorf("DPP_ORDER_CHANGE_QUEUE_URL: %w", err)
	}
	dest, err := a.SPAPI.CreateDestination(ctx, notificationDestinationName, arn)
	switch {
	case errors.Is(err, spapi.ErrAlreadyExists):
		report = append(report, "destination for "+arn+" exists already (subscription left as it is)")
	case err != nil:
		return nil, fmt.Errorf("SP-API createDestination: %w", err)
	default:
		report = append(report, "destination "+dest+" for "+arn)
		sub, err := a.SPAPI.CreateSubscription(ctx, notifications.TypeOrderChange, dest)
		switch {
		case errors.Is(err, spapi.ErrAlreadyExists):
			report = append(report, "subscription to ORDER_CHANGE exists already")
		case err != nil:
			return report, fmt.Errorf("SP-API createSubscription: %w", err)
		default:
			report = append(report, "subscription "+sub+" to ORDER_CHANGE")
		}
	}
	run, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.OrderNotificationsWorkflowID, TaskQueue: a.Config.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.OrderNotificationsName)
	if err != nil {
		return report, fmt.Errorf("start %s: %w", workflows.OrderNotificationsWorkflowID, err)
	}
	return append(report, "workflow "+workflows.OrderNotificationsWorkflowID+" running (run "+run.GetRunID()+")"), nil
}
