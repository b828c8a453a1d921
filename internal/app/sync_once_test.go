package app_test

import (
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

// OrderSync reports a delivery once per order, however many passes see it.
func TestOrderSyncReportsADeliveryOnce(t *testing.T) {
	s := newStack(t, func(env map[string]string, o *sandbox.Options) {
		o.DeliveryAfter = 24 * time.Hour
		o.LatestDeliveryAfter = 48 * time.Hour
		env["DPP_PII_RETENTION"] = "1h"
	})
	ctx := s.ctx()
	ids := s.sandbox.Generate(3)
	searchable()
	s.runSync(ctx)
	for _, id := range ids {
		s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
		s.must(s.sandbox.Deliver(id), "deliver")
	}
	// Passes a second apart, and again on the same second: each sees the deliveries
	// at the edge of its window at least once.
	for range 6 {
		s.runSync(ctx)
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // the next whole second
	}
	for _, id := range ids {
		n := 0
		for _, ev := range s.events(ctx, workflows.OrderWorkflowID(id)) {
			if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED &&
				ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == workflows.SignalDelivered {
				n++
			}
		}
		if n != 1 {
			t.Errorf("order %s got %d delivered signals, want 1", id, n)
		}
	}
}
