package spapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
)

const marker = "PII-MARKER-7f3a"

var allData = []string{spapi.IncludeBuyer, spapi.IncludeRecipient, spapi.IncludeProceeds,
	spapi.IncludeFulfillment, spapi.IncludePackages, spapi.IncludeTax}

// fakeClock is a settable clock shared by the client and the sandbox.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	srv    *sandbox.Server
	base   string
	clock  *fakeClock
	client *spapi.Client
	logs   []*observer.ObservedLogs
}

// setup starts a sandbox with a marker and a fake clock and a client on it
// with fast limits and tiny backoff. mod may adjust either configuration.
func setup(t *testing.T, modSandbox func(*sandbox.Options), modClient func(cfg *spapi.Config, base string)) *env {
	t.Helper()
	clock := newClock()
	opts := sandbox.Options{Seed: 42, Clock: clock.Now, Marker: marker, Limits: sandbox.TestLimits()}
	if modSandbox != nil {
		modSandbox(&opts)
	}
	srv, base := sandboxtest.Start(t, opts)
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := spapi.Config{
		Endpoint:       base,
		Logger:         zap.New(core),
		Now:            clock.Now,
		MaxAttempts:    5,
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  2 * time.Millisecond,
		Limits: map[string]spapi.Limit{
			spapi.OpSearchOrders: {Rate: 100000, Burst: 1000},
			spapi.OpGetOrder:     {Rate: 100000, Burst: 1000},
		},
	}
	if modClient != nil {
		modClient(&cfg, base)
	}
	c, err := spapi.New(cfg)
	require.NoError(t, err)
	e := &env{srv: srv, base: base, clock: clock, client: c, logs: []*observer.ObservedLogs{logs}}
	t.Cleanup(func() { e.assertNoPIIInLogs(t) })
	return e
}

func withCredentials(c *spapi.Config, base string) {
	c.TokenURL = sandboxtest.TokenURL(base)
	c.ClientID, c.ClientSecret, c.RefreshToken = "amzn1.application-oa2-client.test", "secret", "Atzr|refresh"
}

// assertNoPIIInLogs checks that no log line of the client carries the marker
// or a token.
func (e *env) assertNoPIIInLogs(t *testing.T) {
	n := 0
	for _, logs := range e.logs {
		for _, entry := range logs.All() {
			n++
			line := entry.Message + fmt.Sprint(entry.ContextMap())
			assert.NotContains(t, line, marker)
			assert.NotContains(t, line, "Atza|")
			assert.NotContains(t, line, "Atzr|")
			assert.NotContains(t, line, "secret")
		}
	}
	assert.Positive(t, n, "the client logs at Debug")
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestTokenIsCachedAndRefreshedAfterExpiry(t *testing.T) {
	e := setup(t, nil, withCredentials)
	client := e.client
	ids := e.srv.Generate(3)

	for i := range 10 {
		_, err := client.GetOrder(ctx(t), ids[i%3], nil)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, e.srv.TokenRequests(), "one LWA call for many requests")

	// Concurrent callers share one refresh.
	client = e.newClient(t, func(cfg *spapi.Config) { withCredentials(cfg, e.base) })
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := client.GetOrder(ctx(t), ids[0], nil)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 2, e.srv.TokenRequests(), "one LWA call for 20 concurrent requests")

	// The token lives 3600s; it is replaced a minute before it expires.
	e.clock.Advance(3500 * time.Second)
	_, err := client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Equal(t, 2, e.srv.TokenRequests(), "still valid")
	e.clock.Advance(50 * time.Second)
	_, err = client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Equal(t, 3, e.srv.TokenRequests(), "refreshed shortly before expiry")
	_, err = client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Equal(t, 3, e.srv.TokenRequests())

	// A revoked token (403) is replaced once, transparently.
	e.srv.RevokeTokens()
	_, err = client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Equal(t, 4, e.srv.TokenRequests())
}

func fastLimits() map[string]spapi.Limit {
	return map[string]spapi.Limit{
		spapi.OpSearchOrders: {Rate: 100000, Burst: 1000},
		spapi.OpGetOrder:     {Rate: 100000, Burst: 1000},
	}
}

