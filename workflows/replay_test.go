package workflows

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplaySavedHistories replays histories saved from real runs (regenerate
// them with `DPP_SAVE_HISTORIES=1 go test ./internal/app`). A change to a
// workflow that would break runs already open fails here: guard it with
// workflow.GetVersion instead.
func TestReplaySavedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 saved histories in testdata/, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// OrderLifecycle checks its workflow ID against its input, so replay
			// under the ID the run had.
			id := "replay"
			start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
			if start.GetWorkflowType().GetName() == OrderLifecycleName {
				var in OrderInput
				if err := json.Unmarshal(start.GetInput().GetPayloads()[0].GetData(), &in); err != nil {
					t.Fatal(err)
				}
				id = OrderWorkflowID(in.AmazonOrderID)
			}
			replayer := worker.NewWorkflowReplayer()
			Register(replayer)
			if err := replayer.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: id, RunID: "replay-run"},
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
