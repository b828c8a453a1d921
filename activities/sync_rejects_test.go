package activities

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/internal/metrics"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/testenv"
)

const secret = "Jane Doe SECRET-PII"

// pageSource serves one searchOrders page per pass, and getOrder from a map.
type pageSource struct {
	mu     sync.Mutex
	page   spapi.SearchOrdersResponse
	orders map[string]*spapi.Order // nil entry: served malformed
	gets   int
}

func (p *pageSource) SearchOrders(_ context.Context, _ spapi.SearchOrdersParams) (*spapi.SearchOrdersResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	page := p.page
	page.LastUpdatedBefore = spapi.NewTime(time.Now())
	return &page, nil
}

func (p *pageSource) GetOrder(_ context.Context, id string, _ []string) (*spapi.Order, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gets++
	o, ok := p.orders[id]
	if !ok {
		return nil, &spapi.Error{Operation: spapi.OpGetOrder, StatusCode: 404}
	}
	if o == nil {
		return nil, &spapi.ResponseError{Operation: spapi.OpGetOrder, Problem: "order.orderItems: missing"}
	}
	return o, nil
}

type lifecycleLog struct {
	mu                 sync.Mutex
	started, cancelled map[string]int
}

func (l *lifecycleLog) Start(_ context.Context, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started[id]++
	return l.started[id] == 1, nil
}

func (l *lifecycleLog) Delivered(context.Context, string, time.Time) error { return nil }

func (l *lifecycleLog) Cancelled(_ context.Context, id, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancelled[id]++
	return nil
}

func order(id string) spapi.Order {
	q := 1
	now := spapi.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	return spapi.Order{OrderID: id, CreatedTime: now, LastUpdatedTime: now,
		SalesChannel: &spapi.SalesChannel{ChannelName: "AMAZON"},
		Buyer:        &spapi.Buyer{BuyerName: secret},
		OrderItems:   []spapi.OrderItem{{OrderItemID: "1", QuantityOrdered: &q, Product: &spapi.ItemProduct{}}}}
}

func syncPass(t *testing.T, a *Sync, reg *metrics.Registry, name ...string) (*SyncResult, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetMetricsHandler(reg.Handler())
	env := ts.NewTestActivityEnvironment()
	a.Register(env)
	in := SyncOrdersInput{Name: "unit"}
	if len(name) > 0 {
		in.Name = name[0]
	}
	v, err := env.ExecuteActivity(a.SyncOrders, in)
	if err != nil {
		return nil, err
	}
	var res SyncResult
	return &res, v.Get(&res)
}

