// Package sandbox is our SP-API sandbox server: an http.Handler that answers
// the Orders API v2026-01-01 operations searchOrders and getOrder, and the LWA
// token endpoint, for the dev stack (`make run` with no Amazon credentials),
// load tests and integration tests.
//
// It serves two kinds of orders:
//
//   - the static sandbox examples of Amazon's model (embedded unmodified from
//     models/orders_2026-01-01.json, Apache-2.0, see models/NOTICE.md): a
//     request whose parameters match an example's (for instance getOrder of
//     171-9876543-2109876, 028-1234567-8901234, 114-9876543-1234567 or
//     TEST_CASE_400) gets the example's body with the status it is listed
//     under;
//   - generated UK orders (Server.Generate), whose fulfilment state moves with
//     the server's clock, and which can be cancelled, corrupted and listed by
//     searchOrders with pagination.
//
// Fault injection (FailNext, CorruptOrder, and CorruptInSearch for one
// malformed order among the good ones of a searchOrders page), a per-operation rate limiter that
// answers 429 like Amazon, and request counters support retry, chaos and leak
// tests. Options.Marker puts a searchable marker into every generated PII
// string so tests can grep logs, errors and stored data for leaks.
//
// searchOrders over generated orders follows the model: exactly one of
// createdAfter and lastUpdatedAfter; marketplaceIds, fulfillmentStatuses and
// fulfilledBy filter; maxResultsPerPage defaults to (and is capped at) 100;
// includedData BUYER, RECIPIENT, PROCEEDS, FULFILLMENT, PACKAGES and TAX select
// datasets (no buyer or recipient PII without them). Unlike Amazon, which
// wants lastUpdatedBefore/createdBefore at least two minutes in the past and
// defaults it accordingly, the upper bound defaults to now (by Options.Clock),
// and the bound applied is returned as lastUpdatedBefore/createdBefore.
// Orders are sorted by the searched time (lastUpdatedTime, or createdTime for
// createdAfter searches) and then orderId. The nextToken (opaque, valid 24
// hours) encodes the query with its upper bound fixed and the position after
// the page's last order, so pages neither repeat nor skip orders.
//
// For tests, package sandboxtest starts a Server on an httptest listener:
//
//	srv, baseURL := sandboxtest.Start(t, sandbox.Options{Limits: sandbox.TestLimits()})
//
// Routes:
//
//	GET  /orders/2026-01-01/orders            searchOrders
//	GET  /orders/2026-01-01/orders/{orderId}  getOrder
//	POST /auth/o2/token                       LWA token exchange (any refresh token; client
//	                                          credentials of scope sellingpartnerapi::notifications)
//	POST|GET /notifications/v1/destinations   createDestination, getDestinations (grantless)
//	POST|GET /notifications/v1/subscriptions/ORDER_CHANGE
//	                                          createSubscription, getSubscription (seller's token)
//	POST /feeds/2021-06-30/documents          createFeedDocument (feeds.go)
//	GET  /feeds/2021-06-30/documents/{id}     getFeedDocument
//	POST /feeds/2021-06-30/feeds              createFeed (UPLOAD_VAT_INVOICE)
//	GET  /feeds/2021-06-30/feeds/{feedId}     getFeed (each call moves the feed on)
//	PUT|GET /sandbox/feed-documents/{id}      the pre-signed document URLs
package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/spapi"
)

