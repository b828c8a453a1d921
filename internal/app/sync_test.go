package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

// recordingLifecycles stands in for Temporal so a test can count what OrderSync
// asks for, and make a start fail part-way through.
type recordingLifecycles struct {
	mu        sync.Mutex
	started   map[string]int
	delivered map[string]int
	cancelled map[string]int
	failAfter int // fail the start after this many successful ones (0: never)
}

func newRecorder() *recordingLifecycles {
	return &recordingLifecycles{started: map[string]int{}, delivered: map[string]int{}, cancelled: map[string]int{}}
}

func (r *recordingLifecycles) Start(_ context.Context, id string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAfter > 0 && len(r.started) >= r.failAfter {
		return false, errors.New("temporal unavailable")
	}
	r.started[id]++
	return r.started[id] == 1, nil
}

func (r *recordingLifecycles) Delivered(_ context.Context, id string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered[id]++
	return nil
}

func (r *recordingLifecycles) Cancelled(_ context.Context, id, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancelled[id]++
	return nil
}

func syncOnce(t *testing.T, acts *activities.Sync) (*activities.SyncResult, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	acts.Register(env)
	v, err := env.ExecuteActivity(acts.SyncOrders, activities.SyncOrdersInput{Name: "test"})
	if err != nil {
		return nil, err
	}
	var res activities.SyncResult
	return &res, v.Get(&res)
}

// searchable waits until a search started now covers every update stamped up to
// now: OrderSync searches up to a whole second that has already ended (SP-API's
// times are whole seconds), so updates of this second are for the pass after next
// second.
func searchable() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}

// pastWatermark waits until a pass started now also puts updates stamped before
// now behind its watermark, so the pass after it leaves them out.
func pastWatermark() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2 * time.Second)))
}

