package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/plusranger/dpp/internal/spapi"
)

// Metrics OrderSync reports through the SDK's activity metrics handler; they
// appear on the worker's /metrics with the SDK's labels (activity type, task
// queue, namespace), counters with _total appended (dpp_sync_malformed_orders_total).
const (
	// MetricMalformedOrders counts malformed orders met on searchOrders pages.
	MetricMalformedOrders = "dpp_sync_malformed_orders"
	// MetricRejectsResolved counts recorded malformed orders later found valid and handled.
	MetricRejectsResolved = "dpp_sync_rejects_resolved"
	// MetricRejectsUnresolved is the number of recorded malformed orders not yet
	// resolved, after each pass (those past the retry window included: they need
	// an operator).
	MetricRejectsUnresolved = "dpp_sync_rejects_unresolved"
)

// DefaultSyncRejectRetryFor is how long a malformed order is asked for again
// when Sync.RejectRetryFor is zero (DPP_SYNC_REJECT_RETRY_FOR).
const DefaultSyncRejectRetryFor = 7 * 24 * time.Hour

// maxRejectRetriesPerPass bounds the getOrder calls one pass spends on recorded
// malformed orders (getOrder allows 0.5/s with a burst of 30, shared with
// sealing); the least recently tried go first, so every one gets its turn.
const maxRejectRetriesPerPass = 20

// Resolutions of a recorded malformed order.
const (
	resolvedOnRetry  = "valid-on-retry"
	resolvedInSearch = "valid-in-search"
)

// rejectKey is a malformed order's key in sync_rejects: its order number, or
// its digest when it has no usable one.
func rejectKey(r spapi.RejectedOrder) string {
	if r.OrderID != "" {
		return r.OrderID
	}
	return "digest:" + r.Digest
}

// recordReject remembers a malformed order met on a search page (inSearch) or
// by a retry: logged (position, order number, digest, problem: never a value)
// and upserted, re-opening a record that was resolved before (a later update of
// the order came malformed: what it reports is still to be handled). Those met
// in a search are counted in MetricMalformedOrders. attempts counts the passes
// that found the order malformed: a page read again by a retried activity (the
// same pass, begun at passStart) changes nothing.
func (a *Sync) recordReject(ctx context.Context, name string, rej spapi.RejectedOrder, passStart, now time.Time, inSearch bool) error {
	var id *string
	if rej.OrderID != "" {
		id = &rej.OrderID
	}
	tag, err := a.Orders.Pool.Exec(ctx, `INSERT INTO sync_rejects
		(sync_name, reject_key, amazon_order_id, reason_code, first_seen_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (sync_name, reject_key) DO UPDATE SET
			reason_code = EXCLUDED.reason_code, last_seen_at = EXCLUDED.last_seen_at,
			attempts = sync_rejects.attempts + 1,
			first_seen_at = CASE WHEN sync_rejects.resolved_at IS NULL THEN sync_rejects.first_seen_at
				ELSE EXCLUDED.first_seen_at END,
			resolved_at = NULL, resolution = NULL
		WHERE sync_rejects.last_seen_at < $6 OR sync_rejects.resolved_at IS NOT NULL`,
		name, rejectKey(rej), id, rej.Problem, now, passStart)
	if err != nil {
		return fmt.Errorf("record malformed order at position %d: %w", rej.Index, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // recorded by this pass already
	}
	if !inSearch {
		activity.GetLogger(ctx).Info("Malformed order still malformed on retry", "amazonOrderId", rej.OrderID,
			"problem", rej.Problem)
		return nil
	}
	activity.GetMetricsHandler(ctx).Counter(MetricMalformedOrders).Inc(1)
	activity.GetLogger(ctx).Warn("Malformed order on a searchOrders page: recorded, the rest of the page goes on",
		"amazonOrderId", rej.OrderID, "position", rej.Index, "digest", rej.Digest, "problem", rej.Problem)
	return nil
}

// openRejects returns the order numbers of this sync's unresolved malformed
// orders, so that one served valid by the search closes its record.
func (a *Sync) openRejects(ctx context.Context, name string) (map[string]bool, error) {
	rows, err := a.Orders.Pool.Query(ctx, `SELECT amazon_order_id FROM sync_rejects
		WHERE sync_name = $1 AND resolved_at IS NULL AND amazon_order_id IS NOT NULL`, name)
	if err != nil {
		return nil, fmt.Errorf("read malformed orders: %w", err)
	}
	defer rows.Close()
	open := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read malformed orders: %w", err)
		}
		open[id] = true
	}
	return open, rows.Err()
}