// Options configures a Server. Every zero field has the default given.
type Options struct {
	// Seed makes generated orders deterministic: the same Seed and the same
	// sequence of Generate calls give the same order IDs and contents.
	// Default 0 (itself a valid seed).
	Seed int64

	// Clock is the server's notion of now: creation times of generated
	// orders, their fulfilment progress, token expiry, pagination token
	// expiry and the default upper bounds of searches. Default time.Now.
	// (The rate limiter always uses the real clock.)
	Clock func() time.Time

	// Marker, when non-empty, is appended (after a space) to every generated
	// PII string: buyer and recipient names, address lines, phone numbers,
	// gift messages, company names, purchase order numbers, tax legal names
	// and VAT numbers; e-mail addresses get it just before the '@'. City,
	// county, postcode and country stay realistic and unmarked. Default "".
	Marker string

	// DeliveryAfter is how long after creation a generated order's package is
	// DELIVERED; the order ships (package IN_TRANSIT) at half of it.
	// Default 48h.
	DeliveryAfter time.Duration

	// LatestDeliveryAfter is the offset from creation of
	// fulfillment.deliverByWindow.latestDateTime. Default 72h.
	LatestDeliveryAfter time.Duration

	// Limits are the server's own rate limits per operation (keys
	// spapi.OpSearchOrders, spapi.OpGetOrder); a request over the limit gets
	// 429 with the x-amzn-RateLimit-Limit header, like Amazon. Operations not
	// in the map keep Amazon's defaults (spapi.DefaultLimits: searchOrders
	// 0.0056/s burst 20, getOrder 0.5/s burst 30). Tests use TestLimits().
	Limits map[string]spapi.Limit

	// SQS delivers ORDER_CHANGE notifications to the queue a destination names
	// (notifications.go); nil: createDestination is refused.
	SQS sqsClient

	// Logger receives a Debug line per request (operation, status, request
	// id); never bodies. Default zap.NewNop().
	Logger *zap.Logger

	// Credentials, when set, are the only LWA credentials the token endpoint
	// accepts, answering others as LWA does (invalid_client for a wrong client id
	// or secret, invalid_grant for a wrong refresh token), so `starter doctor`
	// can be tested against broken settings. Default nil: any credentials.
	Credentials *Credentials
}

// Credentials are an application's LWA client id and secret and a seller's
// refresh token.
type Credentials struct {
	ClientID, ClientSecret, RefreshToken string
}

// TestLimits returns limits high enough that tests and load tests are never
// throttled by the sandbox: 10000 requests/s with burst 10000 per operation.
func TestLimits() map[string]spapi.Limit {
	return map[string]spapi.Limit{
		spapi.OpSearchOrders: {Rate: 10000, Burst: 10000},
		spapi.OpGetOrder:     {Rate: 10000, Burst: 10000},
		// The Notifications API's, for tests that set up many times.
		spapi.OpCreateDestination:  {Rate: 10000, Burst: 10000},
		spapi.OpGetDestinations:    {Rate: 10000, Burst: 10000},
		spapi.OpCreateSubscription: {Rate: 10000, Burst: 10000},
		spapi.OpGetSubscription:    {Rate: 10000, Burst: 10000},
		// The Feeds API's: tests upload many invoices.
		spapi.OpCreateFeedDocument: {Rate: 10000, Burst: 10000},
		spapi.OpCreateFeed:         {Rate: 10000, Burst: 10000},
		spapi.OpGetFeed:            {Rate: 10000, Burst: 10000},
		spapi.OpGetFeedDocument:    {Rate: 10000, Burst: 10000},
	}
}

// Corruption modes for CorruptOrder.
const (
	// CorruptInvalidJSON makes getOrder return a truncated (invalid JSON) body.
	CorruptInvalidJSON = "invalid-json"
	// CorruptMissingItems makes getOrder return the order without orderItems.
	CorruptMissingItems = "missing-items"
	// CorruptBadTime makes getOrder return a createdTime that is not a date-time
	// (it contains the marker).
	CorruptBadTime = "bad-time"
	// CorruptBadAmount makes getOrder return a grand total amount that is not
	// a decimal (it contains the marker).
	CorruptBadAmount = "bad-amount"
	// CorruptMissingID leaves out the orderId.
	CorruptMissingID = "missing-id"
)

const (
	ordersPath       = "/orders/2026-01-01/orders"
	tokenPath        = "/auth/o2/token"
	tokenLifetime    = 3600 * time.Second
	pageTokenTTL     = 24 * time.Hour
	maxPageSize      = 100
	headerRequestID  = "x-amzn-RequestId"
	headerRateLimit  = "x-amzn-RateLimit-Limit"
	headerTokenInReq = "x-amz-access-token"
)

// Server is the sandbox. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	opts           Options
	log            *zap.Logger
	model          *parsedModel
	feedsModel     *parsedModel // the Feeds API's static examples (feeds.go)
	staticOrderIDs map[string]bool
	limiters       map[string]*rate.Limiter
	limits         map[string]spapi.Limit
	idPrefix       string // distinguishes request IDs of different servers

	mu            sync.Mutex
	rng           *mrand.Rand
	orders        map[string]*genOrder
	failures      []int
	requests      map[string]int
	tokens        map[string]time.Time // access token -> expiry (server clock)
	grantless     map[string]string    // grantless access token -> its scope
	tokenRequests int
	requestSeq    uint64
	// withheld orders are served without BUYER and RECIPIENT (WithholdRestrictedData).
	withheld map[string]bool
	// destinations and the one ORDER_CHANGE subscription (notifications.go).
	destinations               map[string]destination
	subscription, subscribedTo string
	// Feeds API (feeds.go): documents, feeds in creation order, and the
	// outcomes RejectNextFeed queued per order.
	feedSeq      int
	feedDocs     map[string]*feedDoc
	feeds        map[string]*sandboxFeed
	feedOrder    []string
	feedOutcomes map[string][]string
	feedsHeld    bool
}

