package alerts_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/alerts"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// fakeTemporal stands in for the schedule and visibility answers; the
// database and Slack are real.
type fakeTemporal struct {
	schedules map[string]alerts.ScheduleState
	deadlines []alerts.Deadline
}

func (f *fakeTemporal) Schedule(_ context.Context, id string) (alerts.ScheduleState, error) {
	return f.schedules[id], nil
}

func (f *fakeTemporal) Deadlines(_ context.Context, before time.Time) ([]alerts.Deadline, error) {
	var out []alerts.Deadline
	for _, d := range f.deadlines {
		if d.Deadline.Before(before) {
			out = append(out, d)
		}
	}
	return out, nil
}

const channel = "C0DPO"

// Each alert is raised and announced once however often the check runs, and
// cleared (and announced as resolved) once when its condition no longer
// holds; a failed announcement is sent by the next check.
func TestEachAlertRaisedOnceAndCleared(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t)
	admin, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	worker, err := pgxpool.New(ctx, testenv.AsRole(t, dsn, store.WorkerRole))
	require.NoError(t, err)
	t.Cleanup(worker.Close)
	sl := testenv.StartSlack(t)

	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tmp := &fakeTemporal{schedules: map[string]alerts.ScheduleState{
		"order-sync": {LastActionAt: now.Add(-time.Minute)},
	}}
	x := &activities.Alerts{Slack: slackapp.NewMessenger("xoxb-test", sl.APIURL()), Channel: channel,
		Checker: &alerts.Checker{Store: &alerts.Store{Pool: worker, Now: func() time.Time { return now }}, Temporal: tmp,
			Limits: alerts.Thresholds{SyncLag: 30 * time.Minute, DeadlineWarning: 24 * time.Hour,
				PurgeGrace: time.Hour, TaxGrace: 48 * time.Hour}}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	x.Register(env)
	run := func() (*activities.CheckAlertsResult, error) {
		v, err := env.ExecuteActivity(x.CheckAlerts, activities.CheckAlertsInput{Schedules: []string{"order-sync", "tax-record-sweep"}})
		if err != nil {
			return nil, err
		}
		var res activities.CheckAlertsResult
		return &res, v.Get(&res)
	}
	check := func(raised, cleared int) {
		t.Helper()
		res, err := run()
		require.NoError(t, err)
		require.Equal(t, raised, res.Raised, "raised")
		require.Equal(t, cleared, res.Cleared, "cleared")
	}
	check(0, 0)

	// Every condition at once.
	_, err = admin.Exec(ctx, `INSERT INTO sync_state (name, watermark) VALUES ('orders', $1)`, now.Add(-2*time.Hour))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `INSERT INTO orders (amazon_order_id, marketplace_id, purchased_at, is_business, currency, facts, purge_due_at)
		VALUES ('205-1111111-1111111', 'A1F83G8C2ARO7P', $1, false, 'GBP', '{}', $2)`, now.Add(-60*24*time.Hour), now.Add(-2*time.Hour))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `INSERT INTO data_keys (key_ref, amazon_order_id, purpose, kms_key_id, wrapped_key)
		VALUES ('tax-record/205-1111111-1111111', '205-1111111-1111111', 'tax-record', 'test-key', '\x00')`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `INSERT INTO invoices (series, number, invoice_number, amazon_order_id, kind, issued_at, tax_point,
		currency, total_net, total_vat, total_gross, retain_until, key_ref, pdf_sealed)
		VALUES ('INV', 1, 'INV-000001', '205-1111111-1111111', 'simplified', $1, $1, 'GBP', 100, 20, 120, $2,
		'tax-record/205-1111111-1111111', '\x00')`, now.Add(-7*365*24*time.Hour), now.Add(-3*24*time.Hour))
	require.NoError(t, err)
	tmp.schedules["tax-record-sweep"] = alerts.ScheduleState{Paused: true}
	tmp.schedules["order-sync"] = alerts.ScheduleState{LastActionAt: now.Add(-time.Minute), LastRunFailed: true, LastWorkflowID: "order-sync-2026-12-01T11:59:00Z"}
	tmp.deadlines = []alerts.Deadline{
		{WorkflowID: "incident-20261201-abc123", WorkflowType: alerts.IncidentWorkflowType, Deadline: now.Add(3 * time.Hour)},
		{WorkflowID: "access-review-2026-Q4", WorkflowType: "AccessReview", Deadline: now.Add(-time.Hour)},
		{WorkflowID: "offboarding-p-17", WorkflowType: "Offboarding", Deadline: now.Add(48 * time.Hour)},
	}
	sl.FailNext("chat.postMessage", "ratelimited")
	res, err := run()
	require.NoError(t, err)
	require.Equal(t, 1, res.Unnotified)
	require.Equal(t, 6, res.Raised)
	check(1, 0) // the one owed from the failed post
	check(0, 0)
	check(0, 0)
	msgs := sl.Messages()
	require.Len(t, msgs, 7)
	var texts []string
	for _, m := range msgs {
		require.Equal(t, channel, m.Channel)
		texts = append(texts, m.Text)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"`sync-lag`", "`purge-overdue`", "205-1111111-1111111", "`tax-record-overdue`", "INV-000001",
		"`schedule-failed/order-sync`", "`schedule-skipped/tax-record-sweep`", "`incident-clock/incident-20261201-abc123`",
		"`deadline-passed/access-review-2026-Q4`"} {
		require.Contains(t, all, want)
	}
	require.NotContains(t, all, "offboarding-p-17", "a deadline two days away is not near")
	open, err := (&alerts.Store{Pool: worker}).OpenByKind(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, open[alerts.KindSyncLag])

	// Everything resolves.
	_, err = admin.Exec(ctx, `UPDATE sync_state SET watermark = $1`, now)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `UPDATE orders SET on_hold = true`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `UPDATE invoices SET retain_until = $1`, now.Add(time.Hour))
	require.NoError(t, err)
	// It ran again after the alert was raised.
	tmp.schedules["tax-record-sweep"] = alerts.ScheduleState{LastActionAt: now.Add(time.Minute)}
	tmp.schedules["order-sync"] = alerts.ScheduleState{LastActionAt: now}
	tmp.deadlines = nil
	check(0, 7)
	check(0, 0)
	require.Len(t, sl.Messages(), 14)
	require.Contains(t, sl.Messages()[13].Text, "Resolved")
	for _, m := range sl.Messages() {
		t.Log(m.Text)
	}

	// A condition that comes back is a new alert.
	_, err = admin.Exec(ctx, `UPDATE sync_state SET watermark = $1`, now.Add(-time.Hour))
	require.NoError(t, err)
	check(1, 0)
	check(0, 0)
}

