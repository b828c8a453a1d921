// Package alerts keeps the alerts raised when a promise of the policy slips
// in PostgreSQL (table alerts): a condition is raised once, announced once,
// and cleared (and announced as cleared) once it no longer holds. A condition
// that comes back after it cleared is a new alert.
package alerts

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
)

// Alert kinds: the first segment of an alert's key, and the kind label of
// the dpp_alerts_open metric.
const (
	KindScheduleFailed   = "schedule-failed"    // /<scheduleId>: its latest run failed, timed out or was terminated
	KindScheduleSkipped  = "schedule-skipped"   // /<scheduleId>: it skipped runs (overlap, missed catch-up) or is paused
	KindSyncLag          = "sync-lag"           // OrderSync's watermark is older than DPP_ALERT_SYNC_LAG
	KindPurgeOverdue     = "purge-overdue"      // an order's PII is past its purge due time
	KindTaxRecordOverdue = "tax-record-overdue" // a VAT invoice is past its retention
	KindDeadlineNear     = "deadline-near"      // /<workflowId>: a review, offboarding or duty deadline within DPP_ALERT_DEADLINE_WARNING
	KindDeadlinePassed   = "deadline-passed"    // /<workflowId>: that deadline passed and the workflow still runs
	KindIncidentClock    = "incident-clock"     // /<workflowId>: an incident's notification deadline is near
	KindIncidentOverdue  = "incident-overdue"   // /<workflowId>: an incident's notification deadline passed
	KindEvidenceChain    = "evidence-chain"     // the evidence chain fails verification
)

// Kinds lists every kind (the metric has a series for each).
var Kinds = []string{KindScheduleFailed, KindScheduleSkipped, KindSyncLag, KindPurgeOverdue, KindTaxRecordOverdue,
	KindDeadlineNear, KindDeadlinePassed, KindIncidentClock, KindIncidentOverdue, KindEvidenceChain}

// Condition is one alert condition that holds now.
type Condition struct {
	// Key is <kind> or <kind>/<id> (ids only, never personal data).
	Key string `json:"key"`
	// Text is the Slack message (ids and counts only).
	Text   string         `json:"text"`
	Detail map[string]any `json:"detail,omitempty"`
}

// Kind is the condition's kind.
func (c Condition) Kind() string { k, _, _ := strings.Cut(c.Key, "/"); return k }

// Alert is a stored alert.
type Alert struct {
	ID        int64      `json:"id"`
	Key       string     `json:"key"`
	Kind      string     `json:"kind"`
	Text      string     `json:"text"`
	RaisedAt  time.Time  `json:"raisedAt"`
	ClearedAt *time.Time `json:"clearedAt,omitempty"`
	// Notify says which announcement is still owed: "raised" or "cleared".
	Notify string `json:"notify,omitempty"`
}

// Store reads and writes alerts.
type Store struct {
	Pool *pgxpool.Pool
	Now  func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Reconcile makes the open alerts of the checked kinds match active, in one
// transaction: a new condition is raised, an open alert whose condition no
// longer holds is cleared. Kinds not in checked (a check that could not run)
// are left as they are. It returns every alert whose announcement is owed,
// including ones a previous, interrupted check left unannounced.
func (s *Store) Reconcile(ctx context.Context, active []Condition, checked []string) ([]Alert, error) {
	now := s.now()
	var owed []Alert
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		keys := make([]string, 0, len(active))
		for _, c := range active {
			if !slices.Contains(checked, c.Kind()) {
				continue
			}
			keys = append(keys, c.Key)
			detail, err := json.Marshal(map[string]any{"text": c.Text, "detail": c.Detail})
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO alerts (key, kind, detail, raised_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key) WHERE cleared_at IS NULL DO NOTHING`, c.Key, c.Kind(), detail, now); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE alerts SET cleared_at = $3 WHERE cleared_at IS NULL
			AND kind = ANY($1) AND NOT (key = ANY($2))`, checked, keys, now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, key, kind, detail->>'text', raised_at, cleared_at,
			CASE WHEN raise_notified_at IS NULL THEN 'raised' ELSE 'cleared' END
			FROM alerts WHERE raise_notified_at IS NULL OR (cleared_at IS NOT NULL AND clear_notified_at IS NULL)
			ORDER BY id`)
		if err != nil {
			return err
		}
		owed, err = pgx.CollectRows(rows, scanAlert)
		return err
	})
	return owed, err
}

func scanAlert(row pgx.CollectableRow) (Alert, error) {
	var a Alert
	err := row.Scan(&a.ID, &a.Key, &a.Kind, &a.Text, &a.RaisedAt, &a.ClearedAt, &a.Notify)
	return a, err
}

// Notified records that the announcement went out. An alert raised and
// cleared before it was announced is announced as raised and then as cleared.
func (s *Store) Notified(ctx context.Context, a Alert, channel, ts string) error {
	if a.Notify == "raised" {
		_, err := s.Pool.Exec(ctx, `UPDATE alerts SET raise_notified_at = $2, slack_channel = $3, slack_ts = $4 WHERE id = $1`,
			a.ID, s.now(), channel, ts)
		return err
	}
	_, err := s.Pool.Exec(ctx, `UPDATE alerts SET clear_notified_at = $2 WHERE id = $1`, a.ID, s.now())
	return err
}

// Open lists the open alerts.
func (s *Store) Open(ctx context.Context) ([]Alert, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, key, kind, detail->>'text', raised_at, cleared_at, ''
		FROM alerts WHERE cleared_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAlert)
}

// OpenByKind counts the open alerts of each kind (every kind listed).
func (s *Store) OpenByKind(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, k := range Kinds {
		out[k] = 0
	}
	rows, err := s.Pool.Query(ctx, `SELECT kind, count(*) FROM alerts WHERE cleared_at IS NULL GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Counter stores value under key and returns the value stored before (and
// whether there was one): the check compares cumulative counters this way.
func (s *Store) Counter(ctx context.Context, key string, value int64) (prev int64, existed bool, err error) {
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT value FROM alert_counters WHERE key = $1 FOR UPDATE`, key).Scan(&prev)
		switch {
		case err == nil:
			existed = true
		case err != pgx.ErrNoRows:
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO alert_counters (key, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`, key, value, s.now())
		return err
	})
	return prev, existed, err
}

// Checkpoint is how far a verifier has found the evidence chain good.
type Checkpoint struct {
	Seq            int64
	Hash           []byte
	VerifiedAt     time.Time
	FullVerifiedAt time.Time
}

// checkpoint returns the named checkpoint, nil when there is none yet.
func (s *Store) checkpoint(ctx context.Context, name string) (*Checkpoint, error) {
	var cp Checkpoint
	err := s.Pool.QueryRow(ctx, `SELECT seq, hash, verified_at, full_verified_at FROM evidence_checkpoints WHERE name = $1`,
		name).Scan(&cp.Seq, &cp.Hash, &cp.VerifiedAt, &cp.FullVerifiedAt)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cp, nil
}

// saveCheckpoint records head as verified at now (and the run as full).
func (s *Store) saveCheckpoint(ctx context.Context, name string, head evidence.Head, now time.Time, full bool) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO evidence_checkpoints (name, seq, hash, verified_at, full_verified_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, verified_at = EXCLUDED.verified_at,
			full_verified_at = CASE WHEN $5 THEN EXCLUDED.full_verified_at ELSE evidence_checkpoints.full_verified_at END`,
		name, head.Seq, head.Hash, now, full)
	return err
}