// newClient makes another client on the same sandbox and clock.
func (e *env) newClient(t *testing.T, mod func(*spapi.Config)) *spapi.Client {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = append(e.logs, logs)
	cfg := spapi.Config{
		Endpoint: e.base, Logger: zap.New(core), Now: e.clock.Now, Limits: fastLimits(),
		MaxAttempts: 5, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 2 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := spapi.New(cfg)
	require.NoError(t, err)
	return c
}

func TestNoTokenWithoutCredentials(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(1)
	_, err := e.client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Zero(t, e.srv.TokenRequests())
}

func TestLWAErrorIsReported(t *testing.T) {
	e := setup(t, nil, func(cfg *spapi.Config, base string) {
		withCredentials(cfg, base)
		cfg.TokenURL = base + "/auth/o2/elsewhere"
	})
	ids := e.srv.Generate(1)
	_, err := e.client.GetOrder(ctx(t), ids[0], nil)
	var apiErr *spapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, spapi.OpLWAToken, apiErr.Operation)
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.False(t, spapi.IsRetryable(err))
	assert.Zero(t, e.srv.Requests(spapi.OpGetOrder), "no SP-API call without a token")
	assert.NotContains(t, err.Error(), "secret")
}

func TestPaginationReturnsEveryOrderOnce(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(237)
	start := e.clock.Now().Add(-time.Hour)

	seen := map[string]int{}
	pages := 0
	p := spapi.SearchOrdersParams{
		LastUpdatedAfter:  start,
		MarketplaceIDs:    []string{spapi.MarketplaceUK},
		MaxResultsPerPage: 40,
	}
	var lastBefore time.Time
	for {
		resp, err := e.client.SearchOrders(ctx(t), p)
		require.NoError(t, err)
		pages++
		for _, o := range resp.Orders {
			seen[o.OrderID]++
			assert.Nil(t, o.Buyer, "no BUYER without includedData")
			assert.Nil(t, o.Recipient, "no RECIPIENT without includedData")
			assert.Nil(t, o.Tax)
			assert.NotEmpty(t, o.OrderItems)
		}
		raw, err := json.Marshal(resp)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), marker, "no PII without includedData")
		lastBefore = resp.LastUpdatedBefore.Time
		if resp.NextToken() == "" {
			break
		}
		p.PaginationToken = resp.NextToken()
	}
	assert.Equal(t, 6, pages)
	assert.Len(t, seen, len(ids))
	for _, id := range ids {
		assert.Equal(t, 1, seen[id], id)
	}
	assert.Equal(t, e.clock.Now(), lastBefore, "lastUpdatedBefore defaults to now")
	assert.Equal(t, 6, e.srv.Requests(spapi.OpSearchOrders))

	// With includedData, PII comes back (with the marker).
	resp, err := e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{
		CreatedAfter: start, MarketplaceIDs: []string{spapi.MarketplaceUK}, IncludedData: allData, MaxResultsPerPage: 5})
	require.NoError(t, err)
	require.Len(t, resp.Orders, 5)
	assert.Contains(t, resp.Orders[0].Buyer.BuyerName, marker)
	assert.False(t, resp.CreatedBefore.IsZero())

	// Another marketplace has none of them.
	resp, err = e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{
		CreatedAfter: start, MarketplaceIDs: []string{"A1PA6795UKMFR9"}})
	require.NoError(t, err)
	assert.Empty(t, resp.Orders)
	assert.Empty(t, resp.NextToken())
}

func TestSearchSeesStateChanges(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(5)
	created := e.clock.Now()
	e.clock.Advance(time.Hour)
	require.NoError(t, e.srv.Cancel(ids[0]))

	search := func(after time.Time) map[string]spapi.Order {
		resp, err := e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{
			LastUpdatedAfter: after, MarketplaceIDs: []string{spapi.MarketplaceUK},
			IncludedData: []string{spapi.IncludeFulfillment, spapi.IncludePackages}})
		require.NoError(t, err)
		got := map[string]spapi.Order{}
		for _, o := range resp.Orders {
			got[o.OrderID] = o
		}
		return got
	}
	got := search(created.Add(time.Minute))
	require.Len(t, got, 1, "only the cancellation is an update since creation")
	cancelled := got[ids[0]]
	assert.True(t, cancelled.Cancelled())

	e.clock.Advance(47 * time.Hour) // 48h after creation: delivered
	got = search(created.Add(2 * time.Hour))
	require.Len(t, got, 4)
	for _, id := range ids[1:] {
		o := got[id]
		at, ok := o.DeliveredAt()
		assert.True(t, ok)
		assert.Equal(t, created.Add(48*time.Hour), at)
	}
}