func TestSyncWatermarkNeverSkipsAnOrder(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	ids := s.sandbox.Generate(250) // three pages of 100
	searchable()
	rec := newRecorder()
	acts := s.app.SyncActivities()
	acts.Lifecycles = rec

	// A failure part-way through the second page: the watermark must not move.
	rec.failAfter = 150
	if _, err := syncOnce(t, acts); err == nil {
		t.Fatal("sync should have failed")
	}
	var n int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM sync_state`).Scan(&n), "count")
	if n != 0 {
		t.Fatal("the watermark moved although the search was not handled completely")
	}
	rec.failAfter = 0
	res, err := syncOnce(t, acts)
	s.must(err, "sync after the failure")
	if res.Pages != 3 || res.Seen != 250 || res.Started != 100 || res.AlreadyStarted != 150 {
		t.Fatalf("after retry: %+v", res)
	}
	for _, id := range ids {
		if rec.started[id] == 0 {
			t.Fatalf("order %s was skipped", id)
		}
	}

	// New orders after the watermark, and an update to an order already purged.
	// SP-API takes times to the second, so the next search starts at the
	// watermark's second: wait for the next one to see only what is new.
	var stored time.Time
	s.must(s.app.Pool.QueryRow(ctx, `SELECT watermark FROM sync_state WHERE name = 'test'`).Scan(&stored), "watermark")
	if !stored.Equal(res.Watermark.Truncate(time.Microsecond)) {
		t.Fatalf("stored watermark %s, reported %s", stored, res.Watermark)
	}
	time.Sleep(time.Until(res.Watermark.Truncate(time.Second).Add(time.Second)))
	purged := ids[0]
	_, err = s.app.LifecycleActivities().FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: purged})
	s.must(err, "seal")
	_, err = s.app.LifecycleActivities().PurgeOrder(ctx, activities.PurgeInput{AmazonOrderID: purged, Reason: "purge-now"})
	s.must(err, "purge")
	s.must(s.sandbox.Cancel(purged), "cancel")
	fresh := s.sandbox.Generate(10)
	searchable()
	res, err = syncOnce(t, acts)
	s.must(err, "third sync")
	// SP-API takes times to the second, so orders of the watermark's second are
	// seen again: harmless, since starts are idempotent.
	if res.Started != 10 || res.SkippedPurged != 1 || res.AlreadyStarted != res.Seen-11 || rec.cancelled[purged] != 0 {
		t.Fatalf("third sync: %+v (cancel signals to the purged order: %d)", res, rec.cancelled[purged])
	}
	for _, id := range fresh {
		if rec.started[id] != 1 {
			t.Fatalf("new order %s started %d times", id, rec.started[id])
		}
	}

	// A cancellation is reported once, though the next search sees the order again.
	s.must(s.sandbox.Cancel(fresh[0]), "cancel")
	searchable()
	for pass := 0; pass < 2; pass++ {
		_, err = syncOnce(t, acts)
		s.must(err, "sync pass %d after the cancellation", pass)
	}
	if rec.cancelled[fresh[0]] != 1 {
		t.Fatalf("cancellation reported %d times", rec.cancelled[fresh[0]])
	}
}

func TestSetupIsIdempotent(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	for i := 0; i < 2; i++ {
		report, err := s.app.Setup(ctx)
		s.must(err, "setup run %d", i+1)
		if len(report) != 1+len(workflows.Schedules) {
			t.Fatalf("report %v", report)
		}
	}
	desc, err := s.app.Temporal.ScheduleClient().GetHandle(ctx, "order-sync").Describe(ctx)
	s.must(err, "describe schedule")
	if got := desc.Schedule.Spec.Intervals[0].Every; got != s.app.Config.SyncInterval {
		t.Fatalf("order-sync every %s, want %s", got, s.app.Config.SyncInterval)
	}
	s.must(s.app.Temporal.ScheduleClient().GetHandle(ctx, "order-sync").Delete(ctx), "delete")
	s.must(s.app.Temporal.ScheduleClient().GetHandle(ctx, "tax-record-sweep").Delete(ctx), "delete")
	audit, err := s.app.Temporal.ScheduleClient().GetHandle(ctx, "retention-audit").Describe(ctx)
	s.must(err, "describe retention-audit")
	if action, ok := audit.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || action.Workflow != "RetentionAudit" {
		t.Fatalf("retention-audit action %+v", audit.Schedule.Action)
	}
	if spec := audit.Schedule.Spec; spec.TimeZoneName != "Europe/London" || len(spec.Calendars) != 1 ||
		spec.Calendars[0].Hour[0].Start != 3 || spec.Calendars[0].Minute[0].Start != 30 {
		t.Fatalf("retention-audit spec %+v: want daily at 03:30 Europe/London", spec)
	}
	s.must(s.app.Temporal.ScheduleClient().GetHandle(ctx, "retention-audit").Delete(ctx), "delete")
	// key-epochs runs at every epoch's start, DPP_KEY_EPOCH apart.
	epochs, err := s.app.Temporal.ScheduleClient().GetHandle(ctx, workflows.KeyEpochsScheduleID).Describe(ctx)
	s.must(err, "describe key-epochs")
	if got := epochs.Schedule.Spec.Intervals[0].Every; got != s.app.Config.KeyEpoch {
		t.Fatalf("key-epochs every %s, want %s", got, s.app.Config.KeyEpoch)
	}
	s.must(s.app.Temporal.ScheduleClient().GetHandle(ctx, workflows.KeyEpochsScheduleID).Delete(ctx), "delete")
	review, err := s.app.Temporal.ScheduleClient().GetHandle(ctx, "access-review").Describe(ctx)
	s.must(err, "describe access-review")
	if action, ok := review.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || action.Workflow != "AccessReview" {
		t.Fatalf("access-review action %+v", review.Schedule.Action)
	}
	if spec := review.Schedule.Spec; spec.TimeZoneName != "Europe/London" || len(spec.Calendars) != 1 ||
		spec.Calendars[0].Hour[0].Start != 9 || len(spec.Calendars[0].Month) != 4 || spec.Calendars[0].DayOfMonth[0].Start != 1 {
		t.Fatalf("access-review spec %+v: want quarterly at 09:00 Europe/London on the 1st", spec)
	}
	s.must(s.app.Temporal.ScheduleClient().GetHandle(ctx, "access-review").Delete(ctx), "delete")
}

// syncRejects reads what OrderSync recorded about malformed orders.
type rejectRow struct {
	key, id, reason string
	attempts        int
	resolved        bool
	resolution      string
}

func (s *stack) rejects(ctx context.Context) map[string]rejectRow {
	s.t.Helper()
	rows, err := s.app.Pool.Query(ctx, `SELECT reject_key, coalesce(amazon_order_id, ''), reason_code, attempts,
		resolved_at IS NOT NULL, coalesce(resolution, '') FROM sync_rejects`)
	s.must(err, "read sync_rejects")
	defer rows.Close()
	out := map[string]rejectRow{}
	for rows.Next() {
		var r rejectRow
		s.must(rows.Scan(&r.key, &r.id, &r.reason, &r.attempts, &r.resolved, &r.resolution), "scan")
		out[r.key] = r
	}
	s.must(rows.Err(), "rows")
	return out
}

// awaitMetric scrapes the worker's /metrics until the named series sum to want
// (the SDK's counters and gauges reach the registry within
// metrics.ReportInterval) and returns their sum.
func (s *stack) awaitMetric(name string, want float64) float64 {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec := httptest.NewRecorder()
		s.app.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			s.t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
		}
		total := 0.0
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
				v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				s.must(err, "metric line %q", line)
				total += v
			}
		}
		if total == want || time.Now().After(deadline) {
			return total
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *stack) workflowExists(ctx context.Context, orderID string) bool {
	s.t.Helper()
	_, err := s.app.Temporal.DescribeWorkflow(ctx, workflows.OrderWorkflowID(orderID), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false
	}
	s.must(err, "describe %s", orderID)
	return true
}

// Issue 7.2: one malformed order on a searchOrders page used to fail the whole
// page as non-retryable, so the watermark never moved and every later pass
// failed the same way. Now the good orders start, the watermark advances, and
// the bad one is recorded, counted and retried until Amazon serves it well.
func TestOneMalformedOrderNeverStallsOrderSync(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	ids := s.sandbox.Generate(5)
	bad := ids[2]
	s.must(s.sandbox.CorruptInSearch(bad, sandbox.CorruptBadTime), "corrupt in search")
	s.must(s.sandbox.CorruptOrder(bad, sandbox.CorruptBadTime), "corrupt in getOrder")
	// Order times are whole seconds: pass late enough that the watermark lies
	// after them and the next search leaves them out.
	pastWatermark()

	res := s.runSync(ctx)
	if res.Seen != 5 || res.Malformed != 1 || res.Started != 4 {
		t.Fatalf("first pass: %+v", res)
	}
	for _, id := range ids {
		if got := s.workflowExists(ctx, id); got != (id != bad) {
			t.Fatalf("order %s: lifecycle started %v", id, got)
		}
	}
	var watermark time.Time
	s.must(s.app.Pool.QueryRow(ctx, `SELECT watermark FROM sync_state WHERE name = 'order-sync'`).Scan(&watermark), "the watermark advanced")
	if !watermark.Equal(res.Watermark.Truncate(time.Microsecond)) {
		t.Fatalf("stored watermark %s, reported %s", watermark, res.Watermark)
	}
	rej := s.rejects(ctx)
	r, ok := rej[bad]
	if len(rej) != 1 || !ok || r.id != bad || r.resolved || r.attempts != 1 ||
		r.reason != "order.createdTime: not an RFC 3339 date-time" {
		t.Fatalf("recorded rejects: %+v", rej)
	}
	if n := s.awaitMetric("dpp_sync_malformed_orders_total", 1); n != 1 {
		t.Fatalf("dpp_sync_malformed_orders_total = %v, want 1", n)
	}
	if n := s.awaitMetric("dpp_sync_rejects_unresolved", 1); n != 1 {
		t.Fatalf("dpp_sync_rejects_unresolved = %v, want 1", n)
	}

	// The next pass no longer finds it by the watermark, but asks for it again: still bad.
	gets := s.sandbox.Requests(spapi.OpGetOrder)
	res = s.runSync(ctx)
	if res.Seen != 0 || res.RejectsRetried != 1 || res.RejectsResolved != 0 || s.workflowExists(ctx, bad) {
		t.Fatalf("second pass: %+v", res)
	}
	if s.sandbox.Requests(spapi.OpGetOrder) <= gets {
		t.Fatal("the malformed order was not asked for again")
	}
	if r := s.rejects(ctx)[bad]; r.attempts != 2 || r.resolved {
		t.Fatalf("after a failed retry: %+v", r)
	}

	// Amazon repairs it: the next pass starts its lifecycle and closes the record.
	s.must(s.sandbox.CorruptInSearch(bad, ""), "repair")
	s.must(s.sandbox.CorruptOrder(bad, ""), "repair")
	res = s.runSync(ctx)
	if res.RejectsRetried != 1 || res.RejectsResolved != 1 || res.Started != 1 || !s.workflowExists(ctx, bad) {
		t.Fatalf("third pass: %+v", res)
	}
	if r := s.rejects(ctx)[bad]; !r.resolved || r.resolution != "valid-on-retry" {
		t.Fatalf("after the repair: %+v", r)
	}
	if n := s.awaitMetric("dpp_sync_rejects_unresolved", 0); n != 0 {
		t.Fatalf("dpp_sync_rejects_unresolved = %v, want 0", n)
	}
	// A fourth pass has nothing left to retry.
	if res = s.runSync(ctx); res.RejectsRetried != 0 {
		t.Fatalf("fourth pass: %+v", res)
	}
	// Nothing of the malformed order's content reached logs or the database.
	s.assertNoPII("logs", []byte(s.logs.String()))
	s.assertNoPII("database", s.pgDump())
}

// Issue 7.3: DPP_SYNC_SETTLE was declared and validated but never read, so
// searches ran up to "now". Now it bounds the search through production wiring.
func TestSyncSettleBoundsTheSearch(t *testing.T) {
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) { env["DPP_SYNC_SETTLE"] = "1h" })
	ctx := s.ctx()
	if s.app.Config.SyncSettle != time.Hour || s.app.SyncActivities().Settle != time.Hour {
		t.Fatalf("DPP_SYNC_SETTLE=1h: config %s, activities %s", s.app.Config.SyncSettle, s.app.SyncActivities().Settle)
	}
	s.sandbox.Generate(3)
	searchable()
	before := time.Now().Add(-time.Hour)
	res := s.runSync(ctx)
	if res.Seen != 0 {
		t.Fatalf("orders younger than the settle time were searched: %+v", res)
	}
	if d := res.Watermark.Sub(before); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("watermark %s, want about now - 1h (%s)", res.Watermark, before)
	}
}

func (r *recordingLifecycles) ItemsCancelled(context.Context, string, []activities.CancelledItem) error {
	return nil
}
