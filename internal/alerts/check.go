package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/evidence"
)

// Temporal is what the check asks Temporal (implemented over the client in
// internal/app, so this package needs no server in unit tests).
type Temporal interface {
	// Schedule describes a schedule; Missing when it does not exist.
	Schedule(ctx context.Context, id string) (ScheduleState, error)
	// Deadlines lists running workflows whose ComplianceDeadline is before
	// the given time.
	Deadlines(ctx context.Context, before time.Time) ([]Deadline, error)
}

// ScheduleState is what the check needs of a schedule.
type ScheduleState struct {
	Missing bool
	Paused  bool
	// Skipped counts the actions it skipped (overlap, missed catch-up window).
	Skipped int64
	// LastActionAt is when its latest run started; LastRunFailed says that run
	// failed, timed out or was terminated.
	LastActionAt   time.Time
	LastRunFailed  bool
	LastWorkflowID string
}

// Deadline is a running workflow's ComplianceDeadline.
type Deadline struct {
	WorkflowID   string
	WorkflowType string
	Deadline     time.Time
}

// Thresholds say when a condition holds.
type Thresholds struct {
	// SyncLag: OrderSync's watermark older than this (DPP_ALERT_SYNC_LAG).
	SyncLag time.Duration
	// DeadlineWarning: a deadline this close is near (DPP_ALERT_DEADLINE_WARNING).
	DeadlineWarning time.Duration
	// PurgeGrace and TaxGrace: how far past its due time a purge or a tax
	// record is overdue (the same as the dpp_purges_overdue and
	// dpp_tax_records_overdue gauges: an hour and two days).
	PurgeGrace, TaxGrace time.Duration
	// FullChainEvery: how often the evidence chain is verified whole rather
	// than from the checkpoint (0: DefaultFullChainEvery).
	FullChainEvery time.Duration
}

// DefaultGraces are the gauges' graces.
const (
	DefaultPurgeGrace = time.Hour
	DefaultTaxGrace   = 48 * time.Hour
)

// IncidentWorkflowType is the workflow whose deadlines are incident clocks.
const IncidentWorkflowType = "IncidentNotification"

// maxListed bounds the ids one alert's detail lists.
const maxListed = 20

// Checker evaluates every condition.
type Checker struct {
	Store    *Store
	Temporal Temporal
	Limits   Thresholds
}

// Check returns the conditions that hold now, for every kind (all are checked
// on each call; an error from any check fails the call, which is retried).
func (c *Checker) Check(ctx context.Context, schedules []string) ([]Condition, error) {
	now := c.Store.now()
	var out []Condition
	for _, check := range []func(context.Context, time.Time) ([]Condition, error){
		c.syncLag, c.purgeOverdue, c.taxOverdue, c.evidenceChain, c.deadlines,
		func(ctx context.Context, now time.Time) ([]Condition, error) { return c.schedules(ctx, now, schedules) },
	} {
		cs, err := check(ctx, now)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func (c *Checker) syncLag(ctx context.Context, now time.Time) ([]Condition, error) {
	var names []string
	var watermarks []time.Time
	rows, err := c.Store.Pool.Query(ctx, `SELECT name, watermark FROM sync_state WHERE watermark < $1 ORDER BY name`,
		now.Add(-c.Limits.SyncLag))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var n string
		var w time.Time
		if err := rows.Scan(&n, &w); err != nil {
			rows.Close()
			return nil, err
		}
		names, watermarks = append(names, n), append(watermarks, w)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	lag := now.Sub(watermarks[0]).Round(time.Second)
	return []Condition{{Key: KindSyncLag,
		Text:   fmt.Sprintf("OrderSync lags: its watermark is %s old (more than %s). Sync: %s.", lag, c.Limits.SyncLag, strings.Join(names, ", ")),
		Detail: map[string]any{"syncs": names, "lagSeconds": lag.Seconds()}}}, nil
}

// overdue lists up to maxListed ids and the count of rows a query finds.
func (c *Checker) overdue(ctx context.Context, query string, before time.Time) (int, []string, error) {
	rows, err := c.Store.Pool.Query(ctx, query, before)
	if err != nil {
		return 0, nil, err
	}
	var ids []string
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, nil, err
		}
		if n++; len(ids) < maxListed {
			ids = append(ids, id)
		}
	}
	return n, ids, rows.Err()
}