// awaitMetric waits until the named series on /metrics sum to want (the SDK's
// counters and gauges reach the registry within metrics.ReportInterval) and
// returns their sum.
func awaitMetric(reg *metrics.Registry, name string, want float64) float64 {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v := reg.Value(name); v == want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Issue 7.2, at the activity: a page with a malformed order (one the search
// could not decode, without an id, and one that decodes but is invalid) still
// starts its good orders and moves the watermark; the bad ones are recorded
// without PII, counted, retried on later passes, and handled once valid.
func TestSyncRecordsMalformedOrdersAndHandlesTheRest(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	invalid := order("202-0000002-0000002")
	invalid.OrderItems = nil // decodes, but fails validation
	src := &pageSource{page: spapi.SearchOrdersResponse{
		Orders: []spapi.Order{order("202-0000001-0000001"), invalid, order("202-0000003-0000003")},
		Rejected: []spapi.RejectedOrder{
			{Index: 3, OrderID: "202-0000004-0000004", Digest: "d4", Problem: "order.createdTime: not an RFC 3339 date-time"},
			{Index: 4, Digest: "00ff", Problem: "order.orderId: missing"},
		}},
		orders: map[string]*spapi.Order{"202-0000002-0000002": nil, "202-0000004-0000004": nil}}
	life := &lifecycleLog{started: map[string]int{}, cancelled: map[string]int{}}
	a := &Sync{Orders: &orders.Service{Pool: pool}, SPAPI: src, Lifecycles: life,
		MarketplaceIDs: []string{spapi.MarketplaceUK}, Lookback: time.Hour}
	reg := metrics.New(nil)
	defer reg.Close()

	res, err := syncPass(t, a, reg)
	if err != nil {
		t.Fatalf("a malformed order failed the pass: %v", err)
	}
	if res.Seen != 5 || res.Started != 2 || res.Malformed != 3 || res.RejectsRetried != 0 {
		t.Fatalf("first pass: %+v", res)
	}
	if life.started["202-0000002-0000002"]+life.started["202-0000004-0000004"] != 0 {
		t.Fatal("a malformed order was started")
	}
	var watermark time.Time
	if err := pool.QueryRow(ctx, `SELECT watermark FROM sync_state WHERE name = 'unit'`).Scan(&watermark); err != nil {
		t.Fatalf("the watermark did not advance: %v", err)
	}
	type row struct {
		reason   string
		attempts int
		resolved bool
	}
	rejects := func() map[string]row {
		rows, err := pool.Query(ctx, `SELECT reject_key, reason_code, attempts, resolved_at IS NOT NULL FROM sync_rejects WHERE sync_name = 'unit'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]row{}
		for rows.Next() {
			var k string
			var r row
			if err := rows.Scan(&k, &r.reason, &r.attempts, &r.resolved); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(r.reason, "SECRET") {
				t.Fatalf("PII in the reason of %s: %q", k, r.reason)
			}
			out[k] = r
		}
		return out
	}
	got := rejects()
	if len(got) != 3 || got["202-0000002-0000002"].reason != "order.orderItems: missing" ||
		got["202-0000004-0000004"].attempts != 1 || got["digest:00ff"].reason != "order.orderId: missing" {
		t.Fatalf("recorded: %+v", got)
	}
	if n := awaitMetric(reg, "dpp_sync_malformed_orders_total", 3); n != 3 {
		t.Fatalf("dpp_sync_malformed_orders_total = %v, want 3", n)
	}

	// Later passes no longer see them in the search, but ask for them again.
	src.mu.Lock()
	src.page = spapi.SearchOrdersResponse{Orders: []spapi.Order{}}
	src.mu.Unlock()
	if res, err = syncPass(t, a, reg); err != nil || res.RejectsRetried != 2 || res.RejectsResolved != 0 {
		t.Fatalf("second pass: %+v, %v", res, err)
	}
	if got := rejects(); got["202-0000002-0000002"].attempts != 2 || got["202-0000004-0000004"].attempts != 2 ||
		got["digest:00ff"].attempts != 1 {
		t.Fatalf("after the retries: %+v", got)
	}

	// Amazon repairs one (and it was cancelled meanwhile): started, signalled, closed.
	fixed := order("202-0000004-0000004")
	fixed.Fulfillment = &spapi.OrderFulfillment{FulfillmentStatus: spapi.StatusCancelled}
	src.mu.Lock()
	src.orders["202-0000004-0000004"] = &fixed
	src.mu.Unlock()
	if res, err = syncPass(t, a, reg); err != nil || res.RejectsRetried != 2 || res.RejectsResolved != 1 || res.Started != 1 {
		t.Fatalf("third pass: %+v, %v", res, err)
	}
	if life.started["202-0000004-0000004"] != 1 || life.cancelled["202-0000004-0000004"] != 1 {
		t.Fatalf("the repaired order: started %d, cancelled %d", life.started["202-0000004-0000004"], life.cancelled["202-0000004-0000004"])
	}
	if got := rejects(); !got["202-0000004-0000004"].resolved || got["202-0000002-0000002"].resolved {
		t.Fatalf("after the repair: %+v", got)
	}
	if n := awaitMetric(reg, "dpp_sync_rejects_unresolved", 2); n != 2 {
		t.Fatalf("dpp_sync_rejects_unresolved = %v, want 2", n)
	}

	// The other comes back valid in a search: handled there, closed too.
	src.mu.Lock()
	src.page = spapi.SearchOrdersResponse{Orders: []spapi.Order{order("202-0000002-0000002")}}
	src.mu.Unlock()
	if res, err = syncPass(t, a, reg); err != nil || res.RejectsResolved != 1 || res.Started != 1 {
		t.Fatalf("fourth pass: %+v, %v", res, err)
	}

	// Past the retry window, an order is no longer asked for.
	a.RejectRetryFor = time.Nanosecond
	gets := src.gets
	if res, err = syncPass(t, a, reg); err != nil || res.RejectsRetried != 0 || src.gets != gets {
		t.Fatalf("past the retry window: %+v, %v", res, err)
	}
}

// failingSource fails getOrder, as in an outage, so the pass fails after its pages.
type failingSource struct{ pageSource }

func (f *failingSource) GetOrder(context.Context, string, []string) (*spapi.Order, error) {
	return nil, errors.New("SP-API unreachable")
}

// A retried activity reads its last page again: the malformed orders on it are
// not counted twice (attempts counts passes, not page reads).
func TestRecordingAMalformedOrderIsIdempotentWithinAPass(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	src := &pageSource{page: spapi.SearchOrdersResponse{Orders: []spapi.Order{},
		Rejected: []spapi.RejectedOrder{{OrderID: "202-0000009-0000009", Digest: "d9", Problem: "order.orderItems: missing"}}}}
	life := &lifecycleLog{started: map[string]int{}, cancelled: map[string]int{}}
	a := &Sync{Orders: &orders.Service{Pool: pool}, SPAPI: src, Lifecycles: life,
		MarketplaceIDs: []string{spapi.MarketplaceUK}, Lookback: time.Hour}

	started := time.Now().UTC().Add(-time.Second)
	before := time.Now().UTC().Truncate(time.Second)
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	a.Register(env)
	for attempt := 1; attempt <= 2; attempt++ {
		// As after a failure past the last page: the heartbeat says where the pass
		// began and what it searches; the first page is read again.
		env.SetHeartbeatDetails(syncProgress{Started: started, After: before.Add(-time.Hour), Before: &before})
		v, err := env.ExecuteActivity(a.SyncOrders, SyncOrdersInput{Name: "idem"})
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		var res SyncResult
		if err := v.Get(&res); err != nil || res.Malformed != 1 {
			t.Fatalf("attempt %d: %+v %v", attempt, res, err)
		}
	}
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT attempts FROM sync_rejects WHERE reject_key = '202-0000009-0000009'`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 {
		t.Fatalf("one pass read the page twice: attempts %d, want 1", attempts)
	}
	// A retry failing on an outage does not fail the pass, nor count an attempt.
	src.mu.Lock()
	src.page.Rejected = nil
	src.mu.Unlock()
	a.SPAPI = &failingSource{pageSource: pageSource{page: src.page}}
	reg := metrics.New(nil)
	defer reg.Close()
	res, err := syncPass(t, a, reg, "idem")
	if err != nil || res.RejectsRetried != 1 {
		t.Fatalf("pass with SP-API's getOrder down: %+v, %v", res, err)
	}
	if err := pool.QueryRow(ctx, `SELECT attempts FROM sync_rejects WHERE reject_key = '202-0000009-0000009'`).Scan(&attempts); err != nil || attempts != 1 {
		t.Fatalf("attempts %d after an outage, want 1 (%v)", attempts, err)
	}
}

func (l *lifecycleLog) ItemsCancelled(context.Context, string, []CancelledItem) error { return nil }
