package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
)

// DefaultSyncName names the watermark of the order-sync schedule.
const DefaultSyncName = "order-sync"

// Sync finds new and changed orders on SP-API and starts or signals their
// lifecycles (the order-sync schedule).
type Sync struct {
	Orders *orders.Service
	SPAPI  OrderSource
	// Lifecycles starts and signals order workflows.
	Lifecycles     OrderLifecycles
	MarketplaceIDs []string
	// Lookback is how far back the first pass searches (DPP_SYNC_LOOKBACK).
	Lookback time.Duration
	// Settle keeps searches this far behind now: Amazon wants
	// lastUpdatedBefore at least two minutes in the past. Zero omits it.
	Settle time.Duration
	// RejectRetryFor is how long a malformed order is asked for again on
	// every pass; zero means DefaultSyncRejectRetryFor.
	RejectRetryFor time.Duration
	// NotificationsOn says ORDER_CHANGE notifications are consumed
	// (DPP_ORDER_CHANGE_QUEUE_URL set): a lifecycle this sync has to start
	// itself is then one the notifications missed, counted in
	// MetricMissedByNotifications.
	NotificationsOn bool
	// Uploads starts the upload of a credit note this sync issues itself (an
	// order cancelled after its lifecycle ended) when UploadCreditNotes
	// (DPP_UPLOAD_INVOICES) is on.
	Uploads           TaxDocumentUploads
	UploadCreditNotes bool
}

// MetricMissedByNotifications counts orders OrderSync started that no
// ORDER_CHANGE notification had reported (dpp_sync_missed_by_notifications_total):
// with notifications on, it should stay zero.
const MetricMissedByNotifications = "dpp_sync_missed_by_notifications"

// Register registers the sync activity.
func (a *Sync) Register(r worker.ActivityRegistry) { r.RegisterActivityWithOptions(a, registerOptions) }

// OrderLifecycles starts and signals order workflows. It is implemented over the
// Temporal client where the workflow names are known (internal/app), since
// activities never import workflows.
type OrderLifecycles interface {
	// Start starts the order's lifecycle; started is false when it already ran or runs.
	Start(ctx context.Context, amazonOrderID string) (started bool, err error)
	// Delivered and Cancelled signal a running lifecycle; a finished one is left alone.
	Delivered(ctx context.Context, amazonOrderID string, at time.Time) error
	Cancelled(ctx context.Context, amazonOrderID, reason string) error
	// ItemsCancelled reports items cancelled on their own, the order going on:
	// a running lifecycle credits them (a refund per item) if they were invoiced.
	ItemsCancelled(ctx context.Context, amazonOrderID string, items []CancelledItem) error
}

// CancelledItem is an order item whose cancellation Amazon carried out.
type CancelledItem struct {
	OrderItemID string `json:"orderItemId"`
	Quantity    int64  `json:"quantity"`
}

// syncProgress is heartbeated after every page, so a retry resumes at the page
// it stopped on instead of starting over.
type syncProgress struct {
	// Started is when the pass began: malformed orders recorded since were met
	// by this pass and are not asked for again in it.
	Started   time.Time  `json:"started"`
	After     time.Time  `json:"after"`
	Before    *time.Time `json:"before,omitempty"`
	NextToken string     `json:"nextToken,omitempty"`
	Result    SyncResult `json:"result"`
}