func (a *Sync) resolveReject(ctx context.Context, name, id, how string, now time.Time) error {
	_, err := a.Orders.Pool.Exec(ctx, `UPDATE sync_rejects SET resolved_at = $3, resolution = $4
		WHERE sync_name = $1 AND reject_key = $2 AND resolved_at IS NULL`, name, id, now, how)
	if err != nil {
		return fmt.Errorf("resolve malformed order %s: %w", id, err)
	}
	activity.GetMetricsHandler(ctx).Counter(MetricRejectsResolved).Inc(1)
	activity.GetLogger(ctx).Info("Malformed order is valid now: handled", "amazonOrderId", id, "resolution", how)
	return nil
}

// retryRejects asks SP-API again (getOrder, the search's datasets only: no PII)
// for the malformed orders this pass has not met, within the retry window. A
// valid one is handled like a new order of the search (started, its delivery
// or cancellation reported) and its record closed; one still malformed, or
// unknown to Amazon, counts an attempt. A failure that may pass (throttling,
// an outage) ends the retries of this pass without failing it: the search is
// what must not stall.
func (a *Sync) retryRejects(ctx context.Context, name string, passStart time.Time, r *SyncResult) error {
	retryFor := a.RejectRetryFor
	if retryFor <= 0 {
		retryFor = DefaultSyncRejectRetryFor
	}
	rows, err := a.Orders.Pool.Query(ctx, `SELECT amazon_order_id FROM sync_rejects
		WHERE sync_name = $1 AND resolved_at IS NULL AND amazon_order_id IS NOT NULL
		  AND last_seen_at < $2 AND first_seen_at > $3
		ORDER BY last_seen_at LIMIT $4`, name, passStart, passStart.Add(-retryFor), maxRejectRetriesPerPass)
	if err != nil {
		return fmt.Errorf("read malformed orders to retry: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read malformed orders to retry: %w", err)
	}
	log := activity.GetLogger(ctx)
	for _, id := range ids {
		r.RejectsRetried++
		o, err := a.SPAPI.GetOrder(ctx, id, []string{spapi.IncludeFulfillment, spapi.IncludePackages})
		var respErr *spapi.ResponseError
		var apiErr *spapi.Error
		switch {
		case err == nil:
			if err := a.syncOrder(ctx, o, time.Time{}, r); err != nil {
				return err
			}
			r.RejectsResolved++
			if err := a.resolveReject(ctx, name, id, resolvedOnRetry, time.Now().UTC()); err != nil {
				return err
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &respErr):
			err = a.recordReject(ctx, name, spapi.RejectedOrder{Index: -1, OrderID: id, Problem: respErr.Problem}, passStart, time.Now().UTC(), false)
		case errors.As(err, &apiErr) && (apiErr.NotFound() || apiErr.StatusCode == 400):
			err = a.recordReject(ctx, name, spapi.RejectedOrder{Index: -1, OrderID: id,
				Problem: fmt.Sprintf("getOrder: HTTP %d %s", apiErr.StatusCode, apiErr.Code)}, passStart, time.Now().UTC(), false)
		default:
			log.Warn("Retrying malformed orders stopped for this pass", "amazonOrderId", id, "error", err)
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reportRejects sets the unresolved gauge, and warns of those past the retry
// window: only an operator (or a later update of the order that the search
// serves valid) closes them.
func (a *Sync) reportRejects(ctx context.Context, name string, now time.Time) {
	retryFor := a.RejectRetryFor
	if retryFor <= 0 {
		retryFor = DefaultSyncRejectRetryFor
	}
	var open, expired int
	err := a.Orders.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE amazon_order_id IS NULL OR first_seen_at <= $2)
		FROM sync_rejects WHERE sync_name = $1 AND resolved_at IS NULL`, name, now.Add(-retryFor)).Scan(&open, &expired)
	if err != nil {
		activity.GetLogger(ctx).Warn("Counting malformed orders failed", "error", err)
		return
	}
	activity.GetMetricsHandler(ctx).Gauge(MetricRejectsUnresolved).Update(float64(open))
	if expired > 0 {
		activity.GetLogger(ctx).Error("Malformed orders no longer retried need an operator (table sync_rejects)",
			"count", expired, "sync", name)
	}
}
