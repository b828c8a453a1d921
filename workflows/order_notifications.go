package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// OrderNotificationsName is the workflow that consumes ORDER_CHANGE
// notifications; OrderNotificationsWorkflowID is its one run, started by
// `starter notifications setup`.
const (
	OrderNotificationsName       = "OrderNotifications"
	OrderNotificationsWorkflowID = "order-notifications"
)

// notificationRound is one ConsumeOrderChanges call; its heartbeat (after every
// 20 s long poll) tells Temporal within a minute that a worker died.
const notificationRound = 10 * time.Minute

var notificationOptions = workflow.ActivityOptions{StartToCloseTimeout: notificationRound + 2*time.Minute,
	HeartbeatTimeout: time.Minute, RetryPolicy: retry()}

// maxNotificationRounds keeps each run's history short (3 events a round): the
// rest continues as new, about every 8 hours.
const maxNotificationRounds = 50

// OrderNotifications consumes the ORDER_CHANGE queue for ever, one bounded
// activity at a time; OrderSync stays the safety net for what it misses.
func OrderNotifications(ctx workflow.Context) error {
	var a *activities.Notifications
	ctx = workflow.WithActivityOptions(ctx, notificationOptions)
	for range maxNotificationRounds {
		if err := workflow.ExecuteActivity(ctx, a.ConsumeOrderChanges,
			activities.ConsumeInput{RunFor: notificationRound}).Get(ctx, nil); err != nil {
			return err
		}
	}
	return workflow.NewContinueAsNewError(ctx, OrderNotificationsName)
}
