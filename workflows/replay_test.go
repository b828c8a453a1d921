package workflows

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestReplaySavedHistories replays histories saved from real runs, decoding them
// with the payload codec as the worker does: testdata/*.json were recorded before
// the codec (plain payloads decode to themselves), testdata/codec/*.json with it,
// under the test KMS key whose material local-kms is seeded with (internal/testenv).
// Regenerate them with `DPP_SAVE_HISTORIES=1 go test ./internal/app`. A change to a
// workflow that would break runs already open fails here: guard it with
// workflow.GetVersion instead.
func TestReplaySavedHistories(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs local-kms (-short skips it; `make test` runs it)")
	}
	plain, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	sealed, _ := filepath.Glob(filepath.Join("testdata", "codec", "*.json"))
	if len(plain) < 5 || len(sealed) < 5 {
		t.Fatalf("want at least 5 saved histories in testdata/ and in testdata/codec/, found %d and %d", len(plain), len(sealed))
	}
	c := replayCodec(t)
	covered := map[string]bool{}
	t.Cleanup(func() {
		// The saved histories must exercise every path a change could break.
		for _, path := range []string{
			"version " + versionUnchangedSignalKeepsTimer, "version " + versionRecordRetention, "version " + versionReasonCodes,
			"version " + versionUploadInvoice,
			"signal " + SignalCancelled, "signal " + SignalRefund, "continue-as-new", "delivery-promise timeout", "versions from sealed facts",
			// and every workflow type the worker registers.
			"type " + OrderLifecycleName, "type " + OrderSyncName, "type " + TaxRecordSweepName, "type " + RetentionAuditName,
			"type " + AccessReviewName, "type " + OffboardingName, "type " + IncidentNotificationName, "type " + KeyEpochsName,
			"type " + ComplianceCalendarName, "type " + ComplianceDutyName, "type " + AlertCheckName,
			"type " + AmazonDataSweepName, "type " + OrderNotificationsName, "type " + TaxDocumentUploadName,
		} {
			if !covered[path] {
				t.Errorf("no saved history covers %s: record one (DPP_SAVE_HISTORIES=1 go test ./internal/app) under a new name", path)
			}
		}
	})
	for _, f := range append(plain, sealed...) {
		t.Run(f, func(t *testing.T) {
			replayFile(t, f, filepath.Base(filepath.Dir(f)) == "codec", c, covered)
		})
	}
}

// replayCodec is the worker's payload codec over a local-kms of the test's own,
// seeded with the test key: an external one named by DPP_TEST_KMS_ENDPOINT would
// not hold the key the saved histories were sealed under.
func replayCodec(t *testing.T) *codec.Codec {
	t.Helper()
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
	return c
}

// replayFile replays the history in file f (JSON, as `temporal workflow show
// -o json` writes it) with the worker's codec c and registrations, and notes
// what it covers. wantEncrypted says whether its payloads must be sealed.
func replayFile(t *testing.T, f string, wantEncrypted bool, c *codec.Codec, covered map[string]bool) {
	t.Helper()
	dc, fc := c.Converters()
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
	in := start.GetInput().GetPayloads()
	if len(in) == 0 && start.GetWorkflowType().GetName() == OrderNotificationsName {
		// It takes no input: its first activity's input shows the sealing.
		for _, ev := range h.GetEvents() {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				in = a.GetInput().GetPayloads()
				break
			}
		}
	}
	if len(in) == 0 || codec.IsEncrypted(in[0]) != wantEncrypted {
		t.Fatalf("input encrypted: %v, want %v", len(in) > 0 && codec.IsEncrypted(in[0]), wantEncrypted)
	}
	// OrderLifecycle and IncidentNotification check their workflow ID against
	// their input, so replay under the ID the run had.
	id := "replay"
	switch start.GetWorkflowType().GetName() {
	case AccessReviewName, OffboardingName, ComplianceDutyName, TaxDocumentUploadName:
		// These check their ID too; the started event carries it.
		id = start.GetWorkflowId()
	case OrderLifecycleName:
		var in OrderInput
		if err := dc.FromPayloads(start.GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		id = OrderWorkflowID(in.AmazonOrderID)
	case IncidentNotificationName:
		var in IncidentInput
		if err := dc.FromPayloads(start.GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		id = IncidentWorkflowID(in.ID)
	}
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: dc, FailureConverter: fc,
		Interceptors: []interceptor.WorkerInterceptor{c.WorkerInterceptor()},
	})
	if err != nil {
		t.Fatal(err)
	}
	noteCoverage(t, h, dc, covered)
	covered["type "+start.GetWorkflowType().GetName()] = true
	// The saved histories ran FetchAndSeal and SyncOrders on the
	// workflow's queue; today they run on the SP-API queues, and replay
	// must not mind (it does not compare activity task queues).
	Register(replayer, Options{SPAPITaskQueue: TaskQueue + SPAPITaskQueueSuffix, SPAPISyncTaskQueue: TaskQueue + SPAPISyncTaskQueueSuffix})
	if err := replayer.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: id, RunID: "replay-run"},
	}); err != nil {
		t.Fatal(err)
	}
}

// noteCoverage records which paths a history exercises: version markers by
// change id, signals, continue-as-new, and an order whose wait for delivery
// ended at the promised date (no delivery report, no early purge).
func noteCoverage(t *testing.T, h *historypb.History, dc converter.DataConverter, covered map[string]bool) {
	t.Helper()
	signals := map[string]bool{}
	orderTimer := false
	versionMarkers, localActivities := 0, 0
	for _, ev := range h.GetEvents() {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			m := ev.GetMarkerRecordedEventAttributes()
			if m.GetMarkerName() == "LocalActivity" {
				localActivities++
			}
			if m.GetMarkerName() != "Version" {
				continue
			}
			versionMarkers++
			var id string
			if err := dc.FromPayloads(m.GetDetails()["change-id"], &id); err != nil {
				t.Fatalf("version marker: %v", err)
			}
			covered["version "+id] = true
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			name := ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()
			signals[name] = true
			covered["signal "+name] = true
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			covered["continue-as-new"] = true
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			orderTimer = true
		}
	}
	isOrder := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName() == OrderLifecycleName
	if isOrder && orderTimer && !signals[SignalDelivered] && !signals[SignalPurgeNow] && !signals[SignalCancelled] {
		covered["delivery-promise timeout"] = true
	}
	// A run sealed by current code records its retention changes without asking
	// workflow.GetVersion (lifecycle.hasChange): no version marker.
	if isOrder && localActivities > 0 && versionMarkers == 0 {
		covered["versions from sealed facts"] = true
	}
}
