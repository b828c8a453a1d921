package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/serviceerror"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/workflows"
)

// Check names of the notifications group (only when DPP_ORDER_CHANGE_QUEUE_URL is set).
const (
	CheckQueue        = "order-change queue"
	CheckSubscription = "order-change subscription"
	CheckConsumer     = "order-notifications workflow"
	CheckMissed       = "missed by notifications"
)

// missedWindow is how far back the missed-by-notifications count looks.
const missedWindow = 7 * 24 * time.Hour

// setupFix is the fix of most notification failures: setup looks each part up
// and creates only what is missing.
const setupFix = "run `starter notifications setup` (it creates only what is missing)"

func checkNotifications(ctx context.Context, cfg *config.Config, _ Options) []Result {
	if cfg.OrderChangeQueueURL == "" {
		return nil
	}
	out := []Result{}
	sq, err := notifications.NewSQSClient(ctx, cfg.AWSRegion, cfg.SQSEndpoint)
	if err != nil {
		return append(out, fail(CheckQueue, oneLine(err), "check AWS_REGION and the AWS credentials"))
	}
	arn, err := (&notifications.Queue{SQS: sq, URL: cfg.OrderChangeQueueURL}).ARN(ctx)
	if err != nil {
		return append(out, fail(CheckQueue, "DPP_ORDER_CHANGE_QUEUE_URL "+cfg.OrderChangeQueueURL+": "+oneLine(err),
			"correct DPP_ORDER_CHANGE_QUEUE_URL (and AWS_ENDPOINT_URL_SQS if not AWS's), and let the worker's AWS identity call sqs:GetQueueAttributes, ReceiveMessage and DeleteMessage on it"))
	}
	out = append(out, ok(CheckQueue, arn+" reachable"))
	out = append(out, checkSubscription(ctx, cfg, arn))
	out = append(out, checkConsumer(ctx, cfg))
	return append(out, checkMissed(ctx, cfg))
}

// checkSubscription finds the queue's destination (grantless getDestinations)
// and the seller's ORDER_CHANGE subscription, which must point at it.
func checkSubscription(ctx context.Context, cfg *config.Config, arn string) Result {
	c, err := spapi.New(spapi.Config{Endpoint: cfg.SPAPIEndpoint, TokenURL: cfg.LWATokenURL, ClientID: cfg.LWAClientID,
		ClientSecret: cfg.LWAClientSecret, RefreshToken: cfg.LWARefreshToken, MaxAttempts: 2, RetryBaseDelay: time.Second})
	if err != nil {
		return fail(CheckSubscription, oneLine(err), "correct SPAPI_ENDPOINT and LWA_TOKEN_URL")
	}
	ds, err := c.GetDestinations(ctx)
	if err != nil {
		return fail(CheckSubscription, "getDestinations: "+oneLine(err),
			"the application needs the Notifications API and a grantless token (scope "+spapi.NotificationsScope+"): check the LWA_* settings")
	}
	dest := ""
	for _, d := range ds {
		if d.SQSARN == arn {
			dest = d.ID
		}
	}
	if dest == "" {
		return fail(CheckSubscription, fmt.Sprintf("no destination for %s among the application's %d", arn, len(ds)), setupFix)
	}
	sub, err := c.GetSubscription(ctx, notifications.TypeOrderChange)
	switch {
	case err != nil:
		return fail(CheckSubscription, "getSubscription: "+oneLine(err), "check the LWA_* settings (the seller's token)")
	case sub == nil:
		return fail(CheckSubscription, "destination "+dest+" exists, but the seller has no ORDER_CHANGE subscription", setupFix)
	case sub.DestinationID != dest:
		return fail(CheckSubscription, fmt.Sprintf("ORDER_CHANGE subscription %s delivers to destination %s, not to %s (our queue's)", sub.ID, sub.DestinationID, dest),
			"delete that subscription (Notifications API deleteSubscriptionById), then "+setupFix)
	}
	return ok(CheckSubscription, fmt.Sprintf("subscription %s (payload %s) delivers to destination %s, our queue", sub.ID, sub.PayloadVersion, dest))
}

// checkConsumer checks that OrderNotifications runs and its activity is not
// failing over and over.
func checkConsumer(ctx context.Context, cfg *config.Config) Result {
	c, err := dialTemporal(ctx, cfg)
	if err != nil {
		return fail(CheckConsumer, "cannot connect to Temporal: "+oneLine(err), "see the temporal check")
	}
	defer c.Close()
	d, err := c.DescribeWorkflow(ctx, workflows.OrderNotificationsWorkflowID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return fail(CheckConsumer, "no workflow "+workflows.OrderNotificationsWorkflowID+": nothing consumes the queue", setupFix)
	case err != nil:
		return fail(CheckConsumer, oneLine(err), "see the temporal check")
	}
	if st := d.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return fail(CheckConsumer, fmt.Sprintf("%s is %s: nothing consumes the queue", workflows.OrderNotificationsWorkflowID, strings.ToLower(st.String()[len("WORKFLOW_EXECUTION_STATUS_"):])),
			"read why in the Web UI (temporal workflow show -w "+workflows.OrderNotificationsWorkflowID+"), fix it, then "+setupFix)
	}
	for _, a := range d.RawResponse.GetPendingActivities() {
		if a.GetAttempt() > 1 && a.GetLastFailure() != nil {
			return warn(CheckConsumer, fmt.Sprintf("%s runs, but %s failed %d times, last: %s", workflows.OrderNotificationsWorkflowID,
				a.GetActivityType().GetName(), a.GetAttempt()-1, oneLine(errors.New(a.GetLastFailure().GetMessage()))),
				"check that the workers have DPP_ORDER_CHANGE_QUEUE_URL and can reach the queue")
		}
	}
	return ok(CheckConsumer, fmt.Sprintf("%s running (run %s) on task queue %s", workflows.OrderNotificationsWorkflowID,
		d.WorkflowExecution.RunID, d.TaskQueueName))
}

// checkMissed applies OrderSync's own test to the database: an order sealed
// since notifications began (the first one received) with no notification of
// its own was found by the sweep, not by a notification. The last minute is
// left out: a notified order may be sealed just before its row is written.
func checkMissed(ctx context.Context, cfg *config.Config) Result {
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fail(CheckMissed, "cannot connect: "+oneLine(err), "see the database check")
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `
		SELECT o.amazon_order_id FROM orders o
		WHERE o.sealed_at >= greatest(now() - $1::interval, (SELECT min(received_at) FROM order_notifications))
		  AND o.sealed_at < now() - interval '1 minute'
		  AND NOT EXISTS (SELECT 1 FROM order_notifications n WHERE n.amazon_order_id = o.amazon_order_id)
		ORDER BY o.sealed_at DESC`, missedWindow.String())
	if err != nil {
		return fail(CheckMissed, oneLine(err), "see the database check")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fail(CheckMissed, oneLine(err), "see the database check")
	}
	if len(ids) == 0 {
		return ok(CheckMissed, "0 orders in the last 7 days were found by OrderSync's sweep without a notification")
	}
	shown := ids[:min(len(ids), 5)]
	return warn(CheckMissed, fmt.Sprintf("%d orders in the last 7 days were found by OrderSync's sweep without a notification (newest: %s)",
		len(ids), strings.Join(shown, ", ")),
		"Amazon did not deliver them to the queue, or the queue lost them: check the queue's dead-letter queue and the subscription; dpp_sync_missed_by_notifications_total counts the same")
}