// SyncOrders searches SP-API for orders updated since the watermark, starts an
// OrderLifecycle for each new one, and signals deliveries and cancellations. The
// watermark moves only after the whole search is handled; starts and signals
// are idempotent, so the overlap a retry causes is harmless.
//
// A malformed order (it cannot be decoded or fails validation) never stalls the
// sync: it is recorded in sync_rejects, counted and logged without PII, and the
// rest of its page is handled. Every later pass asks for it again (getOrder)
// for DPP_SYNC_REJECT_RETRY_FOR; once valid it is handled like any new order.
func (a *Sync) SyncOrders(ctx context.Context, in SyncOrdersInput) (*SyncResult, error) {
	name := in.Name
	if name == "" {
		name = DefaultSyncName
	}
	var p syncProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &p) == nil && !p.After.IsZero() {
		activity.GetLogger(ctx).Info("Resuming order sync", "after", p.After, "pages", p.Result.Pages)
	} else {
		after, err := a.watermark(ctx, name)
		if err != nil {
			return nil, err
		}
		p = syncProgress{Started: time.Now().UTC(), After: after}
		// SP-API's times are whole seconds and both bounds are inclusive, so the
		// pass asks for exactly what the watermark will say, a whole second that
		// has already ended: every update stamped with it or earlier happened
		// before the search, and a later pass can tell seen updates (at or before
		// the watermark) from new ones (after it) without guessing.
		before := time.Now().UTC().Add(-a.Settle - time.Second).Truncate(time.Second)
		p.Before = &before
	}
	// SP-API's searchOrders allows one request every three minutes after its burst,
	// so a page can wait in the rate limiter longer than the heartbeat timeout: keep
	// reporting the last finished page meanwhile, or Temporal would think us dead.
	var mu sync.Mutex
	last := p
	stopBeat := keepHeartbeating(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		activity.RecordHeartbeat(ctx, last)
	})
	defer stopBeat()
	if p.Started.IsZero() { // heartbeat details of a worker without this field
		p.Started = time.Now().UTC()
	}
	open, err := a.openRejects(ctx, name)
	if err != nil {
		return nil, err
	}
	for {
		params := spapi.SearchOrdersParams{LastUpdatedAfter: p.After, MarketplaceIDs: a.MarketplaceIDs,
			IncludedData: []string{spapi.IncludeFulfillment, spapi.IncludePackages, spapi.IncludeCancellation}, PaginationToken: p.NextToken}
		if p.Before != nil {
			params.LastUpdatedBefore = *p.Before
		}
		page, err := a.SPAPI.SearchOrders(ctx, params)
		if err != nil {
			return nil, classify(err)
		}
		if p.Before == nil {
			before := page.LastUpdatedBefore.Time
			if before.IsZero() {
				before = time.Now().UTC()
			}
			// Order times come in whole seconds: a watermark on a second boundary
			// tells exactly which orders a pass has seen (see syncOrder).
			before = before.Truncate(time.Second)
			p.Before = &before
		}
		rejected := page.Rejected
		for i := range page.Orders {
			o := &page.Orders[i]
			p.Result.Seen++
			if rej := spapi.CheckOrder(i, o); rej != nil {
				// SearchOrders validates already; this guards every other OrderSource.
				rejected = append(rejected, *rej)
				continue
			}
			handledBefore := p.After
			if open[o.OrderID] {
				// Its last update came malformed, so was never reported: report it now.
				handledBefore = time.Time{}
			}
			if err := a.syncOrder(ctx, o, handledBefore, &p.Result); err != nil {
				return nil, err
			}
			if open[o.OrderID] {
				if err := a.resolveReject(ctx, name, o.OrderID, resolvedInSearch, time.Now().UTC()); err != nil {
					return nil, err
				}
				delete(open, o.OrderID)
				p.Result.RejectsResolved++
			}
		}
		p.Result.Seen += len(page.Rejected)
		for _, rej := range rejected {
			p.Result.Malformed++
			if err := a.recordReject(ctx, name, rej, p.Started, time.Now().UTC(), true); err != nil {
				return nil, err
			}
		}
		p.Result.Pages++
		p.NextToken = page.NextToken()
		mu.Lock()
		last = p
		mu.Unlock()
		activity.RecordHeartbeat(ctx, p)
		if p.NextToken == "" {
			break
		}
	}
	if err := a.retryRejects(ctx, name, p.Started, &p.Result); err != nil {
		return nil, err
	}
	if err := a.setWatermark(ctx, name, *p.Before); err != nil {
		return nil, err
	}
	p.Result.Watermark = *p.Before
	a.reportRejects(ctx, name, time.Now().UTC())
	return &p.Result, nil
}

