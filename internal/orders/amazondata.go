package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/evidence"
)

// KindAmazonDataDeletion is the evidence kind of the certificate of an order's
// non-PII Amazon Information deleted after DPP_AMAZON_DATA_RETENTION. It is not
// KindCertificate, which stays the one certificate of an order's PII purge.
const KindAmazonDataDeletion = "certificate-amazon-data-deletion"

// KindSyncRejectsDeletion is the evidence kind of one sweep's deletion of old,
// resolved sync rejects.
const KindSyncRejectsDeletion = "sync-rejects-deletion"

// SweepAmazonData deletes up to limit orders' non-PII Amazon Information
// (the facts: items and totals) once the order's PII is purged and it was
// bought more than olderThan ago, each in its own transaction with its
// certificate; the order row stays, emptied, as the tombstone that keeps the
// order from being fetched again. Orders on legal hold are left. Resolved sync
// rejects last seen more than olderThan ago are deleted too, with one evidence
// entry. Idempotent: a swept order is never swept again.
func (s *Service) SweepAmazonData(ctx context.Context, olderThan time.Duration, limit int) (int, bool, error) {
	if olderThan <= 0 {
		return 0, false, errors.New("orders: amazon data sweep: retention must be positive")
	}
	swept := 0
	for swept < limit {
		done, err := s.sweepOneOrderFacts(ctx, olderThan)
		if err != nil {
			return swept, true, err
		}
		if !done {
			break
		}
		swept++
	}
	if err := s.sweepSyncRejects(ctx, olderThan); err != nil {
		return swept, true, err
	}
	var more bool
	err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE facts_swept_at IS NULL
		AND purged_at IS NOT NULL AND NOT on_hold AND purchased_at <= $1)`, s.now().Add(-olderThan)).Scan(&more)
	return swept, more, err
}

func (s *Service) sweepOneOrderFacts(ctx context.Context, olderThan time.Duration) (bool, error) {
	found := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		now := s.now()
		var orderID string
		var purchased time.Time
		err := tx.QueryRow(ctx, `SELECT amazon_order_id, purchased_at FROM orders WHERE facts_swept_at IS NULL
			AND purged_at IS NOT NULL AND NOT on_hold AND purchased_at <= $1
			ORDER BY purchased_at LIMIT 1 FOR UPDATE SKIP LOCKED`, now.Add(-olderThan)).Scan(&orderID, &purchased)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if _, err := tx.Exec(ctx, `UPDATE orders SET facts = '{}'::jsonb, facts_swept_at = $2 WHERE amazon_order_id = $1`,
			orderID, now); err != nil {
			return err
		}
		cert := s.certificate(now, orderID, "orders/"+orderID+"/facts", "order facts: items and totals, no PII",
			"The order's facts (items, quantities, prices, totals) were deleted from the live database; the row keeps only the order id, marketplace and dates, as the tombstone that stops the order being fetched again.",
			fmt.Sprintf("Reason: non-PII Amazon Information kept for %s after purchase (%s), the policy's limit. Copies in WAL and backups expire with them.",
				olderThan, purchased.UTC().Format(time.RFC3339)))
		cert.Sanitization.MethodType, cert.Sanitization.MethodUsed = evidence.MethodTypeClear, "Logical deletion"
		cert.Sanitization.VerificationMethod = "Within the deleting transaction, the row's facts are empty."
		_, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: KindAmazonDataDeletion, Subject: orderID,
			IdempotencyKey: KindAmazonDataDeletion + "/" + orderID, Body: cert}, now)
		return err
	})
	return found, err
}

func (s *Service) sweepSyncRejects(ctx context.Context, olderThan time.Duration) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		now := s.now()
		rows, err := tx.Query(ctx, `DELETE FROM sync_rejects WHERE resolved_at IS NOT NULL AND last_seen_at <= $1
			RETURNING reject_key`, now.Add(-olderThan))
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(keys) == 0 {
			return err
		}
		sweep := now.Format(time.RFC3339Nano)
		_, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: KindSyncRejectsDeletion, Subject: "sync-rejects",
			IdempotencyKey: KindSyncRejectsDeletion + "/" + sweep,
			Body:           map[string]any{"deleted": len(keys), "rejectKeys": keys, "olderThan": olderThan.String(), "at": now}}, now)
		return err
	})
}
