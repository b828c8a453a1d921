package app_test

import (
	"strings"
	"testing"

	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/plusranger/dpp/workflows"
)

// The Web UI tells an operator what an order waits for: the workflow's current
// details, and a summary on every activity and timer (ids and dates only).
func TestWebUIShowsWhatEachOrderWaitsFor(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	wid := workflows.OrderWorkflowID(id)

	// The query the Web UI asks for a workflow's details (the SDK answers it).
	v, err := s.app.Temporal.QueryWorkflow(ctx, wid, "", "__temporal_workflow_metadata")
	s.must(err, "metadata query")
	var md sdkpb.WorkflowMetadata
	s.must(v.Get(&md), "decode metadata")
	if d := md.GetCurrentDetails(); !strings.Contains(d, "**awaiting-delivery**: waiting for delivery, latest 20") ||
		!strings.Contains(d, "invoice INV-000001") {
		t.Fatalf("current details %q", d)
	}

	// Summaries are payloads too, encrypted by the codec like the rest.
	dc, _ := s.app.Codec.Converters()
	var summaries []string
	for _, ev := range s.events(ctx, wid) {
		if p := ev.GetUserMetadata().GetSummary(); p != nil {
			var text string
			s.must(dc.FromPayload(p, &text), "decode summary")
			summaries = append(summaries, text)
		}
	}
	all := strings.Join(summaries, "\n")
	for _, want := range []string{"fetch the order from SP-API and seal its PII", "issue the VAT invoice", "wait for delivery, latest 20"} {
		if !strings.Contains(all, want) {
			t.Errorf("no summary %q among:\n%s", want, all)
		}
	}
}
