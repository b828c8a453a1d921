package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/orders"
)

// Notifications consumes SP-API ORDER_CHANGE notifications from their SQS queue
// and hands each to the order's lifecycle (the OrderNotifications workflow).
type Notifications struct {
	Orders *orders.Service
	// Queue is DPP_ORDER_CHANGE_QUEUE_URL; nil when notifications are off.
	Queue      *notifications.Queue
	Lifecycles OrderLifecycles
	// Visibility is how long a received message stays hidden (seconds): a
	// consumer that dies before deleting it leaves it to the next one.
	Visibility int32
}

// Register registers the notification activities.
func (a *Notifications) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a, registerOptions)
}

// ConsumeInput bounds one ConsumeOrderChanges call.
type ConsumeInput struct {
	// RunFor is how long the call consumes before it returns, so the workflow
	// can continue as new with a short history.
	RunFor time.Duration `json:"runFor"`
}

// ConsumeResult counts what one call did; it is heartbeated as it goes.
type ConsumeResult struct {
	Received int `json:"received"`
	// Started counts lifecycles a notification started (new orders).
	Started   int `json:"started"`
	Cancelled int `json:"cancelled"`
	Delivered int `json:"delivered"`
	// Duplicates are notifications already handled (Amazon delivers at least once).
	Duplicates    int `json:"duplicates"`
	SkippedPurged int `json:"skippedPurged"`
	// Ignored are notifications of other types, deleted unread.
	Ignored int `json:"ignored"`
	// Malformed are left on the queue, so its redrive policy moves them to the
	// dead-letter queue for an operator: nothing is lost.
	Malformed int `json:"malformed"`
}

// receiveWait is SQS's longest long poll: a quiet queue costs one call per 20 s.
const receiveWait = 20

// ErrNotificationsOff is returned when no queue is configured.
var ErrNotificationsOff = errors.New("DPP_ORDER_CHANGE_QUEUE_URL is empty: ORDER_CHANGE notifications are off")

// ConsumeOrderChanges long-polls the queue for in.RunFor, heartbeating after
// every poll. Each notification is deleted only after its workflow has it: the
// lifecycle started (a no-op when it runs already) and a cancellation or
// delivery signalled. Duplicates (same notification id) change nothing, and so
// do late ones: only facts that cannot be undone (cancelled, delivered) are
// signalled, and a lifecycle takes each once.
func (a *Notifications) ConsumeOrderChanges(ctx context.Context, in ConsumeInput) (*ConsumeResult, error) {
	if a.Queue == nil {
		// A worker without the setting: retrying cannot help, say so at once.
		return nil, temporal.NewNonRetryableApplicationError(ErrNotificationsOff.Error(), "NotificationsOff", nil)
	}
	var r ConsumeResult
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &r)
	}
	deadline := time.Now().Add(in.RunFor)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		wait := int32(min(receiveWait, max(1, time.Until(deadline)/time.Second)))
		msgs, err := a.Queue.Receive(ctx, 10, wait, a.Visibility)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return nil, err
		}
		for _, m := range msgs {
			r.Received++
			if err := a.handle(ctx, m, &r); err != nil {
				return nil, err
			}
		}
		activity.RecordHeartbeat(ctx, r)
	}
	return &r, nil
}

func (a *Notifications) handle(ctx context.Context, m notifications.Message, r *ConsumeResult) error {
	log := activity.GetLogger(ctx)
	c, err := notifications.ParseOrderChange(m.Body)
	switch {
	case errors.Is(err, notifications.ErrNotOrderChange):
		r.Ignored++
		return a.Queue.Delete(ctx, m)
	case err != nil:
		r.Malformed++
		log.Warn("Malformed ORDER_CHANGE notification left for the dead-letter queue", "messageId", m.ID, "problem", err.Error())
		return nil
	}
	var seen bool
	if err := a.Orders.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM order_notifications WHERE notification_id = $1)`,
		c.NotificationID).Scan(&seen); err != nil {
		return fmt.Errorf("read order_notifications: %w", err)
	}
	if seen {
		r.Duplicates++
		return a.Queue.Delete(ctx, m)
	}
	if _, err := a.Orders.Facts(ctx, c.AmazonOrderID); errors.Is(err, orders.ErrPurged) {
		// Never fetch the PII of an erased order again, whatever Amazon reports.
		r.SkippedPurged++
	} else if err != nil && !errors.Is(err, orders.ErrNotSealed) {
		return err
	} else if err := a.deliver(ctx, c, r); err != nil {
		return err
	}
	// Recorded only once the workflow has the event: a crash before this line
	// replays it, which starts and signals nothing new.
	if _, err := a.Orders.Pool.Exec(ctx, `INSERT INTO order_notifications (notification_id, amazon_order_id, order_status, changed_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (notification_id) DO NOTHING`,
		c.NotificationID, c.AmazonOrderID, c.OrderStatus, c.ChangedAt); err != nil {
		return fmt.Errorf("record order notification: %w", err)
	}
	return a.Queue.Delete(ctx, m)
}

// deliver hands one change to the order's lifecycle.
func (a *Notifications) deliver(ctx context.Context, c notifications.OrderChange, r *ConsumeResult) error {
	started, err := a.Lifecycles.Start(ctx, c.AmazonOrderID)
	if err != nil {
		return err
	}
	if started {
		r.Started++
	}
	if c.Cancelled() {
		if err := a.Lifecycles.Cancelled(ctx, c.AmazonOrderID, CancelReasonOnAmazon); err != nil {
			return err
		}
		r.Cancelled++
	}
	if c.Delivered() {
		if err := a.Lifecycles.Delivered(ctx, c.AmazonOrderID, c.ChangedAt); err != nil {
			return err
		}
		r.Delivered++
	}
	return nil
}

// NotifiedOrders reports which of ids an ORDER_CHANGE notification has reported:
// OrderSync counts the others as missed by notifications.
func NotifiedOrders(ctx context.Context, o *orders.Service, ids []string) (map[string]bool, error) {
	rows, err := o.Pool.Query(ctx, `SELECT DISTINCT amazon_order_id FROM order_notifications WHERE amazon_order_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read order_notifications: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		seen[id] = true
	}
	return seen, rows.Err()
}