// syncOrder starts the order's lifecycle and reports its delivery or
// cancellation. handledBefore is the watermark the pass started from, on a whole
// second: an order updated before it was reported by an earlier pass (it can come
// back when the server's own bound fell later in that second); starting it again
// is a no-op, but signalling again would only lengthen its history.
//
// The order must be valid (spapi.CheckOrder). A zero handledBefore reports its
// delivery or cancellation whatever its time (a malformed order found valid).
func (a *Sync) syncOrder(ctx context.Context, o *spapi.Order, handledBefore time.Time, r *SyncResult) error {
	_, err := a.Orders.Facts(ctx, o.OrderID)
	if errors.Is(err, orders.ErrPurged) {
		// Never fetch the PII of an erased order again, whatever Amazon reports.
		r.SkippedPurged++
		if o.Cancelled() && o.LastUpdatedTime.After(handledBefore) {
			// Its lifecycle has ended: the cancellation's credit note comes from
			// the tax record, which needs no PII.
			cn, err := creditLateCancellation(ctx, a.Orders, o.OrderID)
			if cn == nil || err != nil {
				return err
			}
			r.CreditedAfterLifecycle++
			if a.UploadCreditNotes && a.Uploads != nil {
				// A failed start fails the pass: its retry finds the same note
				// (one per source) and starts the upload again.
				_, err = a.Uploads.Start(ctx, TaxDocumentInput{AmazonOrderID: o.OrderID, DocumentNumber: cn.Number,
					DocumentType: spapi.DocumentTypeCreditNote})
			}
			return err
		}
		return nil
	}
	if err != nil && !errors.Is(err, orders.ErrNotSealed) {
		return err
	}
	started, err := a.Lifecycles.Start(ctx, o.OrderID)
	if err != nil {
		return err
	}
	if started {
		r.Started++
		if err := a.countMissed(ctx, o.OrderID, r); err != nil {
			return err
		}
	} else {
		r.AlreadyStarted++
	}
	if !o.LastUpdatedTime.After(handledBefore) {
		r.AlreadyReported++
		return nil
	}
	if at, ok := o.DeliveredAt(); ok {
		if err := a.Lifecycles.Delivered(ctx, o.OrderID, at.UTC()); err != nil {
			return err
		}
		r.Delivered++
	}
	if o.Cancelled() {
		if err := a.Lifecycles.Cancelled(ctx, o.OrderID, CancelReasonOnAmazon); err != nil {
			return err
		}
		r.Cancelled++
		return nil
	}
	var items []CancelledItem
	for i := range o.OrderItems {
		if it := &o.OrderItems[i]; it.Cancelled() && it.Quantity() > 0 {
			items = append(items, CancelledItem{OrderItemID: it.OrderItemID, Quantity: int64(it.Quantity())})
		}
	}
	if len(items) > 0 {
		if err := a.Lifecycles.ItemsCancelled(ctx, o.OrderID, items); err != nil {
			return err
		}
		r.ItemsCancelled += len(items)
	}
	return nil
}

func (a *Sync) watermark(ctx context.Context, name string) (time.Time, error) {
	var w time.Time
	err := a.Orders.Pool.QueryRow(ctx, `SELECT watermark FROM sync_state WHERE name = $1`, name).Scan(&w)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Now().UTC().Add(-a.Lookback), nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read sync watermark %s: %w", name, err)
	}
	return w.UTC(), nil
}

func (a *Sync) setWatermark(ctx context.Context, name string, w time.Time) error {
	// GREATEST: a slow, older pass finishing late never moves the watermark back.
	_, err := a.Orders.Pool.Exec(ctx, `INSERT INTO sync_state (name, watermark) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET watermark = GREATEST(sync_state.watermark, EXCLUDED.watermark), updated_at = now()`, name, w)
	if err != nil {
		return fmt.Errorf("save sync watermark %s: %w", name, err)
	}
	return nil
}

// heartbeatEvery is well inside the sync activity's heartbeat timeout (1 min).
var heartbeatEvery = 15 * time.Second

// keepHeartbeating calls beat every heartbeatEvery until the returned stop is called.
func keepHeartbeating(ctx context.Context, beat func()) (stop func()) {
	return keepHeartbeatingEvery(ctx, heartbeatEvery, beat)
}

// keepHeartbeatingEvery calls beat every interval until the returned stop is called.
func keepHeartbeatingEvery(ctx context.Context, every time.Duration, beat func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	return func() { close(done) }
}

// countMissed counts an order this pass had to start as missed by the
// notifications, unless a notification reported it (its lifecycle may have
// ended since).
func (a *Sync) countMissed(ctx context.Context, orderID string, r *SyncResult) error {
	if !a.NotificationsOn {
		return nil
	}
	seen, err := NotifiedOrders(ctx, a.Orders, []string{orderID})
	if err != nil {
		return err
	}
	if !seen[orderID] {
		r.MissedByNotifications++
		activity.GetMetricsHandler(ctx).Counter(MetricMissedByNotifications).Inc(1)
	}
	return nil
}