func TestGetOrderReturnsPII(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(20)
	for _, id := range ids {
		o, err := e.client.GetOrder(ctx(t), id, allData)
		require.NoError(t, err)
		want, ok := e.srv.Order(id)
		require.True(t, ok)
		assert.Equal(t, want.Buyer, o.Buyer)
		assert.Equal(t, want.Recipient, o.Recipient)
		assert.Contains(t, o.Buyer.BuyerName, marker)
		assert.Contains(t, o.Buyer.BuyerEmail, marker)
		addr := o.Recipient.DeliveryAddress
		assert.Contains(t, addr.Name, marker)
		assert.Contains(t, addr.AddressLine1, marker)
		assert.Contains(t, addr.Phone, marker)
		assert.NotEmpty(t, addr.PostalCode)
		assert.Equal(t, "GB", addr.CountryCode)
		assert.Equal(t, "GBP", o.Proceeds.GrandTotal.CurrencyCode)
		_, err = o.Proceeds.GrandTotal.Amount.Minor()
		assert.NoError(t, err)
		assert.Equal(t, spapi.MarketplaceUK, o.SalesChannel.MarketplaceID)
		assert.Equal(t, "MERCHANT", o.Fulfillment.FulfilledBy)
	}

	// Without includedData: no PII at all.
	o, err := e.client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Nil(t, o.Buyer)
	assert.Nil(t, o.Recipient)
	assert.Nil(t, o.Fulfillment)
	raw, _ := json.Marshal(o)
	assert.NotContains(t, string(raw), marker)
}

func TestRetriesThenSucceeds(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(1)
	e.srv.FailNext(2, 429)
	e.srv.FailNext(1, 500)
	e.srv.FailNext(1, 503)
	o, err := e.client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	assert.Equal(t, ids[0], o.OrderID)
	assert.Equal(t, 5, e.srv.Requests(spapi.OpGetOrder))

	e.srv.FailNext(1, 500)
	_, err = e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{CreatedAfter: e.clock.Now().Add(-time.Hour), MarketplaceIDs: []string{spapi.MarketplaceUK}})
	require.NoError(t, err)
	assert.Equal(t, 2, e.srv.Requests(spapi.OpSearchOrders))
}

func TestRetriesExhausted(t *testing.T) {
	e := setup(t, nil, func(c *spapi.Config, _ string) { c.MaxAttempts = 3 })
	ids := e.srv.Generate(1)
	e.srv.FailNext(3, 500)
	_, err := e.client.GetOrder(ctx(t), ids[0], nil)
	require.Error(t, err)
	assert.Equal(t, 3, e.srv.Requests(spapi.OpGetOrder))
	var apiErr *spapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, spapi.OpGetOrder, apiErr.Operation)
	assert.Equal(t, 500, apiErr.StatusCode)
	assert.Equal(t, "InternalFailure", apiErr.Code)
	require.NotEmpty(t, apiErr.RequestID)
	assert.Contains(t, err.Error(), "spapi getOrder: HTTP 500 InternalFailure (request id "+apiErr.RequestID+")")
	assert.Contains(t, err.Error(), "after 3 attempts")
	assert.True(t, spapi.IsRetryable(err), "a later retry (by the caller) may succeed")

	// 429s exhausted: the throttling code and status come through.
	e.srv.FailNext(3, 429)
	_, err = e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{CreatedAfter: e.clock.Now(), MarketplaceIDs: []string{spapi.MarketplaceUK}})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 429, apiErr.StatusCode)
	assert.Equal(t, "QuotaExceeded", apiErr.Code)
	assert.Contains(t, err.Error(), "spapi searchOrders: HTTP 429")
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	e := setup(t, nil, func(c *spapi.Config, _ string) {
		c.MaxAttempts = 10
		c.RetryBaseDelay, c.RetryMaxDelay = time.Hour, time.Hour
	})
	ids := e.srv.Generate(1)
	e.srv.FailNext(1, 500)
	cctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.srv.Requests(spapi.OpGetOrder) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	// With hour-long back-offs, only cancellation can end this call before the
	// test's timeout.
	_, err := e.client.GetOrder(cctx, ids[0], nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, spapi.IsRetryable(err))
}

