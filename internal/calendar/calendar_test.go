package calendar_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/internal/vault"
)

func TestMain(m *testing.M) {
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

type fixture struct {
	admin, worker *pgxpool.Pool
	signer        *evidence.Signer
	vault         *vault.Vault
}

func setup(t *testing.T) fixture {
	t.Helper()
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
	return fixture{admin: admin, worker: worker, signer: signer, vault: v}
}

// A duty is opened once and completed once, as the worker's database role,
// with its report and a signed evidence entry in the same transaction; a
// completed rotation moves the next one's due time.
func TestDutyOpenedCompletedWithEvidence(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	svc := &calendar.Service{Pool: f.worker, Signer: f.signer, Now: func() time.Time { return now }}
	x := &activities.Calendar{Duties: svc, Policy: activities.CalendarPolicy{Window: 14 * 24 * time.Hour,
		OverdueEvery: 24 * time.Hour, LWAIssuedAt: time.Date(2026, 6, 4, 0, 0, 0, 0, time.UTC), LWARotateBefore: 30 * 24 * time.Hour}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	x.Register(env)

	plan := func(duty string, at time.Time) activities.DutyPlan {
		t.Helper()
		v, err := env.ExecuteActivity(x.PlanDuty, activities.PlanDutyInput{Duty: duty, Now: at})
		require.NoError(t, err)
		var p activities.DutyPlan
		require.NoError(t, v.Get(&p))
		return p
	}
	require.Equal(t, "2026", plan(calendar.RiskAssessment, now).Period)
	require.Equal(t, "2026-H2", plan(calendar.IncidentPlanReview, now).Period)
	require.Equal(t, "2026-12-01", plan(calendar.VulnerabilityScan, now).Period)
	lwa := plan(calendar.LWASecretRotation, now)
	require.Equal(t, "2026-06-04", lwa.Period)
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), lwa.DueAt, "180 days after issue")
	require.False(t, lwa.NotYet)
	require.True(t, plan(calendar.LWASecretRotation, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)).NotYet)

	scan := plan(calendar.VulnerabilityScan, now)
	for range 2 {
		require.NoError(t, svc.Open(ctx, scan.Duty, scan.Period, now, scan.DueAt))
	}
	report := []byte(`{"scanner":"trivy","findings":0}`)
	rep, err := svc.AttachReport(ctx, calendar.VulnerabilityScan, "trivy", "application/json", report)
	require.NoError(t, err)
	_, err = svc.AttachReport(ctx, calendar.VulnerabilityScan, "Jane Doe", "", report)
	require.ErrorContains(t, err, `field "source"`)
	require.NotContains(t, err.Error(), "Jane")
	open, err := svc.OpenOccurrence(ctx, calendar.VulnerabilityScan)
	require.NoError(t, err)
	require.Equal(t, "duty-vulnerability-scan-2026-12-01", open.WorkflowID)

	_, err = env.ExecuteActivity(x.CompleteDuty, calendar.Completion{Duty: scan.Duty, Period: scan.Period, By: "dpo", At: now,
		ReportSHA256: strings.Repeat("0", 64)})
	require.ErrorContains(t, err, "names no stored report")
	var seqs []int64
	for range 2 {
		o, err := svc.Complete(ctx, calendar.Completion{Duty: scan.Duty, Period: scan.Period, By: "trivy", At: now, ReportSHA256: rep.SHA256})
		require.NoError(t, err)
		seqs = append(seqs, o.EvidenceSeq)
	}
	require.NotZero(t, seqs[0])
	require.Equal(t, seqs[0], seqs[1], "completing twice appends once")
	recs, err := evidence.Get(ctx, f.worker, "duty-vulnerability-scan-2026-12-01", calendar.KindDutyCompleted)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Contains(t, string(recs[0].Body), rep.SHA256)
	_, err = svc.OpenOccurrence(ctx, calendar.VulnerabilityScan)
	require.ErrorIs(t, err, calendar.ErrNoOpenDuty)

	// The rotation, recorded, moves the next one: due 180 days after it.
	require.NoError(t, svc.Open(ctx, lwa.Duty, lwa.Period, now, lwa.DueAt))
	rotated := now.Add(-time.Hour)
	_, err = svc.Complete(ctx, calendar.Completion{Duty: lwa.Duty, Period: lwa.Period, By: "dpo", At: now, RotatedAt: &rotated})
	require.NoError(t, err)
	next := plan(calendar.LWASecretRotation, now)
	require.Equal(t, "2026-12-01", next.Period)
	require.Equal(t, rotated.Add(calendar.LWASecretLifetime), next.DueAt)
	require.True(t, next.NotYet)

	rep2, err := evidence.Verify(ctx, f.worker, nil)
	require.NoError(t, err)
	require.True(t, rep2.OK())
}

// Non-PII Amazon Information past the retention is emptied once the order's
// PII is purged, with a certificate each; held or recent orders are left.
func TestAmazonDataSweptWithCertificates(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	old := now.Add(-600 * 24 * time.Hour)
	for _, o := range []struct {
		id     string
		bought time.Time
		purged bool
		hold   bool
	}{
		{"205-0000000-0000001", old, true, false},
		{"205-0000000-0000002", old, true, true},
		{"205-0000000-0000003", old, false, false},
		{"205-0000000-0000004", now.Add(-100 * 24 * time.Hour), true, false},
	} {
		var purged *time.Time
		if o.purged {
			purged = &now
		}
		_, err := f.admin.Exec(ctx, `INSERT INTO orders (amazon_order_id, marketplace_id, purchased_at, is_business, currency, facts, purged_at, on_hold)
			VALUES ($1, 'A1F83G8C2ARO7P', $2, false, 'GBP', '{"items":[{"sku":"PR-BOOK-01"}]}', $3, $4)`, o.id, o.bought, purged, o.hold)
		require.NoError(t, err)
	}
	_, err := f.admin.Exec(ctx, `INSERT INTO sync_rejects (sync_name, reject_key, amazon_order_id, reason_code, first_seen_at, last_seen_at, resolved_at, resolution)
		VALUES ('orders', '205-0000000-0000009', '205-0000000-0000009', 'order.createdTime: bad', $1, $1, $1, 'valid-on-retry')`, old)
	require.NoError(t, err)
	svc := &orders.Service{Pool: f.worker, Vault: f.vault, Signer: f.signer, Now: func() time.Time { return now }}
	for i, want := range []int{1, 0} {
		n, more, err := svc.SweepAmazonData(ctx, 13140*time.Hour, 10)
		require.NoError(t, err)
		require.Equal(t, want, n, "sweep %d", i+1)
		require.False(t, more)
	}
	var swept []string
	rows, err := f.admin.Query(ctx, `SELECT amazon_order_id FROM orders WHERE facts = '{}' AND facts_swept_at IS NOT NULL`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		swept = append(swept, id)
	}
	require.Equal(t, []string{"205-0000000-0000001"}, swept)
	certs, err := evidence.Get(ctx, f.worker, "205-0000000-0000001", orders.KindAmazonDataDeletion)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	var rejects int
	require.NoError(t, f.admin.QueryRow(ctx, `SELECT count(*) FROM sync_rejects`).Scan(&rejects))
	require.Zero(t, rejects)
}
