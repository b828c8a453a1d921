package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi"
)

// The sandbox's Notifications API: a destination names an SQS queue by ARN, a
// subscription to ORDER_CHANGE makes every Generate, Cancel and Deliver send
// a notification shaped like Amazon's to that queue (Options.SQS). Like Amazon,
// it delivers at least once and in no promised order; unlike Amazon, Deliver
// of a seller-fulfilled order reports Shipped only (delivery is not an order
// status), so OrderSync still finds deliveries.

// sandboxSellerID and sandboxApplicationID fill the notification metadata.
const (
	sandboxSellerID      = "A3SANDBOXSELLER"
	sandboxApplicationID = "amzn1.sellerapps.app.dpp-sandbox"
)

type destination struct{ name, arn, queueURL string }

func (s *Server) serveNotifications(w http.ResponseWriter, r *http.Request, rid, path string) {
	dests := path == spapi.NotificationsDestinationsPath
	var op, scope string
	switch {
	case dests && r.Method == http.MethodPost:
		op, scope = spapi.OpCreateDestination, spapi.NotificationsScope
	case dests && r.Method == http.MethodGet:
		op, scope = spapi.OpGetDestinations, spapi.NotificationsScope
	case !dests && r.Method == http.MethodPost:
		op = spapi.OpCreateSubscription
	case !dests && r.Method == http.MethodGet:
		op = spapi.OpGetSubscription
	default:
		s.reply(w, "", rid, http.StatusMethodNotAllowed, errorList("MethodNotAllowed", "Method not allowed.", ""))
		return
	}
	s.mu.Lock()
	s.requests[op]++
	s.mu.Unlock()
	if !s.limiters[op].Allow() {
		s.reply(w, op, rid, http.StatusTooManyRequests, injectedError(http.StatusTooManyRequests))
		return
	}
	if !s.authorize(w, r, op, rid, scope) {
		return
	}
	typ := strings.TrimPrefix(path, spapi.NotificationsSubscriptionsPath)
	if !dests && typ != notifications.TypeOrderChange {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "The sandbox supports ORDER_CHANGE only.", ""))
		return
	}
	switch op {
	case spapi.OpGetDestinations:
		s.getDestinations(w, rid)
		return
	case spapi.OpGetSubscription:
		s.getSubscription(w, rid)
		return
	}
	var in struct {
		Name                  string `json:"name"`
		ResourceSpecification struct {
			SQS *struct {
				ARN string `json:"arn"`
			} `json:"sqs"`
		} `json:"resourceSpecification"`
		PayloadVersion string `json:"payloadVersion"`
		DestinationID  string `json:"destinationId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "The body is not JSON.", ""))
		return
	}
	if op == spapi.OpCreateDestination {
		s.createDestination(w, r.Context(), rid, in.Name, in.ResourceSpecification.SQS)
		return
	}
	s.mu.Lock()
	_, known := s.destinations[in.DestinationID]
	existing := s.subscription
	if known && existing == "" {
		s.subscription, s.subscribedTo = "sub-"+randomHex(8), in.DestinationID
	}
	sub := s.subscription
	s.mu.Unlock()
	switch {
	case !known:
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "Unknown destinationId.", ""))
	case existing != "":
		s.reply(w, op, rid, http.StatusConflict, errorList("Conflict", "A subscription for ORDER_CHANGE exists already.", ""))
	default:
		body, _ := json.Marshal(map[string]any{"payload": map[string]string{"subscriptionId": sub, "payloadVersion": "1.0", "destinationId": in.DestinationID}})
		s.reply(w, op, rid, http.StatusOK, body)
	}
}

// getDestinations answers with every destination, in the model's
// GetDestinationsResponse shape.
func (s *Server) getDestinations(w http.ResponseWriter, rid string) {
	s.mu.Lock()
	list := make([]any, 0, len(s.destinations))
	for id, d := range s.destinations {
		list = append(list, map[string]any{"name": d.name, "destinationId": id, "resource": map[string]any{"sqs": map[string]string{"arn": d.arn}}})
	}
	s.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"payload": list})
	s.reply(w, spapi.OpGetDestinations, rid, http.StatusOK, body)
}

// getSubscription answers with the ORDER_CHANGE subscription, or 404 as
// Amazon does when there is none.
func (s *Server) getSubscription(w http.ResponseWriter, rid string) {
	s.mu.Lock()
	sub, dest := s.subscription, s.subscribedTo
	s.mu.Unlock()
	if sub == "" {
		s.reply(w, spapi.OpGetSubscription, rid, http.StatusNotFound, errorList("NotFound", "The subscription for ORDER_CHANGE was not found.", ""))
		return
	}
	body, _ := json.Marshal(map[string]any{"payload": map[string]string{"subscriptionId": sub, "payloadVersion": "1.0", "destinationId": dest}})
	s.reply(w, spapi.OpGetSubscription, rid, http.StatusOK, body)
}

// Destinations returns how many destinations the sandbox holds and whether
// it has the ORDER_CHANGE subscription: a setup that ran twice made no second.
func (s *Server) Destinations() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.destinations), s.subscription != ""
}

func (s *Server) createDestination(w http.ResponseWriter, ctx context.Context, rid, name string, spec *struct {
	ARN string `json:"arn"`
}) {
	op := spapi.OpCreateDestination
	if name == "" || spec == nil || spec.ARN == "" {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "name and resourceSpecification.sqs.arn are required.", ""))
		return
	}
	if s.opts.SQS == nil {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "This sandbox has no SQS endpoint (AWS_ENDPOINT_URL_SQS).", ""))
		return
	}
	queueURL, err := notifications.QueueURLForARN(ctx, s.opts.SQS, spec.ARN)
	if err != nil {
		s.reply(w, op, rid, http.StatusBadRequest, errorList("InvalidInput", "The SQS queue cannot be reached.", ""))
		return
	}
	s.mu.Lock()
	for id, d := range s.destinations {
		if d.arn == spec.ARN {
			s.mu.Unlock()
			s.reply(w, op, rid, http.StatusConflict, errorList("Conflict", "A destination for this queue exists already: "+id, ""))
			return
		}
	}
	id := "dest-" + randomHex(8)
	s.destinations[id] = destination{name: name, arn: spec.ARN, queueURL: queueURL}
	s.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"payload": map[string]any{"name": name, "destinationId": id,
		"resource": map[string]any{"sqs": map[string]string{"arn": spec.ARN}}}})
	s.reply(w, spapi.OpCreateDestination, rid, http.StatusOK, body)
}

// pendingChange is a notification to send once the server's lock is released.
type pendingChange struct {
	change notifications.OrderChange
	extra  notifications.Extra
}

// orderChangeLocked prepares the ORDER_CHANGE notification of g; ok is false
// when nobody subscribed. s.mu must be held.
func (s *Server) orderChangeLocked(g *genOrder, status string, at time.Time) (pendingChange, bool) {
	if s.subscription == "" {
		return pendingChange{}, false
	}
	x := notifications.Extra{SellerID: sandboxSellerID, MarketplaceID: "A1F83G8C2ARO7P", ApplicationID: sandboxApplicationID,
		SubscriptionID: s.subscription, PurchaseDate: g.created}
	if r := g.base.Recipient; r != nil && r.DeliveryAddress != nil {
		// Amazon sends the postcode; consumers must never keep it.
		x.DestinationPostalCode = r.DeliveryAddress.PostalCode
	}
	return pendingChange{change: notifications.OrderChange{NotificationID: fmt.Sprintf("%s-%s", randomHex(8), randomHex(8)),
		AmazonOrderID: g.base.OrderID, OrderStatus: status, ChangedAt: at}, extra: x}, true
}

// sendChanges sends notifications to the subscribed destination. A failure is
// logged, as Amazon's own delivery failures are invisible to the seller:
// OrderSync is the safety net.
func (s *Server) sendChanges(changes []pendingChange) {
	if len(changes) == 0 {
		return
	}
	s.mu.Lock()
	d := s.destinations[s.subscribedTo]
	s.mu.Unlock()
	q := &notifications.Queue{SQS: s.opts.SQS, URL: d.queueURL}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range changes {
		if err := q.Send(ctx, notifications.OrderChangeBody(c.change, c.extra)); err != nil {
			s.log.Warn("sandbox: ORDER_CHANGE not delivered", zap.String("amazonOrderId", c.change.AmazonOrderID), zap.Error(err))
		}
	}
}

// sqsClient is the type of Options.SQS, named here so sandbox.go needs no AWS import.
type sqsClient = *sqs.Client