// NewE returns a Server, or an error if a limit is invalid or the embedded
// model cannot be parsed.
func NewE(opts Options) (*Server, error) {
	s, err := build(opts)
	if err != nil {
		return nil, err
	}
	m, err := parseModel(ordersModel)
	if err != nil {
		return nil, err
	}
	s.setModel(m)
	if s.feedsModel, err = parseFeedsModel(feedsModel); err != nil {
		return nil, err
	}
	return s, nil
}

// New is NewE for callers that cannot handle an error. It never panics: an
// invalid limit is logged and replaced by the defaults, and if the embedded
// model cannot be parsed (it is fixed at build time, so only a broken build
// can do that) the problem is logged and the server serves generated orders
// only, without static examples.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s, err := build(opts)
	if err != nil {
		log.Error("sandbox: ignoring Options.Limits", zap.Error(err))
		opts.Limits = nil
		s, _ = build(opts) // cannot fail without custom limits
	}
	m, err := parseModel(ordersModel)
	if err != nil {
		log.Error("sandbox: serving without static examples", zap.Error(err))
		m = &parsedModel{static: map[string][]staticExample{}, includedData: defaultIncludedData()}
	}
	s.setModel(m)
	if s.feedsModel, err = parseFeedsModel(feedsModel); err != nil {
		log.Error("sandbox: serving feeds without static examples", zap.Error(err))
		s.feedsModel = &parsedModel{static: map[string][]staticExample{}}
	}
	return s
}

// build applies the defaults and checks the limits.
func build(opts Options) (*Server, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.DeliveryAfter <= 0 {
		opts.DeliveryAfter = 48 * time.Hour
	}
	if opts.LatestDeliveryAfter <= 0 {
		opts.LatestDeliveryAfter = 72 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	limits := spapi.DefaultLimits()
	for op, l := range opts.Limits {
		if _, ok := limits[op]; !ok {
			return nil, fmt.Errorf("sandbox: Options.Limits[%q]: unknown operation", op)
		}
		if !(l.Rate > 0) || math.IsInf(l.Rate, 0) || l.Burst < 1 {
			return nil, fmt.Errorf("sandbox: Options.Limits[%q]: rate must be positive and burst at least 1", op)
		}
		limits[op] = l
	}
	s := &Server{
		opts:           opts,
		log:            opts.Logger,
		staticOrderIDs: map[string]bool{},
		limiters:       map[string]*rate.Limiter{},
		limits:         limits,
		rng:            mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x5eed0f0dd5)),
		orders:         map[string]*genOrder{},
		requests:       map[string]int{},
		tokens:         map[string]time.Time{},
		destinations:   map[string]destination{},
		grantless:      map[string]string{},
		idPrefix:       randomHex(4),
	}
	for op, l := range limits {
		s.limiters[op] = rate.NewLimiter(rate.Limit(l.Rate), l.Burst)
	}
	return s, nil
}

func (s *Server) setModel(m *parsedModel) {
	s.model = m
	for _, ex := range m.static[spapi.OpGetOrder] {
		for _, p := range ex.params {
			if p.name == "orderId" {
				s.staticOrderIDs[p.value] = true
			}
		}
	}
}

