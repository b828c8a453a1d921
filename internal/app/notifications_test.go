package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

// notificationStack is a stack whose sandbox delivers ORDER_CHANGE
// notifications to a goaws queue of its own, set up by `starter notifications
// setup` (App.SetupNotifications). With lwa it has LWA credentials, which the
// sandbox then requires (the destination calls the grantless token, the rest
// the seller's), and Amazon's rates.
func notificationStack(t *testing.T, lwa bool) *stack {
	t.Helper()
	g := testenv.GoAWSForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := notifications.NewSQSClient(ctx, g.Region, g.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("order-change-" + hex.EncodeToString(b))})
	if err != nil {
		t.Fatal(err)
	}
	return newStack(t, func(env map[string]string, opts *sandbox.Options) {
		env["AWS_ENDPOINT_URL_SQS"] = g.Endpoint()
		env["DPP_ORDER_CHANGE_QUEUE_URL"] = aws.ToString(q.QueueUrl)
		opts.SQS = c
		if !lwa {
			return
		}
		env["LWA_CLIENT_ID"], env["LWA_CLIENT_SECRET"], env["LWA_REFRESH_TOKEN"] = "amzn1.application-oa2-client.dpp", "lwa-secret", "Atzr|dpp-seller"
		opts.Credentials = &sandbox.Credentials{ClientID: env["LWA_CLIENT_ID"], ClientSecret: env["LWA_CLIENT_SECRET"], RefreshToken: env["LWA_REFRESH_TOKEN"]}
		delete(env, "DPP_SPAPI_SANDBOX_SPEEDUP")
	})
}

// A new order starts its lifecycle from its notification within seconds, a
// cancellation is signalled, duplicates change nothing, OrderSync then finds
// nothing the notifications missed, and neither the notification's postcode
// nor any other PII reaches history, database or logs.
func TestOrderChangeNotificationsDriveLifecycles(t *testing.T) {
	s := notificationStack(t, false)
	ctx := s.ctx()
	report, err := s.app.SetupNotifications(ctx)
	s.must(err, "notifications setup")
	t.Cleanup(func() { // one consumer per namespace: leave none behind for other tests
		_ = s.app.Temporal.TerminateWorkflow(context.Background(), workflows.OrderNotificationsWorkflowID, "", "test over")
	})
	t.Logf("notifications setup:\n%s", strings.Join(report, "\n"))
	if len(report) != 3 || !strings.HasSuffix(report[0], " created") || !strings.HasSuffix(report[1], " created") {
		t.Fatalf("setup report %q", report)
	}
	d, err := s.app.Temporal.DescribeWorkflow(ctx, workflows.OrderNotificationsWorkflowID, "")
	s.must(err, "describe %s", workflows.OrderNotificationsWorkflowID)
	if d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("OrderNotifications is %v", d.Status)
	}

	t0 := time.Now()
	ids := s.sandbox.Generate(3)
	for _, id := range ids {
		s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
	}
	t.Logf("3 orders from notification to sealed and invoiced in %v", time.Since(t0).Round(time.Millisecond))

	s.must(s.sandbox.Cancel(ids[0]), "cancel")
	if res := s.await(ctx, ids[0]); res.PurgeReason != workflows.PurgeReasonCancelled {
		t.Fatalf("cancelled order: %+v", res)
	}
	s.must(s.sandbox.Deliver(ids[1]), "deliver") // Shipped: changes nothing

	searchable()
	res := s.runSync(ctx)
	if res.Started != 0 || res.MissedByNotifications != 0 || res.AlreadyStarted < 2 {
		t.Fatalf("OrderSync after notifications: %+v", res)
	}

	var rows int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM order_notifications WHERE amazon_order_id = ANY($1)`, ids).Scan(&rows), "count")
	if rows != 5 { // 3 new, 1 cancelled, 1 shipped
		t.Fatalf("order_notifications: %d rows", rows)
	}
	hist := s.history(ctx, workflows.OrderNotificationsWorkflowID)
	// Still in its first round (each lasts 10 minutes): the history replays up to it.
	s.saveHistory(ctx, workflows.OrderNotificationsWorkflowID, "order_notifications.json")
	s.assertNoPII("OrderNotifications history", hist)
	dump := s.pgDump()
	s.assertNoPII("database", dump)
	s.assertNoPII("logs", []byte(s.logs.String()))
	for _, id := range ids {
		o, _ := s.sandbox.Order(id)
		if o.Recipient == nil || o.Recipient.DeliveryAddress == nil {
			continue
		}
		pc := []byte(o.Recipient.DeliveryAddress.PostalCode)
		if bytes.Contains(hist, pc) || bytes.Contains([]byte(s.logs.String()), pc) || bytes.Contains(dump, pc) {
			t.Fatalf("order %s: its postcode reached history, logs or the database", id)
		}
	}
}

// A sync pass with notifications on that has to start an order itself counts
// it as missed (dpp_sync_missed_by_notifications_total).
func TestOrderSyncCountsWhatNotificationsMissed(t *testing.T) {
	s := notificationStack(t, false) // no subscription: the sandbox sends nothing
	ctx := s.ctx()
	ids := s.sandbox.Generate(2)
	searchable()
	res := s.runSync(ctx)
	if res.Started != 2 || res.MissedByNotifications != 2 {
		t.Fatalf("OrderSync: %+v", res)
	}
	for _, id := range ids {
		s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
	}
	// The SDK's counters reach the registry within its report interval.
	var v float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if v = s.app.Metrics.Value("dpp_sync_missed_by_notifications_total"); v == 2 {
			return
		}
	}
	t.Fatalf("metric %v, want 2", v)
}

// A setup that stopped between the destination and the subscription is
// completed by the next run: it finds the destination, creates only the
// subscription, and a third run finds both.
func TestNotificationsSetupCompletesAHalfDoneRun(t *testing.T) {
	s := notificationStack(t, false)
	ctx := s.ctx()
	t.Cleanup(func() {
		_ = s.app.Temporal.TerminateWorkflow(context.Background(), workflows.OrderNotificationsWorkflowID, "", "test over")
	})
	arn, err := s.app.OrderChanges.ARN(ctx)
	s.must(err, "queue ARN")
	// The first run's createDestination, then it died.
	dest, err := s.app.SPAPI.CreateDestination(ctx, "dpp-order-change", arn)
	s.must(err, "createDestination")

	report, err := s.app.SetupNotifications(ctx)
	s.must(err, "setup after the half-done run")
	t.Logf("setup after a run killed between destination and subscription:\n%s", strings.Join(report, "\n"))
	if len(report) != 3 || report[0] != "destination "+dest+" for "+arn+" found" || !strings.HasSuffix(report[1], " to ORDER_CHANGE created") {
		t.Fatalf("setup report %q", report)
	}
	again, err := s.app.SetupNotifications(ctx)
	s.must(err, "setup again")
	t.Logf("setup again:\n%s", strings.Join(again, "\n"))
	if len(again) != 3 || again[0] != report[0] || again[1] != strings.TrimSuffix(report[1], "created")+"found" {
		t.Fatalf("setup again %q", again)
	}
	if n, subscribed := s.sandbox.Destinations(); n != 1 || !subscribed {
		t.Fatalf("sandbox: %d destinations, subscribed %v; want one of each", n, subscribed)
	}
}
