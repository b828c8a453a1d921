package app_test

import (
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/workflows"
)

// An Update answers the operator with the order's status, or refuses before
// anything is recorded: the history holds the accepted update only.
func TestLegalHoldByUpdateAnswersAndARefusalLeavesNoTrace(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	wid := workflows.OrderWorkflowID(id)
	update := func(name string, payload map[string]string) (workflows.OrderStatus, error) {
		h, err := s.app.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: name,
			Args: []any{payload}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			return workflows.OrderStatus{}, err
		}
		var st workflows.OrderStatus
		return st, h.Get(ctx, &st)
	}

	_, err := update(workflows.UpdateLegalHold, map[string]string{"reason": "claim by jane@example.com", "by": "dpo"})
	if err == nil || !strings.Contains(err.Error(), `"reason" must be one of`) || strings.Contains(err.Error(), "jane") {
		t.Fatalf("free-text reason: %v", err)
	}
	st, err := update(workflows.UpdateLegalHold, map[string]string{"reason": "litigation", "by": "dpo"})
	s.must(err, "legal hold")
	if !st.OnHold || st.Holds[0].Reason != workflows.HoldLitigation {
		t.Fatalf("answer %+v", st)
	}
	accepted, rejected := 0, 0
	for _, ev := range s.events(ctx, wid) {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			accepted++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
			rejected++
		}
	}
	if accepted != 1 || rejected != 0 {
		t.Fatalf("history holds %d accepted and %d rejected updates; want the accepted one only", accepted, rejected)
	}
	if st := s.status(ctx, id); len(st.RejectedSignals) != 0 {
		t.Fatalf("a refused update was recorded as a rejected signal: %+v", st.RejectedSignals)
	}
}