func defaultIncludedData() map[string]bool {
	m := map[string]bool{}
	for _, v := range []string{"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION",
		"FULFILLMENT", "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS"} {
		m[v] = true
	}
	return m
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Generate creates n orders and returns their IDs in creation order. Each is
// created now by Options.Clock (to the whole second) in the UK marketplace
// (A1F83G8C2ARO7P, channel AMAZON, fulfilled by MERCHANT, GBP) with 1-3 items
// from a fixed catalogue (SKUs like PR-KETTLE-01, VAT-inclusive prices; about
// 15% of orders total over GBP 250), about 10% business orders (AMAZON_BUSINESS,
// company name, purchase order number, a BUYER VAT registration with a GB VAT
// number), UK names, anonymised e-mail addresses, phone numbers from Ofcom's
// drama range, addresses and occasional gift messages. IDs (3-7-7 digits,
// unique) and contents are deterministic from Options.Seed and the sequence of
// Generate calls.
func (s *Server) Generate(n int) []string {
	s.mu.Lock()
	now := s.opts.Clock()
	ids := make([]string, 0, n)
	var changes []pendingChange
	for range n {
		g := s.generate(now)
		s.orders[g.base.OrderID] = g
		ids = append(ids, g.base.OrderID)
		if c, ok := s.orderChangeLocked(g, "Unshipped", g.created); ok {
			changes = append(changes, c)
		}
	}
	s.mu.Unlock()
	s.sendChanges(changes)
	return ids
}

// Order returns a generated order as getOrder would return it now with every
// dataset (BUYER, RECIPIENT, PROCEEDS, FULFILLMENT, PACKAGES, TAX), so tests
// know the expected PII. The result is a copy. Static example orders are not
// included.
func (s *Server) Order(id string) (spapi.Order, bool) {
	s.mu.Lock()
	g, ok := s.orders[id]
	var o spapi.Order
	if ok {
		o = g.view(s.opts.Clock(), s.opts.DeliveryAfter)
	}
	s.mu.Unlock()
	if !ok {
		return spapi.Order{}, false
	}
	return deepCopy(o), true
}

// OrderIDs returns the IDs of all generated orders, sorted.
func (s *Server) OrderIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.orders))
	for id := range s.orders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// FacilitateByMarketplace makes Amazon the deemed supplier of a generated order:
// every item's tax collection model becomes MARKETPLACE_FACILITATOR, as for an
// overseas seller's UK stock. It returns an error for an unknown order ID.
func (s *Server) FacilitateByMarketplace(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.orders[orderID]
	if !ok {
		return fmt.Errorf("sandbox: unknown order %s", orderID)
	}
	for i := range g.base.OrderItems {
		g.base.OrderItems[i].Tax = &spapi.ItemTax{TaxCollections: []spapi.ItemTaxCollection{
			{Model: spapi.TaxModelMarketplaceFacilitator, ResponsibleParty: "Amazon Services EU SARL"}}}
	}
	return nil
}

// Cancel marks a generated order CANCELLED at the current server time (its
// lastUpdatedTime becomes now and it loses its packages). It returns an error
// for an unknown order ID.
func (s *Server) Cancel(orderID string) error {
	s.mu.Lock()
	g, ok := s.orders[orderID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("sandbox: Cancel: no generated order with that ID")
	}
	var changes []pendingChange
	if g.cancelledAt.IsZero() {
		g.cancelledAt = s.opts.Clock().UTC().Truncate(time.Second)
		if c, ok := s.orderChangeLocked(g, notifications.StatusCanceled, g.cancelledAt); ok {
			changes = append(changes, c)
		}
	}
	s.mu.Unlock()
	s.sendChanges(changes)
	return nil
}

// CancelItem cancels one item of a generated order at the current server time
// (whole seconds), the rest of the order going on: the item then carries a
// cancellationExecution (CANCELLATION dataset) and the order's lastUpdatedTime
// moves to that time. It returns an error for an unknown order or item.
func (s *Server) CancelItem(orderID, orderItemID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.orders[orderID]
	if !ok {
		return fmt.Errorf("sandbox: CancelItem: no generated order with that ID")
	}
	if !slices.ContainsFunc(g.base.OrderItems, func(it spapi.OrderItem) bool { return it.OrderItemID == orderItemID }) {
		return fmt.Errorf("sandbox: CancelItem: the order has no item with that ID")
	}
	if g.itemsCancelledAt == nil {
		g.itemsCancelledAt = map[string]time.Time{}
	}
	if _, done := g.itemsCancelledAt[orderItemID]; !done {
		g.itemsCancelledAt[orderItemID] = s.opts.Clock().UTC().Truncate(time.Second)
	}
	return nil
}

