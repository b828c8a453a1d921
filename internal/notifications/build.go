package notifications

import (
	"encoding/json"
	"time"
)

// Extra is what Amazon puts in a notification beyond OrderChange: the sandbox
// fills it so that consumers meet the whole documented shape, postcode included.
type Extra struct {
	SellerID, MarketplaceID, DestinationPostalCode, ApplicationID, SubscriptionID string
	PurchaseDate                                                                  time.Time
}

// OrderChangeBody renders an ORDER_CHANGE notification shaped like Amazon's
// documented example (payload version 1.0, order-level).
func OrderChangeBody(c OrderChange, x Extra) []byte {
	var easyShip any
	if c.EasyShipStatus != "" {
		easyShip = c.EasyShipStatus
	}
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	body := map[string]any{
		"NotificationVersion": "1.0",
		"NotificationType":    TypeOrderChange,
		"PayloadVersion":      "1.0",
		"EventTime":           stamp(c.ChangedAt),
		"Payload": map[string]any{"OrderChangeNotification": map[string]any{
			"NotificationLevel": "OrderLevel",
			"SellerId":          x.SellerID,
			"AmazonOrderId":     c.AmazonOrderID,
			"OrderChangeType":   "OrderStatusChange",
			"OrderChangeTrigger": map[string]any{
				"TimeOfOrderChange": stamp(c.ChangedAt),
				"ChangeReason":      "Order status changed",
			},
			"Summary": map[string]any{
				"MarketplaceId":           x.MarketplaceID,
				"OrderStatus":             c.OrderStatus,
				"PurchaseDate":            stamp(x.PurchaseDate),
				"DestinationPostalCode":   x.DestinationPostalCode,
				"FulfillmentType":         "MFN",
				"OrderType":               "StandardOrder",
				"OrderPrograms":           []string{},
				"ShippingPrograms":        []string{},
				"EasyShipShipmentStatus":  easyShip,
				"ElectronicInvoiceStatus": nil,
			},
		}},
		"NotificationMetadata": map[string]any{
			"ApplicationId":  x.ApplicationID,
			"SubscriptionId": x.SubscriptionID,
			"PublishTime":    stamp(c.ChangedAt),
			"NotificationId": c.NotificationID,
		},
	}
	b, _ := json.Marshal(body) // maps of strings and times cannot fail
	return b
}
