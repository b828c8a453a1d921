package notifications_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// amazonExample is Amazon's documented ORDER_CHANGE example (payload 1.0),
// its postcode replaced by a marker.
const amazonExample = `{
  "NotificationVersion": "1.0",
  "NotificationType": "ORDER_CHANGE",
  "PayloadVersion": "1.0",
  "EventTime": "2020-01-11T00:09:53.109Z",
  "Payload": {
    "OrderChangeNotification": {
      "NotificationLevel": "OrderLevel",
      "SellerId": "A3TH9S8BH6GOGM",
      "AmazonOrderId": "903-8868176-2219830",
      "OrderChangeType": "OrderStatusChange",
      "OrderChangeTrigger": {"TimeOfOrderChange": "2022-11-29T19:42:04.284Z", "ChangeReason": "Order status changed"},
      "Summary": {
        "MarketplaceId": "A1F83G8C2ARO7P",
        "OrderStatus": "Canceled",
        "PurchaseDate": "2022-11-29T19:39:36.000Z",
        "DestinationPostalCode": "MARKER-POSTCODE-7Q",
        "FulfillmentType": "MFN",
        "OrderType": "StandardOrder",
        "OrderPrograms": [],
        "ShippingPrograms": [],
        "EasyShipShipmentStatus": null,
        "ElectronicInvoiceStatus": null,
        "OrderItems": [{"OrderItemId": "OIID34853450", "SellerSKU": "SellerSKUID1", "Quantity": 1}]
      }
    }
  },
  "NotificationMetadata": {
    "ApplicationId": "amzn1.sellerapps.app.f1234566-aaec-55a6-b123-bcb752069ec5",
    "SubscriptionId": "93b098e1-c42-2f45-93a1-78910a6a8369",
    "PublishTime": "2022-11-29T19:42:04.284Z",
    "NotificationId": "d0e9e693-c3ad-4373-979f-ed4ec98dd746"
  }
}`

func TestParseAmazonExample(t *testing.T) {
	c, err := notifications.ParseOrderChange([]byte(amazonExample))
	if err != nil {
		t.Fatal(err)
	}
	want := notifications.OrderChange{NotificationID: "d0e9e693-c3ad-4373-979f-ed4ec98dd746", AmazonOrderID: "903-8868176-2219830",
		OrderStatus: "Canceled", ChangedAt: time.Date(2022, 11, 29, 19, 42, 4, 284e6, time.UTC)}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if !c.Cancelled() || c.Delivered() {
		t.Fatalf("Cancelled %v Delivered %v", c.Cancelled(), c.Delivered())
	}
}

func TestParseErrorsNameTheFieldWithoutEcho(t *testing.T) {
	cases := map[string]struct{ body, field string }{
		"not json":     {`MARKER-POSTCODE-7Q`, "not a JSON notification"},
		"no id":        {strings.Replace(amazonExample, `"d0e9e693-c3ad-4373-979f-ed4ec98dd746"`, `""`, 1), "NotificationId"},
		"bad order id": {strings.Replace(amazonExample, `"903-8868176-2219830"`, `"MARKER-POSTCODE-7Q"`, 1), "AmazonOrderId"},
		"no status":    {strings.Replace(amazonExample, `"Canceled"`, `""`, 1), "OrderStatus"},
		"wrong type":   {strings.Replace(amazonExample, `"OrderStatus": "Canceled"`, `"OrderStatus": 7`, 1), "OrderStatus"},
	}
	for name, tc := range cases {
		_, err := notifications.ParseOrderChange([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.field) || strings.Contains(err.Error(), "MARKER") {
			t.Errorf("%s: error %v, want one naming %s without the marker", name, err, tc.field)
		}
	}
	other := strings.Replace(amazonExample, `"ORDER_CHANGE"`, `"ANY_OFFER_CHANGED"`, 1)
	if _, err := notifications.ParseOrderChange([]byte(other)); err != notifications.ErrNotOrderChange {
		t.Errorf("another type: %v", err)
	}
}

func TestBuiltBodyRoundTrips(t *testing.T) {
	c := notifications.OrderChange{NotificationID: "n-1", AmazonOrderID: "203-1234567-7654321", OrderStatus: "Shipped",
		EasyShipStatus: "Delivered", ChangedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	got, err := notifications.ParseOrderChange(notifications.OrderChangeBody(c, notifications.Extra{DestinationPostalCode: "MARKER"}))
	if err != nil || got != c {
		t.Fatalf("got %+v %v, want %+v", got, err, c)
	}
}

// newQueue creates a queue of its own on the shared goaws.
func newQueue(t *testing.T, ctx context.Context) *notifications.Queue {
	t.Helper()
	g := testenv.GoAWSForTest(t)
	c, err := notifications.NewSQSClient(ctx, g.Region, g.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	// A visibility timeout of one second: goaws takes it from the queue, not from ReceiveMessage.
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("order-change-" + hex.EncodeToString(b)),
		Attributes: map[string]string{"VisibilityTimeout": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	return &notifications.Queue{SQS: c, URL: aws.ToString(out.QueueUrl)}
}

func TestQueueOnGoAWS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	q := newQueue(t, ctx)
	arn, err := q.ARN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url, err := notifications.QueueURLForARN(ctx, q.SQS, arn)
	if err != nil || url != q.URL {
		t.Fatalf("URL for %s: %q %v, want %q", arn, url, err, q.URL)
	}
	if err := q.Send(ctx, []byte(amazonExample)); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 10, 5, 1)
	if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0].Body, []byte(amazonExample)) {
		t.Fatalf("receive: %d messages, %v", len(msgs), err)
	}
	// Not deleted: it comes back once its visibility timeout ends.
	again, err := q.Receive(ctx, 10, 5, 1)
	if err != nil || len(again) != 1 || again[0].ID != msgs[0].ID {
		t.Fatalf("redelivery: %d messages, %v", len(again), err)
	}
	if err := q.Delete(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	none, err := q.Receive(ctx, 10, 1, 1)
	if err != nil || len(none) != 0 {
		t.Fatalf("after delete: %d messages, %v", len(none), err)
	}
}
