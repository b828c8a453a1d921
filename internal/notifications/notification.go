// Package notifications reads SP-API ORDER_CHANGE notifications from the SQS
// queue Amazon delivers them to, and (for the sandbox) writes them there.
//
// A notification carries the buyer's destination postcode among its summary
// fields: only the order id, the status, the change time and Amazon's
// notification id are ever decoded, so nothing else can reach a log, a
// workflow or the database.
package notifications

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TypeOrderChange is the notification type this package handles.
const TypeOrderChange = "ORDER_CHANGE"

// Order statuses an ORDER_CHANGE summary reports that change what a lifecycle
// does. The others (Pending, Unshipped, Shipped...) only mean the order exists.
const (
	StatusCanceled = "Canceled"
	// EasyShipDelivered is the Easy Ship shipment status of a delivered order;
	// other orders' deliveries come from OrderSync's package status.
	EasyShipDelivered = "Delivered"
)

// OrderChange is what the consumer keeps of one ORDER_CHANGE notification.
type OrderChange struct {
	// NotificationID is Amazon's id of the notification: the same change
	// delivered twice has the same one.
	NotificationID string
	AmazonOrderID  string
	// OrderStatus is the summary's order status (e.g. Unshipped, Canceled).
	OrderStatus string
	// EasyShipStatus is the Easy Ship shipment status, usually empty.
	EasyShipStatus string
	// ChangedAt is when the order changed (OrderChangeTrigger.TimeOfOrderChange,
	// else the notification's EventTime).
	ChangedAt time.Time
}

// Cancelled reports whether the change cancelled the order.
func (c OrderChange) Cancelled() bool { return c.OrderStatus == StatusCanceled }

// Delivered reports whether the change says the order was delivered.
func (c OrderChange) Delivered() bool { return c.EasyShipStatus == EasyShipDelivered }

// wire is the part of Amazon's notification envelope that is decoded; every
// other field (the summary's postcode, items, programmes) is skipped unread.
type wire struct {
	NotificationType string    `json:"NotificationType"`
	EventTime        time.Time `json:"EventTime"`
	Payload          struct {
		OrderChangeNotification *struct {
			AmazonOrderID      string `json:"AmazonOrderId"`
			OrderChangeTrigger struct {
				TimeOfOrderChange time.Time `json:"TimeOfOrderChange"`
			} `json:"OrderChangeTrigger"`
			Summary struct {
				OrderStatus            string  `json:"OrderStatus"`
				EasyShipShipmentStatus *string `json:"EasyShipShipmentStatus"`
			} `json:"Summary"`
		} `json:"OrderChangeNotification"`
	} `json:"Payload"`
	NotificationMetadata struct {
		NotificationID string `json:"NotificationId"`
	} `json:"NotificationMetadata"`
}

// ErrNotOrderChange is returned for a well-formed notification of another type.
var ErrNotOrderChange = errors.New("notifications: not an ORDER_CHANGE notification")

// ParseOrderChange decodes an SQS message body. Its errors name the field that
// is wrong and never quote the body.
func ParseOrderChange(body []byte) (OrderChange, error) {
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return OrderChange{}, fmt.Errorf("notifications: field %s has the wrong type", te.Field)
		}
		return OrderChange{}, errors.New("notifications: the message is not a JSON notification")
	}
	if w.NotificationType != TypeOrderChange {
		return OrderChange{}, ErrNotOrderChange
	}
	n := w.Payload.OrderChangeNotification
	switch {
	case n == nil:
		return OrderChange{}, errors.New("notifications: Payload.OrderChangeNotification is missing")
	case w.NotificationMetadata.NotificationID == "":
		return OrderChange{}, errors.New("notifications: NotificationMetadata.NotificationId is missing")
	case !validOrderID(n.AmazonOrderID):
		return OrderChange{}, errors.New("notifications: Payload.OrderChangeNotification.AmazonOrderId is missing or not an order id")
	case n.Summary.OrderStatus == "":
		return OrderChange{}, errors.New("notifications: Payload.OrderChangeNotification.Summary.OrderStatus is missing")
	}
	c := OrderChange{
		NotificationID: w.NotificationMetadata.NotificationID, AmazonOrderID: n.AmazonOrderID,
		OrderStatus: n.Summary.OrderStatus, ChangedAt: n.OrderChangeTrigger.TimeOfOrderChange.UTC(),
	}
	if n.Summary.EasyShipShipmentStatus != nil {
		c.EasyShipStatus = *n.Summary.EasyShipShipmentStatus
	}
	if c.ChangedAt.IsZero() {
		c.ChangedAt = w.EventTime.UTC()
	}
	if c.ChangedAt.IsZero() {
		return OrderChange{}, errors.New("notifications: OrderChangeTrigger.TimeOfOrderChange and EventTime are both missing")
	}
	return c, nil
}

// validOrderID accepts Amazon's 3-7-7 digit order ids, the only thing a
// workflow id is built from.
func validOrderID(id string) bool {
	if len(id) != 19 {
		return false
	}
	for i, r := range id {
		if i == 3 || i == 11 {
			if r != '-' {
				return false
			}
		} else if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
