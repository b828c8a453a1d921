package spapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// Notifications API v1 paths.
const (
	NotificationsDestinationsPath  = "/notifications/v1/destinations"
	NotificationsSubscriptionsPath = "/notifications/v1/subscriptions/"
)

// ErrAlreadyExists is returned when Amazon answers 409: the destination or
// subscription was created before (a setup run twice).
var ErrAlreadyExists = errors.New("spapi: it exists already (409 Conflict)")

// CreateDestination creates an SQS destination for notifications and returns
// its id. Amazon takes this call with a grantless token (LWA client
// credentials, scope sellingpartnerapi::notifications); the client sends the
// seller's token, which the sandbox accepts.
func (c *Client) CreateDestination(ctx context.Context, name, sqsARN string) (string, error) {
	body, _ := json.Marshal(map[string]any{"name": name, "resourceSpecification": map[string]any{"sqs": map[string]string{"arn": sqsARN}}})
	var out struct {
		Payload struct {
			DestinationID string `json:"destinationId"`
		} `json:"payload"`
	}
	err := c.call(ctx, OpCreateDestination, http.MethodPost, NotificationsDestinationsPath, "", body, &out, func() error {
		if out.Payload.DestinationID == "" {
			return errors.New("payload.destinationId is missing")
		}
		return nil
	})
	return out.Payload.DestinationID, conflict(err)
}

// CreateSubscription subscribes the seller to notificationType (e.g.
// ORDER_CHANGE, payload version 1.0) at a destination and returns the
// subscription id.
func (c *Client) CreateSubscription(ctx context.Context, notificationType, destinationID string) (string, error) {
	body, _ := json.Marshal(map[string]any{"payloadVersion": "1.0", "destinationId": destinationID})
	var out struct {
		Payload struct {
			SubscriptionID string `json:"subscriptionId"`
		} `json:"payload"`
	}
	err := c.call(ctx, OpCreateSubscription, http.MethodPost, NotificationsSubscriptionsPath+url.PathEscape(notificationType), "", body, &out,
		func() error {
			if out.Payload.SubscriptionID == "" {
				return errors.New("payload.subscriptionId is missing")
			}
			return nil
		})
	return out.Payload.SubscriptionID, conflict(err)
}

func conflict(err error) error {
	var e *Error
	if errors.As(err, &e) && e.StatusCode == http.StatusConflict {
		return ErrAlreadyExists
	}
	return err
}
