package app_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

// startTime is when a FetchAndSeal attempt started, and on which worker.
type startTime struct {
	at       time.Time
	identity string
}

// sealStarts returns the start of each FetchAndSeal attempt of an order.
func (s *stack) sealStarts(ctx context.Context, orderID string) []startTime {
	s.t.Helper()
	var out []startTime
	scheduled := map[int64]bool{}
	for _, ev := range s.events(ctx, workflows.OrderWorkflowID(orderID)) {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "FetchAndSeal" {
				scheduled[ev.GetEventId()] = true
				if q := ev.GetActivityTaskScheduledEventAttributes().GetTaskQueue().GetName(); q != s.app.SPAPIQueues()[0].Name {
					s.t.Fatalf("FetchAndSeal of %s was scheduled on %s, want %s", orderID, q, s.app.SPAPIQueues()[0].Name)
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if scheduled[a.GetScheduledEventId()] {
				out = append(out, startTime{ev.GetEventTime().AsTime(), a.GetIdentity()})
			}
		}
	}
	return out
}

// Issue 8: Amazon's rate limits hold for all workers together. Two workers
// (two apps, as two processes would be) poll the same queues; each has its own
// client-side limiter with a burst of 30, so alone they would seal a dozen
// orders at once. The SP-API task queue dispatches FetchAndSeal at getOrder's
// rate (here 0.5/s x 4 = 2/s) for both together.
func TestTwoWorkersTogetherKeepTheGetOrderRate(t *testing.T) {
	const speedup, orders = 4, 14
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["DPP_SPAPI_SANDBOX_SPEEDUP"] = "4"
	})
	ctx := s.ctx()
	// The stack's app again, with a worker identity of its own, and another.
	s.stop()
	s.app = s.startApp("worker-a")
	other := s.startApp("worker-b")
	defer other.Close()
	w1, w2 := s.app.NewWorker(), other.NewWorker()
	s.must(w1.Start(), "start worker a")
	defer w1.Stop()
	s.must(w2.Start(), "start worker b")
	defer w2.Stop()

	rate := s.app.SPAPIQueues()[0].ActivitiesPerSecond
	if rate != 0.5*speedup {
		t.Fatalf("FetchAndSeal queue rate %v, want %v", rate, 0.5*speedup)
	}
	ids := s.sandbox.Generate(orders)
	for _, id := range ids {
		started, err := s.app.StartOrder(ctx, id)
		s.must(err, "start %s", id)
		if !started {
			t.Fatalf("%s already started", id)
		}
	}
	var starts []startTime
	for _, id := range ids {
		s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
		starts = append(starts, s.sealStarts(ctx, id)...)
	}
	slices.SortFunc(starts, func(a, b startTime) int { return a.at.Compare(b.at) })
	by := map[string]int{}
	for _, st := range starts {
		by[st.identity]++
	}
	elapsed := starts[len(starts)-1].at.Sub(starts[0].at)
	t.Logf("%d FetchAndSeal starts in %s by %v", len(starts), elapsed, by)
	// The server's limiter lets a few tasks through at once (a burst per queue
	// partition, at most 4 here); after that the starts are spaced by the rate.
	const burst = 4
	if min := time.Duration(float64(len(starts)-burst) / rate * float64(time.Second)); elapsed < min {
		t.Fatalf("%d FetchAndSeal starts in %s: faster than %v/s (at least %s)", len(starts), elapsed, rate, min)
	}
}

// startApp builds another app from the stack's settings whose Temporal client
// has the given identity (it shows on the activities it starts).
func (s *stack) startApp(identity string) *app.App {
	s.t.Helper()
	env := maps.Clone(s.env)
	cfg, err := config.Load(func(k string) string { return env[k] })
	s.must(err, "config")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{Logger: zap.NewNop(), TemporalClientOptions: func(o *client.Options) { o.Identity = identity }})
	s.must(err, "app %s", identity)
	return a
}