// The chain alert verifies only what was appended after its checkpoint: a
// tampered entry after it is caught at the next check; one before it is not,
// until the daily full verification, which catches it.
func TestEvidenceChainCheckedFromItsCheckpoint(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t)
	admin, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	worker, err := pgxpool.New(ctx, testenv.AsRole(t, dsn, store.WorkerRole))
	require.NoError(t, err)
	t.Cleanup(worker.Close)
	v := testenv.VaultForTest(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, worker, v)
	require.NoError(t, err)
	appendN := func(first, last int) {
		t.Helper()
		for i := first; i <= last; i++ {
			require.NoError(t, pgx.BeginFunc(ctx, worker, func(tx pgx.Tx) error {
				_, _, err := evidence.Append(ctx, tx, signer, evidence.Entry{Kind: "test", Subject: "s",
					IdempotencyKey: fmt.Sprintf("test/%d", i), Body: map[string]any{"n": i}}, time.Now())
				return err
			}))
		}
	}
	tamper := func(seq int, n int) {
		t.Helper()
		for _, sql := range []string{`ALTER TABLE evidence_log DISABLE TRIGGER USER`,
			fmt.Sprintf(`UPDATE evidence_log SET body = '{"n":%d}' WHERE seq = %d`, n, seq),
			`ALTER TABLE evidence_log ENABLE TRIGGER USER`} {
			_, err := admin.Exec(ctx, sql)
			require.NoError(t, err)
		}
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	c := &alerts.Checker{Store: &alerts.Store{Pool: worker, Now: func() time.Time { return now }},
		Limits: alerts.Thresholds{SyncLag: time.Hour, DeadlineWarning: time.Hour}}
	chain := func(at time.Time) *alerts.Condition {
		t.Helper()
		now = at
		cs, err := c.Check(ctx, nil)
		require.NoError(t, err)
		for _, x := range cs {
			if x.Kind() == alerts.KindEvidenceChain {
				return &x
			}
		}
		return nil
	}
	checkpoint := func() (seq int64, full time.Time) {
		t.Helper()
		require.NoError(t, admin.QueryRow(ctx, `SELECT seq, full_verified_at FROM evidence_checkpoints WHERE name = 'alert-check'`).Scan(&seq, &full))
		return seq, full
	}

	appendN(1, 3)
	require.Nil(t, chain(t0), "the first check verifies the whole chain")
	seq, full := checkpoint()
	require.Equal(t, int64(3), seq)
	require.Equal(t, t0, full.UTC())

	// After the checkpoint: caught by the next (incremental) check.
	appendN(4, 5)
	tamper(5, 50)
	cond := chain(t0.Add(time.Hour))
	require.NotNil(t, cond)
	require.Equal(t, int64(5), cond.Detail["seq"])
	require.Equal(t, false, cond.Detail["full"])
	require.Contains(t, cond.Text, "since its last verified entry")
	seq, _ = checkpoint()
	require.Equal(t, int64(3), seq, "a break does not move the checkpoint")
	tamper(5, 5)
	require.Nil(t, chain(t0.Add(2*time.Hour)))
	seq, full = checkpoint()
	require.Equal(t, int64(5), seq)
	require.Equal(t, t0, full.UTC(), "an incremental run keeps the full run's time")

	// Before the checkpoint: the incremental check does not read it ...
	tamper(2, 20)
	require.Nil(t, chain(t0.Add(3*time.Hour)))
	// ... the daily full verification does.
	cond = chain(t0.Add(alerts.DefaultFullChainEvery))
	require.NotNil(t, cond)
	require.Equal(t, int64(2), cond.Detail["seq"])
	require.Equal(t, true, cond.Detail["full"])
	require.Contains(t, cond.Text, "full verification")

	tamper(2, 2)
	require.Nil(t, chain(t0.Add(25*time.Hour)))
	_, full = checkpoint()
	require.Equal(t, t0.Add(25*time.Hour), full.UTC())

	// The checkpoint's own entry rewritten is caught incrementally too.
	for _, sql := range []string{`ALTER TABLE evidence_log DISABLE TRIGGER USER`,
		`UPDATE evidence_log SET hash = '\x` + strings.Repeat("00", 32) + `' WHERE seq = 5`,
		`ALTER TABLE evidence_log ENABLE TRIGGER USER`} {
		_, err := admin.Exec(ctx, sql)
		require.NoError(t, err)
	}
	cond = chain(t0.Add(26 * time.Hour))
	require.NotNil(t, cond)
	require.Equal(t, int64(5), cond.Detail["seq"])
	require.Contains(t, cond.Text, "checkpoint")
}