// Deliver marks a generated order's package DELIVERED at the current server time
// (whole seconds, as SP-API reports), whatever its DeliveryAfter: tests decide
// when delivery happens instead of racing the clock. It returns an error for an
// unknown order ID.
func (s *Server) Deliver(orderID string) error {
	s.mu.Lock()
	g, ok := s.orders[orderID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("sandbox: Deliver: no generated order with that ID")
	}
	var changes []pendingChange
	if g.deliveredAt.IsZero() {
		g.deliveredAt = s.opts.Clock().UTC().Truncate(time.Second)
		if c, ok := s.orderChangeLocked(g, "Shipped", g.deliveredAt); ok {
			changes = append(changes, c)
		}
	}
	s.mu.Unlock()
	s.sendChanges(changes)
	return nil
}

// CorruptOrder makes getOrder of a generated order return a bad body until
// called again with how == "": CorruptInvalidJSON ("invalid-json"),
// CorruptMissingItems ("missing-items"), CorruptBadTime ("bad-time"),
// CorruptBadAmount ("bad-amount") or CorruptMissingID ("missing-id").
// searchOrders is not affected (see CorruptInSearch).
func (s *Server) CorruptOrder(orderID string, how string) error {
	switch how {
	case "", CorruptInvalidJSON, CorruptMissingItems, CorruptBadTime, CorruptBadAmount, CorruptMissingID:
	default:
		return fmt.Errorf("sandbox: CorruptOrder: unknown mode %q", how)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.orders[orderID]
	if !ok {
		return fmt.Errorf("sandbox: CorruptOrder: no generated order with that ID")
	}
	g.corrupt = how
	return nil
}

// CorruptInSearch makes searchOrders serve a generated order malformed, among
// the well-formed orders of its page, until called again with how == "":
// CorruptMissingItems, CorruptBadTime, CorruptBadAmount or CorruptMissingID
// (CorruptInvalidJSON would break the whole page, not one order). getOrder is
// not affected (see CorruptOrder). The order's lastUpdatedTime is unchanged, so
// fixing it does not by itself bring it back into a search after the watermark.
func (s *Server) CorruptInSearch(orderID string, how string) error {
	switch how {
	case "", CorruptMissingItems, CorruptBadTime, CorruptBadAmount, CorruptMissingID:
	default:
		return fmt.Errorf("sandbox: CorruptInSearch: unknown mode %q", how)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.orders[orderID]
	if !ok {
		return fmt.Errorf("sandbox: CorruptInSearch: no generated order with that ID")
	}
	g.corruptList = how
	return nil
}

// corruptOrder applies a corruption mode to an order decoded into a map.
func (s *Server) corruptOrder(order map[string]any, how string) {
	switch how {
	case CorruptMissingItems:
		delete(order, "orderItems")
	case CorruptBadTime:
		order["createdTime"] = "yesterday " + s.opts.Marker
	case CorruptBadAmount:
		order["proceeds"] = map[string]any{"grandTotal": map[string]any{
			"amount": "12,50 " + s.opts.Marker, "currencyCode": currencyGBP}}
	case CorruptMissingID:
		delete(order, "orderId")
	}
}

// FailNext makes the next n SP-API requests (searchOrders or getOrder, not
// the token endpoint) fail with status and a model-shaped ErrorList body:
// 429 QuotaExceeded (with the x-amzn-RateLimit-Limit header), 500
// InternalFailure, 503 ServiceUnavailable, or for other statuses a code
// derived from the status text. Calls accumulate.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// Requests returns how many requests the server received for op
// (spapi.OpSearchOrders, spapi.OpGetOrder or spapi.OpLWAToken), including
// those answered with an error.
func (s *Server) Requests(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// TokenRequests returns how many LWA token requests the server received.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// RevokeTokens invalidates every access token issued so far: requests that
// carry one get 403 Unauthorized, as from Amazon for a revoked token.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
	clear(s.grantless)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requestSeq++
	rid := fmt.Sprintf("%s-%04x-4000-8000-%012x", s.idPrefix, s.requestSeq>>48, s.requestSeq)
	s.mu.Unlock()
	w.Header().Set(headerRequestID, rid)

	path := r.URL.EscapedPath()
	switch {
	case path == tokenPath:
		s.serveToken(w, r, rid)
	case path == spapi.NotificationsDestinationsPath || strings.HasPrefix(path, spapi.NotificationsSubscriptionsPath):
		s.serveNotifications(w, r, rid, path)
	case strings.HasPrefix(path, "/feeds/2021-06-30/"):
		s.serveFeeds(w, r, rid, path)
	case strings.HasPrefix(path, feedUploadsPath):
		s.serveFeedDocument(w, r, path)
	case path == ordersPath:
		s.serveOperation(w, r, rid, spapi.OpSearchOrders, "")
	case strings.HasPrefix(path, ordersPath+"/") && !strings.Contains(path[len(ordersPath)+1:], "/"):
		id, err := url.PathUnescape(path[len(ordersPath)+1:])
		if err != nil || id == "" {
			s.reply(w, "", rid, http.StatusBadRequest, errorList("InvalidInput", "Invalid orderId.", ""))
			return
		}
		s.serveOperation(w, r, rid, spapi.OpGetOrder, id)
	default:
		s.reply(w, "", rid, http.StatusNotFound, errorList("NotFound", "Resource not found.", ""))
	}
}

// serveOperation applies, in order: counting, injected failures, the rate
// limiter, the access token check, static examples, then generated orders.
func (s *Server) serveOperation(w http.ResponseWriter, r *http.Request, rid, op, orderID string) {
	s.mu.Lock()
	s.requests[op]++
	injected := 0
	if len(s.failures) > 0 {
		injected, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()

	w.Header().Set(headerRateLimit, strconv.FormatFloat(s.limits[op].Rate, 'f', -1, 64))
	if r.Method != http.MethodGet {
		s.reply(w, op, rid, http.StatusMethodNotAllowed, errorList("MethodNotAllowed", "Method not allowed.", ""))
		return
	}
	if injected != 0 {
		s.reply(w, op, rid, injected, injectedError(injected))
		return
	}
	if !s.limiters[op].Allow() {
		s.reply(w, op, rid, http.StatusTooManyRequests, injectedError(http.StatusTooManyRequests))
		return
	}
	if !s.authorize(w, r, op, rid, "") {
		return
	}
	q := r.URL.Query()
	if ex := s.model.matchStatic(op, orderID, q); ex != nil {
		s.reply(w, op, rid, ex.status, ex.body)
		return
	}
	var status int
	var body []byte
	if op == spapi.OpGetOrder {
		status, body = s.getOrder(orderID, q)
	} else {
		status, body = s.searchOrders(q)
	}
	s.reply(w, op, rid, status, body)
}

func (s *Server) reply(w http.ResponseWriter, op, rid string, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	s.log.Debug("sandbox: request", zap.String("operation", op), zap.Int("status", status), zap.String("requestId", rid))
}

// errorList returns a model-shaped ErrorList body.
func errorList(code, message, details string) []byte {
	type apiError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details string `json:"details,omitempty"`
	}
	b, _ := json.Marshal(struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{code, message, details}}})
	return b
}