func TestMalformedResponsesAreNotRetriedAndLeakNothing(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(4)
	cases := []struct {
		how  string
		want string
	}{
		{sandbox.CorruptInvalidJSON, "invalid JSON"},
		{sandbox.CorruptMissingItems, "order.orderItems: missing"},
		{sandbox.CorruptBadTime, "order.createdTime: not an RFC 3339 date-time"},
		{sandbox.CorruptBadAmount, "order.proceeds.grandTotal.amount: not a decimal with at most 2 decimal places"},
	}
	for i, c := range cases {
		t.Run(c.how, func(t *testing.T) {
			require.NoError(t, e.srv.CorruptOrder(ids[i], c.how))
			before := e.srv.Requests(spapi.OpGetOrder)
			_, err := e.client.GetOrder(ctx(t), ids[i], allData)
			require.Error(t, err)
			assert.Equal(t, before+1, e.srv.Requests(spapi.OpGetOrder), "not retried")
			var re *spapi.ResponseError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, spapi.OpGetOrder, re.Operation)
			assert.NotEmpty(t, re.RequestID)
			assert.Contains(t, re.Problem, c.want)
			assert.False(t, spapi.IsRetryable(err))
			assert.NotContains(t, err.Error(), marker)
			assert.NotContains(t, fmt.Sprintf("%+v", err), marker)
		})
	}
	require.NoError(t, e.srv.CorruptOrder(ids[0], ""))
	_, err := e.client.GetOrder(ctx(t), ids[0], allData)
	require.NoError(t, err)
}

// One malformed order costs only itself: the rest of its page decodes, and the
// bad one is described by position, id (when it has one) and digest, with no
// value from the order.
func TestSearchPageIsolatesMalformedOrders(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(8)
	bad := map[string]string{
		ids[1]: sandbox.CorruptBadTime,
		ids[3]: sandbox.CorruptBadAmount,
		ids[5]: sandbox.CorruptMissingItems,
		ids[7]: sandbox.CorruptMissingID,
	}
	for id, how := range bad {
		require.NoError(t, e.srv.CorruptInSearch(id, how))
	}
	search := func() *spapi.SearchOrdersResponse {
		resp, err := e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{
			LastUpdatedAfter: e.clock.Now().Add(-time.Hour), MarketplaceIDs: []string{spapi.MarketplaceUK},
			IncludedData: allData})
		require.NoError(t, err, "one malformed order must not fail the page")
		return resp
	}
	resp := search()
	var good []string
	for _, o := range resp.Orders {
		good = append(good, o.OrderID)
	}
	assert.ElementsMatch(t, []string{ids[0], ids[2], ids[4], ids[6]}, good)
	require.Len(t, resp.Rejected, 4)
	problems := map[string]string{}
	var noID spapi.RejectedOrder
	for _, r := range resp.Rejected {
		assert.Len(t, r.Digest, 32)
		assert.NotContains(t, fmt.Sprintf("%+v", r), marker)
		if r.OrderID == "" {
			noID = r
			continue
		}
		problems[r.OrderID] = r.Problem
	}
	assert.Equal(t, "order.createdTime: not an RFC 3339 date-time", problems[ids[1]])
	assert.Equal(t, "order.proceeds.grandTotal.amount: not a decimal with at most 2 decimal places", problems[ids[3]])
	assert.Equal(t, "order.orderItems: missing", problems[ids[5]])
	assert.Equal(t, "order.orderId: missing", noID.Problem)
	sorted := slices.Clone(ids) // created in the same second: the page is sorted by id
	slices.Sort(sorted)
	assert.Equal(t, slices.Index(sorted, ids[7]), noID.Index, "an order without an id is known by its position")

	// The same document served again has the same digest; a repaired one decodes.
	again := search()
	require.Len(t, again.Rejected, 4)
	for _, r := range again.Rejected {
		if r.OrderID == "" {
			assert.Equal(t, noID.Digest, r.Digest)
		}
	}
	require.NoError(t, e.srv.CorruptInSearch(ids[1], ""))
	assert.Len(t, search().Orders, 5)
}

