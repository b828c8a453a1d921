package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
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

func syncOnce(t *testing.T, acts *activities.Activities) (*activities.SyncResult, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.SyncOrders, activities.SyncOrdersInput{Name: "test"})
	if err != nil {
		return nil, err
	}
	var res activities.SyncResult
	return &res, v.Get(&res)
}

func TestSyncWatermarkNeverSkipsAnOrder(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	ids := s.sandbox.Generate(250) // three pages of 100
	rec := newRecorder()
	acts := s.app.Activities()
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
	_, err = acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: purged})
	s.must(err, "seal")
	_, err = acts.PurgeOrder(ctx, activities.PurgeInput{AmazonOrderID: purged, Reason: "purge-now"})
	s.must(err, "purge")
	s.must(s.sandbox.Cancel(purged), "cancel")
	fresh := s.sandbox.Generate(10)
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
	// Order times are whole seconds: the next pass must fall in a later second
	// than the cancellation for its watermark to cover it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
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
		if len(report) != 4 {
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
	s.must(s.app.Temporal.ScheduleClient().GetHandle(ctx, "retention-audit").Delete(ctx), "delete")
}
