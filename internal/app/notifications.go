package app

import (
	"context"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/notifications"
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