func TestStaticExamples(t *testing.T) {
	e := setup(t, nil, nil)

	o, err := e.client.GetOrder(ctx(t), "171-9876543-2109876",
		[]string{"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES"})
	require.NoError(t, err)
	assert.Equal(t, "171-9876543-2109876", o.OrderID)
	assert.Equal(t, time.Date(2024, 12, 24, 20, 30, 0, 0, time.UTC), o.CreatedTime.UTC())
	assert.Equal(t, "Maria Silva Santos", o.Buyer.BuyerName)
	assert.Equal(t, "Vila Madalena", o.Recipient.DeliveryAddress.ExtendedFields.Neighborhood)
	assert.Equal(t, "RESIDENTIAL", o.Recipient.DeliveryAddress.AddressType)
	minor, err := o.Proceeds.GrandTotal.Amount.Minor()
	require.NoError(t, err)
	assert.Equal(t, int64(29990), minor)
	assert.Equal(t, "BRL", o.Proceeds.GrandTotal.CurrencyCode)
	latest, ok := o.LatestDeliveryDate()
	assert.True(t, ok)
	assert.Equal(t, time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), latest)
	require.Len(t, o.OrderItems, 1)
	it := o.OrderItems[0]
	assert.Equal(t, 1, it.Quantity())
	assert.Equal(t, "ECHO-DOT-4-BR-PRETO", it.Product.SellerSKU)
	assert.Equal(t, spapi.Decimal("299.90"), it.Product.Price.UnitPrice.Amount)
	assert.Contains(t, it.Fulfillment.Packing.GiftOption.GiftMessage, "Feliz Natal")
	assert.False(t, o.Cancelled())
	assert.False(t, o.IsBusiness())
	_, delivered := o.DeliveredAt()
	assert.False(t, delivered)

	tr, err := e.client.GetOrder(ctx(t), "028-1234567-8901234", []string{"BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "TAX"})
	require.NoError(t, err)
	assert.True(t, tr.IsBusiness(), "BUYER tax registration of type BUSINESS")
	assert.Equal(t, "Istanbul", tr.Tax.TaxRegistrations[0].TaxRegistrationAddress.City)

	us, err := e.client.GetOrder(ctx(t), "114-9876543-1234567", []string{"RECIPIENT", "PROCEEDS", "FULFILLMENT"})
	require.NoError(t, err)
	assert.Equal(t, []string{"IN_STORE_PICK_UP"}, us.Programs)

	// TEST_CASE_400 answers 400 with the model's error code, not retried.
	_, err = e.client.GetOrder(ctx(t), "TEST_CASE_400", nil)
	var apiErr *spapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode)
	assert.Equal(t, "InvalidInput", apiErr.Code)
	assert.Equal(t, "Invalid Input", apiErr.Message)
	assert.False(t, spapi.IsRetryable(err))
	assert.Equal(t, fmt.Sprintf("spapi getOrder: HTTP 400 InvalidInput (request id %s): Invalid Input", apiErr.RequestID), err.Error())

	// The UK searchOrders example (second page of a createdAfter search).
	resp, err := e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{
		CreatedAfter:    time.Date(2024, 12, 23, 0, 0, 0, 0, time.UTC),
		MarketplaceIDs:  []string{spapi.MarketplaceUK},
		IncludedData:    []string{"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES"},
		PaginationToken: "9ZhB4RmVyc2lvbiAxLjAgb2YgdGhl",
	})
	require.NoError(t, err)
	require.Len(t, resp.Orders, 1)
	uk := resp.Orders[0]
	assert.Equal(t, "202-7654321-1098765", uk.OrderID)
	assert.Equal(t, "SW1A 1AA", uk.Recipient.DeliveryAddress.PostalCode)
	assert.Equal(t, time.Date(2024, 12, 24, 15, 0, 0, 0, time.UTC), resp.CreatedBefore.UTC())
	assert.Empty(t, resp.NextToken())

	// The other searchOrders examples decode and validate too.
	for _, ex := range []struct {
		after  time.Time
		market string
		data   []string
	}{
		{time.Date(2024, 12, 25, 0, 0, 0, 0, time.UTC), "A1VC38T7YXB528", []string{"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES"}},
		{time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC), "A2Q3Y263D00KWC", []string{"BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "TAX", "PAYMENT"}},
	} {
		resp, err := e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{CreatedAfter: ex.after, MarketplaceIDs: []string{ex.market}, IncludedData: ex.data})
		require.NoError(t, err)
		require.Len(t, resp.Orders, 1)
		assert.Empty(t, resp.Rejected)
		assert.Equal(t, ex.market, resp.Orders[0].SalesChannel.MarketplaceID)
	}
}

