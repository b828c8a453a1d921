package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/testenv"
)

const postcodeMarker = "MARKER-PC-9Z"

// notificationQueue is a queue of its own on the shared goaws, with a one-second
// visibility timeout (goaws takes it from the queue, not from ReceiveMessage).
func notificationQueue(t *testing.T, ctx context.Context) *notifications.Queue {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	g := testenv.GoAWSForTest(t)
	c, err := notifications.NewSQSClient(ctx, g.Region, g.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("order-change-" + hex.EncodeToString(b)),
		Attributes: map[string]string{"VisibilityTimeout": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	return &notifications.Queue{SQS: c, URL: aws.ToString(out.QueueUrl)}
}

// Duplicates, late and out-of-order notifications change nothing; a malformed
// one stays on the queue for its dead-letter queue; PII never comes out.
func TestConsumeOrderChangesOnGoAWS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q := notificationQueue(t, ctx)
	pool := testenv.Pool(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	const a, b = "203-1111111-0000001", "203-2222222-0000002"
	x := notifications.Extra{DestinationPostalCode: postcodeMarker, MarketplaceID: "A1F83G8C2ARO7P", PurchaseDate: now}
	send := func(body []byte) {
		t.Helper()
		if err := q.Send(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	created := notifications.OrderChange{NotificationID: "n-a-1", AmazonOrderID: a, OrderStatus: "Unshipped", ChangedAt: now}
	cancelled := notifications.OrderChange{NotificationID: "n-a-2", AmazonOrderID: a, OrderStatus: "Canceled", ChangedAt: now.Add(time.Second)}
	late := notifications.OrderChange{NotificationID: "n-a-0", AmazonOrderID: a, OrderStatus: "Pending", ChangedAt: now.Add(-time.Second)}
	send(notifications.OrderChangeBody(created, x))
	send(notifications.OrderChangeBody(created, x)) // Amazon delivers at least once
	send(notifications.OrderChangeBody(cancelled, x))
	send(notifications.OrderChangeBody(cancelled, x))
	send(notifications.OrderChangeBody(late, x)) // older than the cancellation
	send(notifications.OrderChangeBody(notifications.OrderChange{NotificationID: "n-b-1", AmazonOrderID: b,
		OrderStatus: "Unshipped", EasyShipStatus: "Delivered", ChangedAt: now}, x))
	send([]byte(`{"NotificationType":"ANY_OFFER_CHANGED"}`))
	send([]byte(`{"NotificationType":"ORDER_CHANGE","Payload":{"OrderChangeNotification":{"AmazonOrderId":"` + postcodeMarker + `"}}}`))

	log := &lifecycleLog{started: map[string]int{}, cancelled: map[string]int{}}
	act := &Notifications{Orders: &orders.Service{Pool: pool}, Queue: q, Lifecycles: log, Visibility: 1}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	act.Register(env)
	v, err := env.ExecuteActivity(act.ConsumeOrderChanges, ConsumeInput{RunFor: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var r ConsumeResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	if r.Started != 2 || r.Cancelled != 1 || r.Delivered != 1 || r.Duplicates != 2 || r.Ignored != 1 || r.Malformed < 1 {
		t.Fatalf("result %+v", r)
	}
	if log.started[a] != 3 || log.started[b] != 1 || log.cancelled[a] != 1 {
		t.Fatalf("starts %v cancels %v", log.started, log.cancelled)
	}
	var rows int
	var leaked bool
	if err := pool.QueryRow(ctx, `SELECT count(*), bool_or(o::text LIKE '%MARKER%') FROM order_notifications o`).Scan(&rows, &leaked); err != nil {
		t.Fatal(err)
	}
	if rows != 4 || leaked {
		t.Fatalf("order_notifications: %d rows, marker stored %v", rows, leaked)
	}
	// Only the malformed message is left, for the dead-letter queue.
	left, err := q.Receive(ctx, 10, 2, 1)
	if err != nil || len(left) != 1 || !strings.Contains(string(left[0].Body), postcodeMarker) {
		t.Fatalf("left on the queue: %d, %v", len(left), err)
	}
	seen, err := NotifiedOrders(ctx, &orders.Service{Pool: pool}, []string{a, b, "203-3333333-0000003"})
	if err != nil || !seen[a] || !seen[b] || len(seen) != 2 {
		t.Fatalf("NotifiedOrders: %v %v", seen, err)
	}
}
