package spapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// credentials, scope sellingpartnerapi::notifications), which the client
// sends.
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

// Destination is a Notifications API destination of the SQS kind (an
// EventBridge destination has no SQSARN).
type Destination struct {
	ID, Name, SQSARN string
}

// GetDestinations lists the application's destinations (a grantless call).
func (c *Client) GetDestinations(ctx context.Context) ([]Destination, error) {
	var out struct {
		Payload []struct {
			Name          string `json:"name"`
			DestinationID string `json:"destinationId"`
			Resource      struct {
				SQS *struct {
					ARN string `json:"arn"`
				} `json:"sqs"`
			} `json:"resource"`
		} `json:"payload"`
	}
	err := c.get(ctx, OpGetDestinations, NotificationsDestinationsPath, "", &out, func() error {
		for i, d := range out.Payload {
			if d.DestinationID == "" {
				return fmt.Errorf("payload[%d].destinationId is missing", i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ds := make([]Destination, 0, len(out.Payload))
	for _, d := range out.Payload {
		x := Destination{ID: d.DestinationID, Name: d.Name}
		if d.Resource.SQS != nil {
			x.SQSARN = d.Resource.SQS.ARN
		}
		ds = append(ds, x)
	}
	return ds, nil
}

// Subscription is the seller's subscription to one notification type.
type Subscription struct {
	ID, PayloadVersion, DestinationID string
}

// GetSubscription returns the seller's subscription to notificationType, or
// nil when there is none (Amazon answers 404).
func (c *Client) GetSubscription(ctx context.Context, notificationType string) (*Subscription, error) {
	var out struct {
		Payload *struct {
			SubscriptionID string `json:"subscriptionId"`
			PayloadVersion string `json:"payloadVersion"`
			DestinationID  string `json:"destinationId"`
		} `json:"payload"`
	}
	err := c.get(ctx, OpGetSubscription, NotificationsSubscriptionsPath+url.PathEscape(notificationType), "", &out, func() error {
		switch {
		case out.Payload == nil:
			return errors.New("payload is missing")
		case out.Payload.SubscriptionID == "":
			return errors.New("payload.subscriptionId is missing")
		case out.Payload.DestinationID == "":
			return errors.New("payload.destinationId is missing")
		}
		return nil
	})
	var e *Error
	if errors.As(err, &e) && e.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Subscription{ID: out.Payload.SubscriptionID, PayloadVersion: out.Payload.PayloadVersion, DestinationID: out.Payload.DestinationID}, nil
}