func TestLimiterHonoursRateHeader(t *testing.T) {
	// Amazon (here the sandbox) reports 200 requests/s for getOrder; the
	// client is configured for far more with a burst of 1.
	e := setup(t, func(o *sandbox.Options) {
		o.Limits = map[string]spapi.Limit{spapi.OpGetOrder: {Rate: 200, Burst: 1000}, spapi.OpSearchOrders: {Rate: 5000, Burst: 1000}}
	}, func(c *spapi.Config, _ string) {
		c.Limits = map[string]spapi.Limit{spapi.OpGetOrder: {Rate: 100000, Burst: 1}, spapi.OpSearchOrders: {Rate: 1000, Burst: 5}}
	})
	ids := e.srv.Generate(1)
	_, err := e.client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	l, ok := e.client.Limit(spapi.OpGetOrder)
	require.True(t, ok)
	assert.Equal(t, spapi.Limit{Rate: 200, Burst: 1}, l, "lowered to the header's rate")

	// At 200/s with burst 1, three more calls need at least ~10ms.
	start := time.Now()
	for range 3 {
		_, err := e.client.GetOrder(ctx(t), ids[0], nil)
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, time.Since(start), 9*time.Millisecond)

	// A header above the configured rate does not raise it.
	_, err = e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{CreatedAfter: e.clock.Now(), MarketplaceIDs: []string{spapi.MarketplaceUK}})
	require.NoError(t, err)
	l, _ = e.client.Limit(spapi.OpSearchOrders)
	assert.Equal(t, spapi.Limit{Rate: 1000, Burst: 5}, l)
}

func TestSandboxThrottlingIsRetried(t *testing.T) {
	// The sandbox allows a burst of 2 getOrder calls and then 429s (its rate
	// is tiny); the client retries and finally reports the 429.
	e := setup(t, func(o *sandbox.Options) {
		o.Limits = map[string]spapi.Limit{spapi.OpGetOrder: {Rate: 0.001, Burst: 2}}
	}, func(c *spapi.Config, _ string) { c.MaxAttempts = 2 })
	ids := e.srv.Generate(1)
	for range 2 {
		_, err := e.client.GetOrder(ctx(t), ids[0], nil)
		require.NoError(t, err)
	}
	_, err := e.client.GetOrder(ctx(t), ids[0], nil)
	var apiErr *spapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 429, apiErr.StatusCode)
	assert.Equal(t, 4, e.srv.Requests(spapi.OpGetOrder))
	l, _ := e.client.Limit(spapi.OpGetOrder)
	assert.Equal(t, 0.001, l.Rate, "the client adopted the reported rate")
}

func TestLimiterWaitRespectsDeadline(t *testing.T) {
	e := setup(t, nil, func(c *spapi.Config, _ string) {
		c.Limits = map[string]spapi.Limit{spapi.OpGetOrder: {Rate: 0.001, Burst: 1}}
	})
	ids := e.srv.Generate(1)
	_, err := e.client.GetOrder(ctx(t), ids[0], nil)
	require.NoError(t, err)
	// The next token comes in 1000 s, past the deadline: the call must fail
	// without waiting, so the context is still live when it returns.
	short, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = e.client.GetOrder(short, ids[0], nil)
	require.Error(t, err)
	assert.NoError(t, short.Err(), "fails at once: the wait would pass the deadline")
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, spapi.IsRetryable(err), "worth retrying later")
	assert.Equal(t, 1, e.srv.Requests(spapi.OpGetOrder))
}