func (c *Checker) purgeOverdue(ctx context.Context, now time.Time) ([]Condition, error) {
	n, ids, err := c.overdue(ctx, `SELECT amazon_order_id FROM orders WHERE purged_at IS NULL AND NOT on_hold
		AND purge_due_at < $1 ORDER BY purge_due_at, amazon_order_id`, now.Add(-c.Limits.PurgeGrace))
	if err != nil || n == 0 {
		return nil, err
	}
	return []Condition{{Key: KindPurgeOverdue,
		Text:   fmt.Sprintf("%d order(s) are overdue for purge (more than %s past their purge due time): %s.", n, c.Limits.PurgeGrace, strings.Join(ids, ", ")),
		Detail: map[string]any{"count": n, "orders": ids}}}, nil
}

func (c *Checker) taxOverdue(ctx context.Context, now time.Time) ([]Condition, error) {
	before := now.Add(-c.Limits.TaxGrace)
	n, ids, err := c.overdue(ctx, `SELECT invoice_number FROM invoices WHERE purged_at IS NULL AND retain_until < $1
		ORDER BY retain_until, invoice_number`, before)
	if err != nil {
		return nil, err
	}
	// An order's credit notes share one key, erased with the last of them: they
	// are overdue once all of them are.
	cn, cnIDs, err := c.overdue(ctx, `SELECT credit_note_number FROM credit_notes WHERE purged_at IS NULL AND amazon_order_id IN (
		SELECT amazon_order_id FROM credit_notes WHERE purged_at IS NULL GROUP BY amazon_order_id HAVING max(retain_until) < $1)
		ORDER BY retain_until, credit_note_number`, before)
	if err != nil || n+cn == 0 {
		return nil, err
	}
	var listed []string
	detail := map[string]any{"count": n + cn}
	if n > 0 {
		listed = append(listed, "invoices "+strings.Join(ids, ", "))
		detail["invoices"] = ids
	}
	if cn > 0 {
		listed = append(listed, "credit notes "+strings.Join(cnIDs, ", "))
		detail["creditNotes"] = cnIDs
	}
	return []Condition{{Key: KindTaxRecordOverdue,
		Text:   fmt.Sprintf("%d tax record(s) are past their retention and not swept: %s.", n+cn, strings.Join(listed, "; ")),
		Detail: detail}}, nil
}

// DefaultFullChainEvery is how often the alert check verifies the whole
// evidence chain; between full runs it verifies only entries appended after
// its checkpoint.
const DefaultFullChainEvery = 24 * time.Hour

// chainCheckpoint names the alert check's row in evidence_checkpoints.
const chainCheckpoint = "alert-check"

func (c *Checker) evidenceChain(ctx context.Context, now time.Time) ([]Condition, error) {
	// The database's own keys: this catches a damaged or edited chain; an
	// auditor's check against pinned keys (`starter evidence verify`) also
	// catches a replaced key.
	cp, err := c.Store.checkpoint(ctx, chainCheckpoint)
	if err != nil {
		return nil, err
	}
	every := c.Limits.FullChainEvery
	if every <= 0 {
		every = DefaultFullChainEvery
	}
	full := cp == nil || now.Sub(cp.FullVerifiedAt) >= every
	var opts evidence.VerifyOptions
	if !full {
		opts.From = &evidence.Head{Seq: cp.Seq, Hash: cp.Hash}
	}
	rep, err := evidence.VerifyWith(ctx, c.Store.Pool, opts)
	if err != nil {
		return nil, err
	}
	if rep.OK() {
		// Only a good chain moves the checkpoint: a break stays in view until repaired.
		return nil, c.Store.saveCheckpoint(ctx, chainCheckpoint, rep.Head, now, full)
	}
	scope := "since its last verified entry"
	if full {
		scope = "in a full verification"
	}
	return []Condition{{Key: KindEvidenceChain,
		Text: fmt.Sprintf("The evidence chain fails verification (%s) at seq %d: %s. Run `starter evidence verify`.",
			scope, rep.FirstBroken.Seq, rep.FirstBroken.Reason),
		Detail: map[string]any{"seq": rep.FirstBroken.Seq, "reason": rep.FirstBroken.Reason, "full": full}}}, nil
}