func injectedError(status int) []byte {
	switch status {
	case http.StatusTooManyRequests:
		return errorList("QuotaExceeded", "You exceeded your quota for the requested resource.", "")
	case http.StatusInternalServerError:
		return errorList("InternalFailure", "We encountered an internal error. Please try again.", "")
	case http.StatusServiceUnavailable:
		return errorList("ServiceUnavailable", "Service temporarily unavailable. Please try again.", "")
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	return errorList(strings.ReplaceAll(text, " ", ""), text+".", "")
}

// getOrder answers getOrder for a generated order.
func (s *Server) getOrder(orderID string, q url.Values) (int, []byte) {
	included, ok := s.parseIncluded(q)
	if !ok {
		return http.StatusBadRequest, errorList("InvalidInput", "Invalid includedData.", "")
	}
	s.mu.Lock()
	g, found := s.orders[orderID]
	var o spapi.Order
	var corrupt string
	if found {
		o = g.view(s.opts.Clock(), s.opts.DeliveryAfter)
		corrupt = g.corrupt
	}
	if s.withheld[orderID] {
		included = withoutRestricted(included)
	}
	s.mu.Unlock()
	if !found {
		return http.StatusNotFound, errorList("NotFound", "The requested order was not found.", "")
	}
	o = filter(o, included)
	body, err := json.Marshal(spapi.GetOrderResponse{Order: &o})
	if err != nil {
		return http.StatusInternalServerError, injectedError(http.StatusInternalServerError)
	}
	switch corrupt {
	case CorruptInvalidJSON:
		body = body[:len(body)/2]
	case CorruptMissingItems, CorruptBadTime, CorruptBadAmount, CorruptMissingID:
		var m map[string]map[string]any
		if json.Unmarshal(body, &m) == nil {
			s.corruptOrder(m["order"], corrupt)
			body, _ = json.Marshal(m)
		}
	}
	return http.StatusOK, body
}

// parseIncluded parses includedData; false if it names an unknown dataset.
func (s *Server) parseIncluded(q url.Values) (map[string]bool, bool) {
	included := map[string]bool{}
	for _, v := range splitCSV(q.Get("includedData")) {
		if !s.model.includedData[v] {
			return nil, false
		}
		included[v] = true
	}
	return included, true
}

// authorize checks the request's access token for op, which takes the
// seller's token (scope "") or a grantless one of scope, and answers 403 as
// Amazon does when it is not the right one. A request without a token passes
// only where the sandbox stands for no application in particular (no
// Options.Credentials: the dev stack and the benchmark run without LWA); with
// Credentials every operation needs its kind of token.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, op, rid, scope string) bool {
	deny := func(details string) bool {
		s.reply(w, op, rid, http.StatusForbidden, errorList("Unauthorized", "Access to requested resource is denied.", details))
		return false
	}
	tok := r.Header.Get(headerTokenInReq)
	if tok == "" {
		if s.opts.Credentials != nil {
			return deny("The request has no access token.")
		}
		return true
	}
	s.mu.Lock()
	exp, known := s.tokens[tok]
	tokScope := s.grantless[tok]
	now := s.opts.Clock()
	s.mu.Unlock()
	switch {
	case !known:
		return deny("The access token you provided is revoked, malformed or invalid.")
	case !now.Before(exp):
		return deny("The access token you provided has expired.")
	case tokScope != scope && scope != "":
		return deny("This operation is grantless: it needs an access token of scope " + scope + ".")
	case tokScope != scope:
		return deny("This operation needs the selling partner's access token, not a grantless one.")
	}
	return true
}