func TestOrderStateDetection(t *testing.T) {
	e := setup(t, nil, nil)
	ids := e.srv.Generate(60)
	created := e.clock.Now()
	get := func(id string) *spapi.Order {
		o, err := e.client.GetOrder(ctx(t), id, allData)
		require.NoError(t, err)
		return o
	}

	o := get(ids[0])
	assert.Equal(t, spapi.StatusUnshipped, o.Fulfillment.FulfillmentStatus)
	assert.Empty(t, o.Packages)
	_, ok := o.DeliveredAt()
	assert.False(t, ok)
	latest, ok := o.LatestDeliveryDate()
	assert.True(t, ok)
	assert.Equal(t, created.Add(72*time.Hour), latest)

	e.clock.Advance(24 * time.Hour)
	o = get(ids[0])
	assert.Equal(t, spapi.StatusShipped, o.Fulfillment.FulfillmentStatus)
	require.Len(t, o.Packages, 1)
	assert.Equal(t, spapi.PackageInTransit, o.Packages[0].PackageStatus.Status)
	assert.Equal(t, created.Add(24*time.Hour), o.LastUpdatedTime.Time)
	_, ok = o.DeliveredAt()
	assert.False(t, ok)

	require.NoError(t, e.srv.Cancel(ids[1]))
	c := get(ids[1])
	assert.True(t, c.Cancelled())
	assert.Equal(t, e.clock.Now(), c.LastUpdatedTime.Time)
	require.Error(t, e.srv.Cancel("000-0000000-0000000"))

	e.clock.Advance(24 * time.Hour)
	o = get(ids[0])
	at, ok := o.DeliveredAt()
	assert.True(t, ok)
	assert.Equal(t, created.Add(48*time.Hour), at)
	assert.Equal(t, spapi.PackageDelivered, o.Packages[0].PackageStatus.Status)
	c = get(ids[1])
	assert.True(t, c.Cancelled())
	_, ok = c.DeliveredAt()
	assert.False(t, ok)

	business := 0
	for _, id := range ids {
		o := get(id)
		want, _ := e.srv.Order(id)
		assert.Equal(t, want.IsBusiness(), o.IsBusiness())
		if o.IsBusiness() {
			business++
			assert.Contains(t, o.Buyer.BuyerCompanyName, marker)
			require.NotNil(t, o.Tax)
			reg := o.Tax.TaxRegistrations[0]
			assert.Equal(t, spapi.EntityBuyer, reg.EntityType)
			assert.True(t, strings.HasPrefix(reg.TaxRegistrationNumber, "GB"))
			assert.Contains(t, reg.TaxRegistrationNumber, marker)
		}
	}
	assert.Positive(t, business, "seed 42 yields some business orders among 60")
}

func TestInvalidParamsMakeNoRequest(t *testing.T) {
	e := setup(t, nil, nil)
	_, err := e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{MarketplaceIDs: []string{spapi.MarketplaceUK}})
	assert.ErrorIs(t, err, spapi.ErrInvalidParams)
	_, err = e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{CreatedAfter: time.Now(), LastUpdatedAfter: time.Now(), MarketplaceIDs: []string{spapi.MarketplaceUK}})
	assert.ErrorIs(t, err, spapi.ErrInvalidParams)
	_, err = e.client.SearchOrders(ctx(t), spapi.SearchOrdersParams{CreatedAfter: time.Now()})
	assert.ErrorIs(t, err, spapi.ErrInvalidParams)
	_, err = e.client.GetOrder(ctx(t), "", nil)
	assert.ErrorIs(t, err, spapi.ErrInvalidParams)
	assert.Zero(t, e.srv.Requests(spapi.OpSearchOrders)+e.srv.Requests(spapi.OpGetOrder))

	_, err = e.client.GetOrder(ctx(t), "999-0000000-0000000", nil)
	var apiErr *spapi.Error
	require.ErrorAs(t, err, &apiErr)
	assert.True(t, apiErr.NotFound())
	assert.False(t, spapi.IsRetryable(err))
}

func TestTransportErrorsAreRetried(t *testing.T) {
	c, err := spapi.New(spapi.Config{Endpoint: "http://127.0.0.1:1", Limits: fastLimits(),
		MaxAttempts: 3, RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
	require.NoError(t, err)
	_, err = c.GetOrder(ctx(t), "205-1234567-7654321", nil)
	require.Error(t, err)
	var te *spapi.TransportError
	require.True(t, errors.As(err, &te))
	assert.Equal(t, spapi.OpGetOrder, te.Operation)
	assert.True(t, spapi.IsRetryable(err))
	assert.Contains(t, err.Error(), "after 3 attempts")
}