func (c *Checker) deadlines(ctx context.Context, now time.Time) ([]Condition, error) {
	if c.Temporal == nil {
		return nil, nil
	}
	ds, err := c.Temporal.Deadlines(ctx, now.Add(c.Limits.DeadlineWarning))
	if err != nil {
		return nil, err
	}
	var out []Condition
	for _, d := range ds {
		passed := !d.Deadline.After(now)
		kind, what := KindDeadlineNear, "is near"
		switch {
		case d.WorkflowType == IncidentWorkflowType && passed:
			kind, what = KindIncidentOverdue, "has passed"
		case d.WorkflowType == IncidentWorkflowType:
			kind = KindIncidentClock
		case passed:
			kind, what = KindDeadlinePassed, "has passed"
		}
		out = append(out, Condition{Key: kind + "/" + d.WorkflowID,
			Text:   fmt.Sprintf("The deadline of %s %s %s: %s.", d.WorkflowType, d.WorkflowID, what, d.Deadline.UTC().Format(time.RFC3339)),
			Detail: map[string]any{"workflowId": d.WorkflowID, "workflowType": d.WorkflowType, "deadline": d.Deadline.UTC()}})
	}
	return out, nil
}

func (c *Checker) schedules(ctx context.Context, now time.Time, ids []string) ([]Condition, error) {
	if c.Temporal == nil {
		return nil, nil
	}
	var out []Condition
	for _, id := range ids {
		s, err := c.Temporal.Schedule(ctx, id)
		if err != nil {
			return nil, err
		}
		if s.Missing {
			out = append(out, Condition{Key: KindScheduleSkipped + "/" + id,
				Text: fmt.Sprintf("Schedule %s does not exist: its runs are all skipped. Run `starter setup`.", id)})
			continue
		}
		if s.LastRunFailed {
			out = append(out, Condition{Key: KindScheduleFailed + "/" + id,
				Text:   fmt.Sprintf("Schedule %s: its latest run %s failed, timed out or was terminated.", id, s.LastWorkflowID),
				Detail: map[string]any{"workflowId": s.LastWorkflowID}})
		}
		key := KindScheduleSkipped + "/" + id
		prev, existed, err := c.Store.Counter(ctx, key, s.Skipped)
		if err != nil {
			return nil, err
		}
		raisedAt, open, err := c.Store.openSince(ctx, key)
		if err != nil {
			return nil, err
		}
		// A skip stays an alert until the schedule has run again since.
		rose := existed && s.Skipped > prev
		if s.Paused || rose || (open && !s.LastActionAt.After(raisedAt)) {
			out = append(out, Condition{Key: key,
				Text:   fmt.Sprintf("Schedule %s skipped runs (paused: %v, skipped actions: %d).", id, s.Paused, s.Skipped),
				Detail: map[string]any{"paused": s.Paused, "skipped": s.Skipped}})
		}
	}
	return out, nil
}

// openSince is when the open alert of key was raised.
func (s *Store) openSince(ctx context.Context, key string) (time.Time, bool, error) {
	var t time.Time
	err := s.Pool.QueryRow(ctx, `SELECT raised_at FROM alerts WHERE key = $1 AND cleared_at IS NULL`, key).Scan(&t)
	if err == pgx.ErrNoRows {
		return t, false, nil
	}
	return t, err == nil, err
}
