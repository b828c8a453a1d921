package workflows

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestReplaySavedCodecHistories replays histories recorded with the payload codec
// (every payload and failure message encrypted under the test KMS key), decoding
// them with the codec as the worker does. They are saved by
// `DPP_SAVE_HISTORIES=1 go test ./internal/app` into testdata/codec/; local-kms is
// seeded with fixed key material (internal/testenv), so they decode in every run.
func TestReplaySavedCodecHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "codec", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 saved codec histories in testdata/codec/, found %d", len(files))
	}
	// A local-kms of our own, seeded with the test key: an external one named by
	// DPP_TEST_KMS_ENDPOINT would not hold the key these histories were sealed under.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kms, err := testenv.StartKMS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kms.Stop)
	kc, err := kms.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kc, codec.Options{KeyID: testenv.KMSKeyID})
	if err != nil {
		t.Fatal(err)
	}
	dc, fc := c.Converters()
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
			start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
			if in := start.GetInput().GetPayloads(); len(in) == 0 || !codec.IsEncrypted(in[0]) {
				t.Fatal("the saved history's input is not encrypted: it was not recorded with the codec")
			}
			id := "replay"
			if start.GetWorkflowType().GetName() == OrderLifecycleName {
				var in OrderInput
				if err := dc.FromPayloads(start.GetInput(), &in); err != nil {
					t.Fatal(err)
				}
				id = OrderWorkflowID(in.AmazonOrderID)
			}
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: dc, FailureConverter: fc,
				Interceptors: []interceptor.WorkerInterceptor{c.WorkerInterceptor()},
			})
			if err != nil {
				t.Fatal(err)
			}
			Register(replayer)
			if err := replayer.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: id, RunID: "replay-run"},
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