// serveToken is a fake LWA: any client and refresh token get an access token
// valid for an hour (by the server clock), and so does the client credentials
// grant (grantless) of the Notifications API's scope.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, rid string) {
	s.mu.Lock()
	s.tokenRequests++
	s.requests[spapi.OpLWAToken]++
	s.mu.Unlock()
	lwaError := func(status int, code, desc string) {
		b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
		s.reply(w, spapi.OpLWAToken, rid, status, b)
	}
	if r.Method != http.MethodPost {
		lwaError(http.StatusMethodNotAllowed, "invalid_request", "The request method must be POST.")
		return
	}
	if err := r.ParseForm(); err != nil {
		lwaError(http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return
	}
	grantless := r.PostForm.Get("grant_type") == "client_credentials"
	scope := r.PostForm.Get("scope")
	switch {
	case grantless && scope != spapi.NotificationsScope:
		lwaError(http.StatusBadRequest, "invalid_scope", "The sandbox grants only the scope "+spapi.NotificationsScope+".")
		return
	case !grantless && r.PostForm.Get("grant_type") != "refresh_token":
		lwaError(http.StatusBadRequest, "unsupported_grant_type", "Only grant_type=refresh_token or client_credentials is supported.")
		return
	case !grantless && r.PostForm.Get("refresh_token") == "":
		lwaError(http.StatusBadRequest, "invalid_request", "The request is missing refresh_token.")
		return
	case r.PostForm.Get("client_id") == "" || r.PostForm.Get("client_secret") == "":
		lwaError(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	case s.opts.Credentials != nil && (r.PostForm.Get("client_id") != s.opts.Credentials.ClientID ||
		r.PostForm.Get("client_secret") != s.opts.Credentials.ClientSecret):
		lwaError(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	case s.opts.Credentials != nil && !grantless && r.PostForm.Get("refresh_token") != s.opts.Credentials.RefreshToken:
		lwaError(http.StatusBadRequest, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
		return
	}
	tok := "Atza|sandbox-" + randomHex(16)
	s.mu.Lock()
	s.tokens[tok] = s.opts.Clock().Add(tokenLifetime)
	reply := map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": int(tokenLifetime / time.Second)}
	if grantless {
		s.grantless[tok] = scope
	} else {
		reply["refresh_token"] = r.PostForm.Get("refresh_token")
	}
	s.mu.Unlock()
	b, _ := json.Marshal(reply)
	s.reply(w, spapi.OpLWAToken, rid, http.StatusOK, b)
}

// deepCopy copies an order through JSON, so the copy shares no memory. (A
// generated order is plain data: the round trip cannot fail.)
func deepCopy(o spapi.Order) spapi.Order {
	var c spapi.Order
	b, err := json.Marshal(o)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return o
	}
	return c
}
