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
// makes sure of an SP-API destination for DPP_ORDER_CHANGE_QUEUE_URL, the
// seller's ORDER_CHANGE subscription to it, and the OrderNotifications
// workflow that consumes the queue. Each is looked up first and created only
// when missing, so a run that stopped half-way is completed by the next one.
// It returns what it found or did, one line a step.
func (a *App) SetupNotifications(ctx context.Context) ([]string, error) {
	if a.OrderChanges == nil {
		return nil, activities.ErrNotificationsOff
	}
	var report []string
	arn, err := a.OrderChanges.ARN(ctx)
	if err != nil {
		return nil, fmt.Errorf("DPP_ORDER_CHANGE_QUEUE_URL: %w", err)
	}
	dest, found, err := a.orderChangeDestination(ctx, arn)
	if err != nil {
		return nil, err
	}
	report = append(report, fmt.Sprintf("destination %s for %s %s", dest, arn, foundOrCreated(found)))

	sub, err := a.SPAPI.GetSubscription(ctx, notifications.TypeOrderChange)
	if err != nil {
		return report, fmt.Errorf("SP-API getSubscription: %w", err)
	}
	switch {
	case sub == nil:
		id, err := a.SPAPI.CreateSubscription(ctx, notifications.TypeOrderChange, dest)
		if err != nil {
			return report, fmt.Errorf("SP-API createSubscription: %w", err)
		}
		report = append(report, "subscription "+id+" to ORDER_CHANGE created")
	case sub.DestinationID != dest:
		return report, fmt.Errorf("the seller's ORDER_CHANGE subscription %s delivers to destination %s, not to %s (DPP_ORDER_CHANGE_QUEUE_URL's): "+
			"delete it (Notifications API deleteSubscriptionById) or point DPP_ORDER_CHANGE_QUEUE_URL at that destination's queue, then run setup again",
			sub.ID, sub.DestinationID, dest)
	default:
		report = append(report, "subscription "+sub.ID+" to ORDER_CHANGE found")
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

// orderChangeDestination returns the id of the destination for the queue's
// ARN, creating it when getDestinations does not list it; found says it was
// there. A 409 means another setup created it meanwhile: it is looked up again.
func (a *App) orderChangeDestination(ctx context.Context, arn string) (id string, found bool, err error) {
	lookup := func() (string, error) {
		ds, err := a.SPAPI.GetDestinations(ctx)
		if err != nil {
			return "", fmt.Errorf("SP-API getDestinations: %w", err)
		}
		for _, d := range ds {
			if d.SQSARN == arn {
				return d.ID, nil
			}
		}
		return "", nil
	}
	if id, err = lookup(); err != nil || id != "" {
		return id, id != "", err
	}
	id, err = a.SPAPI.CreateDestination(ctx, notificationDestinationName, arn)
	if errors.Is(err, spapi.ErrAlreadyExists) {
		if id, err = lookup(); err == nil && id == "" {
			err = errors.New("SP-API createDestination: 409 Conflict, yet getDestinations lists no destination for " + arn)
		}
		return id, id != "", err
	}
	if err != nil {
		return "", false, fmt.Errorf("SP-API createDestination: %w", err)
	}
	return id, false, nil
}

func foundOrCreated(found bool) string {
	if found {
		return "found"
	}
	return "created"
}
