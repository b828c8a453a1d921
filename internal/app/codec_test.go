package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

const codecToken = "test-codec-token-0123456789"

// events returns a workflow's whole history as stored.
func (s *stack) events(ctx context.Context, id string) []*historypb.HistoryEvent {
	s.t.Helper()
	var evs []*historypb.HistoryEvent
	it := s.app.Temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		s.must(err, "history of %s", id)
		evs = append(evs, ev)
	}
	return evs
}

// walk calls fn for every message nested in m (m included).
func walk(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				walk(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), fn)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walk(v.Message(), fn)
		}
		return true
	})
}

// payloadsAndFailures finds every payload and every failure in the events.
func payloadsAndFailures(evs []*historypb.HistoryEvent) ([]*commonpb.Payload, []*failurepb.Failure) {
	var ps []*commonpb.Payload
	var fs []*failurepb.Failure
	for _, ev := range evs {
		walk(ev.ProtoReflect(), func(m protoreflect.Message) {
			switch v := m.Interface().(type) {
			case *commonpb.Payload:
				ps = append(ps, v)
			case *failurepb.Failure:
				fs = append(fs, v)
			}
		})
	}
	return ps, fs
}

// codecCall posts payloads to the worker's codec endpoint as the Web UI does.
func codecCall(t *testing.T, base, op string, ps []*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/codec/"+op, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", testenv.TemporalForTest(t).Namespace)
	req.Header.Set("Authorization", "Bearer "+codecToken)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("POST /codec/%s: %d %s", op, res.StatusCode, b)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Payloads
}

// checkSealedHistory asserts that a workflow's stored history holds the marker
// nowhere, that every failure message and stack trace is encoded, and returns the
// plaintext the codec server decodes from it.
func (s *stack) checkSealedHistory(ctx context.Context, base, id string) string {
	s.t.Helper()
	s.assertNoPII("history of "+id, s.history(ctx, id))
	evs := s.events(ctx, id)
	ps, fs := payloadsAndFailures(evs)
	encrypted := 0
	for _, p := range ps {
		if codec.IsEncrypted(p) {
			encrypted++
		}
	}
	if encrypted == 0 {
		s.t.Fatalf("history of %s has no encrypted payload", id)
	}
	for _, f := range fs {
		if f.GetMessage() != "Encoded failure" || f.GetStackTrace() != "" || f.GetEncodedAttributes() == nil {
			s.t.Fatalf("history of %s holds a failure in plaintext: %q", id, f.GetMessage())
		}
	}
	var plain strings.Builder
	for _, p := range codecCall(s.t, base, "decode", ps) {
		if codec.IsEncrypted(p) {
			s.t.Fatal("the codec server left a payload encrypted")
		}
		plain.Write(p.GetData())
		plain.WriteByte('\n')
	}
	return plain.String()
}

// A test-only workflow whose activity fails with an error (and a stack trace)
// naming what it was given: the payload codec must hide both in the history.
func codecMarkerWorkflow(ctx workflow.Context, note string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	return workflow.ExecuteActivity(ctx, "CodecMarkerActivity", note).Get(ctx, nil)
}

func codecMarkerActivity(_ context.Context, note string) error {
	panic("cannot process " + note)
}

func TestHistoriesHoldNoPlaintextAndTheCodecServerRevealsIt(t *testing.T) {
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) { env["DPP_CODEC_TOKEN"] = codecToken })
	ctx := s.ctx()
	srv := httptest.NewServer(s.app.HTTPHandler())
	defer srv.Close()
	tq := s.app.Config.TaskQueue
	// Mounted on the worker's HTTP handler, the codec server wants its token.
	res, err := http.Post(srv.URL+"/codec/decode", "application/json", strings.NewReader(`{"payloads":[]}`))
	s.must(err, "POST /codec/decode")
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /codec/decode without a token: %d, want 401", res.StatusCode)
	}

	// 1. A hand-started order whose input has an unknown field named like PII: it
	// fails at once with an error that lists the expected fields, not the bad name.
	ids := s.sandbox.Generate(3)
	badID, heldID, corruptID := ids[0], ids[1], ids[2]
	run, err := s.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.OrderWorkflowID(badID), TaskQueue: tq},
		workflows.OrderLifecycleName, map[string]string{"amazonOrderId": badID, "buyer " + marker: "Jane " + marker})
	s.must(err, "start with a bad input")
	err = run.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrInvalidInput || strings.Contains(err.Error(), marker) ||
		!strings.Contains(err.Error(), `the fields are: "amazonOrderId"`) {
		t.Fatalf("want an InvalidInput failure listing the fields and not echoing the bad name, got %v", err)
	}

	// 2. Signals with the marker: an accepted legal hold and a rejected one.
	_, err = s.app.StartOrder(ctx, heldID)
	s.must(err, "start")
	s.waitStage(ctx, heldID, workflows.StageAwaitingDelivery)
	wid := workflows.OrderWorkflowID(heldID)
	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalLegalHold,
		map[string]string{"reason": "dispute", "by": "dpo", "note": "complaint by Jane " + marker}), "hold")
	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalLegalHold,
		map[string]string{"reason": "x", "by": "dpo", "note " + marker: "x"}), "bad hold")
	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalDelivered,
		map[string]string{"deliveredAt": time.Now().UTC().Format(time.RFC3339)}), "delivered")
	s.waitStage(ctx, heldID, workflows.StageOnHold)
	for st := s.status(ctx, heldID); len(st.RejectedSignals) == 0; st = s.status(ctx, heldID) {
		select {
		case <-ctx.Done():
			t.Fatal("the bad legal hold was never rejected")
		case <-time.After(50 * time.Millisecond):
		}
	}
	st := s.status(ctx, heldID)
	if len(st.Holds) != 1 || st.Holds[0].Reason != workflows.HoldDispute || !strings.Contains(st.RejectedSignals[0].Error, "unknown field") {
		t.Fatalf("status %+v", st)
	}
	if b, _ := json.Marshal(st); strings.Contains(string(b), marker) {
		t.Fatalf("the status query shows the hold's note: %s", b)
	}

	// 3. A failing activity of a real workflow: SP-API returns a malformed order.
	s.must(s.sandbox.CorruptOrder(corruptID, sandbox.CorruptBadTime), "corrupt")
	_, err = s.app.StartOrder(ctx, corruptID)
	s.must(err, "start corrupt")
	err = s.app.Temporal.GetWorkflow(ctx, workflows.OrderWorkflowID(corruptID), "").Get(ctx, nil)
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrInvalidOrder {
		t.Fatalf("want InvalidOrder, got %v", err)
	}
	corruptMessage := appErr.Message()
	// Our own workflows and activities log nothing personal, whatever they were sent.
	s.assertNoPII("logs", []byte(s.logs.String()))

	// 4. A failing activity whose error and stack trace name the marker.
	w := worker.New(s.app.Temporal, tq+"-marker", worker.Options{})
	w.RegisterWorkflowWithOptions(codecMarkerWorkflow, workflow.RegisterOptions{Name: "CodecMarkerWorkflow"})
	w.RegisterActivityWithOptions(codecMarkerActivity, activity.RegisterOptions{Name: "CodecMarkerActivity"})
	s.must(w.Start(), "start marker worker")
	defer w.Stop()
	run, err = s.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "codec-marker-" + tq, TaskQueue: tq + "-marker"},
		"CodecMarkerWorkflow", "Jane "+marker)
	s.must(err, "start marker workflow")
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "cannot process Jane "+marker) {
		t.Fatalf("want the activity's error, got %v", err)
	}

	// Stored: no marker, no failure message. Through the codec server: all of it.
	for _, tc := range []struct{ id, want string }{
		{workflows.OrderWorkflowID(badID), "Jane " + marker},
		{wid, "complaint by Jane " + marker},
		{workflows.OrderWorkflowID(corruptID), mustJSONString(t, corruptMessage)},
		{"codec-marker-" + tq, "cannot process Jane " + marker},
	} {
		plain := s.checkSealedHistory(ctx, srv.URL, tc.id)
		if !strings.Contains(plain, tc.want) {
			t.Errorf("decoded history of %s lacks %q:\n%s", tc.id, tc.want, plain)
		}
	}
	if !strings.Contains(s.checkSealedHistory(ctx, srv.URL, "codec-marker-"+tq), "codecMarkerActivity") {
		t.Error("the decoded history lacks the activity's stack trace")
	}

	// The temporal CLI shows the history decoded only with the codec endpoint and token.
	cli := func(args ...string) string {
		tmp := testenv.TemporalForTest(t)
		args = append(args, "--address", tmp.Address, "--namespace", tmp.Namespace)
		out, err := exec.Command(filepath.Join("..", "..", "bin", "temporal"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	show := []string{"workflow", "show", "--workflow-id", wid, "--output", "json"}
	if out := payloadData(t, cli(show...)); strings.Contains(out, marker) {
		t.Fatal("temporal workflow show without the codec shows the marker")
	}
	withCodec := []string{"--codec-endpoint", srv.URL + "/codec", "--codec-auth", "Bearer " + codecToken}
	if out := payloadData(t, cli(append(show, withCodec...)...)); !strings.Contains(out, "complaint by Jane "+marker) {
		t.Fatalf("temporal workflow show with the codec does not decode:\n%s", out)
	}
	query := []string{"workflow", "query", "--workflow-id", wid, "--name", workflows.QueryStatus}
	// The status shows the hold's reason code, never its note.
	if out := cli(query...); strings.Contains(out, marker) || strings.Contains(out, `"reason":"dispute"`) {
		t.Fatalf("temporal workflow query without the codec shows the answer:\n%s", out)
	}
	if out := cli(append(query, withCodec...)...); !strings.Contains(out, `"reason":"dispute"`) || strings.Contains(out, marker) {
		t.Fatalf("temporal workflow query with the codec does not decode, or shows the note:\n%s", out)
	}
	// --codec-endpoint also encodes --input: an operator's start is sealed too.
	cliID := s.sandbox.Generate(1)[0]
	cli("workflow", "start", "--task-queue", tq, "--type", workflows.OrderLifecycleName, "--workflow-id", workflows.OrderWorkflowID(cliID),
		"--input", fmt.Sprintf(`{"amazonOrderId": %q}`, cliID), "--memo", `note="`+marker+`"`,
		"--codec-endpoint", srv.URL+"/codec", "--codec-auth", "Bearer "+codecToken)
	s.waitStage(ctx, cliID, workflows.StageAwaitingDelivery)
	s.checkSealedHistory(ctx, srv.URL, workflows.OrderWorkflowID(cliID))
}

// payloadData base64-decodes every "data" field of the temporal CLI's JSON output.
func payloadData(t *testing.T, out string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("temporal CLI output is not JSON: %v\n%s", err, out)
	}
	var b strings.Builder
	var visit func(any)
	visit = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "data" {
					d, _ := base64.StdEncoding.DecodeString(s)
					b.Write(d)
					b.WriteByte('\n')
				}
				visit(x)
			}
		case []any:
			for _, x := range v {
				visit(x)
			}
		}
	}
	visit(v)
	return b.String()
}

func mustJSONString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(string(b), `"`)
}

// keyARN returns the ARN of a key of the shared local-kms.
func keyARN(t *testing.T, c *kms.Client, id string) string {
	t.Helper()
	out, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func TestCodecKeyRotationKeepsOldPayloadsDecoding(t *testing.T) {
	k := testenv.KMSForTest(t)
	kc, err := k.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	created, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("codec key B")})
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := keyARN(t, kc, k.KeyID), aws.ToString(created.KeyMetadata.Arn)

	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	_, err = s.app.StartOrder(ctx, id)
	s.must(err, "start")
	s.waitStage(ctx, id, workflows.StageAwaitingDelivery)

	// Rotate: the worker restarts encoding under key B; the open order continues
	// from payloads sealed under key A.
	s.stop()
	s.env["DPP_CODEC_KMS_KEY_ID"] = keyB
	s.start()
	s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.OrderWorkflowID(id), "", workflows.SignalPurgeNow,
		map[string]string{"reason": "operator-correction", "by": "tester"}), "purge-now")
	if res := s.await(ctx, id); res.PurgeReason != workflows.PurgeReasonPurgeNow {
		t.Fatalf("result %+v", res)
	}
	seen := map[string]int{}
	ps, _ := payloadsAndFailures(s.events(ctx, workflows.OrderWorkflowID(id)))
	for _, p := range ps {
		if codec.IsEncrypted(p) {
			seen[codec.KeyIDOf(p)]++
		}
	}
	if seen[keyA] == 0 || seen[keyB] == 0 || len(seen) != 2 {
		t.Fatalf("payloads per KMS key: %v; want some under %s and some under %s", seen, keyA, keyB)
	}
}

// kmsProxy stands between the worker and local-kms; down makes KMS unreachable.
type kmsProxy struct {
	*httptest.Server
	down atomic.Bool
}

func newKMSProxy(t *testing.T, target string) *kmsProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &kmsProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			w.Header().Set("X-Amzn-ErrorType", "ServiceUnavailableException")
			http.Error(w, `{"__type":"ServiceUnavailableException","message":"KMS outage (test)"}`, http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// awaitWorkflowTaskFailures waits until the workflow's task has failed at least
// twice (it is being retried) and checks the workflow is still running.
func (s *stack) awaitWorkflowTaskFailures(ctx context.Context, id string) {
	s.t.Helper()
	for {
		desc, err := s.app.Temporal.DescribeWorkflow(ctx, id, "")
		s.must(err, "describe")
		d := desc.RawResponse
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			s.t.Fatalf("workflow %s is %s during the KMS outage", id, st)
		}
		if d.GetPendingWorkflowTask().GetAttempt() >= 2 {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("workflow task of %s never failed (a dropped signal, or a decode error that failed nothing?)", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestKMSOutageWhileDecodingFailsWorkflowTasksNotWorkflows(t *testing.T) {
	k := testenv.KMSForTest(t)
	proxy := newKMSProxy(t, k.Endpoint)
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) { env["AWS_ENDPOINT_URL_KMS"] = proxy.URL })
	ctx := s.ctx()

	// Other processes (an operator's starter, the temporal CLI through a codec
	// server) encode with data keys of their own, which the worker has never seen.
	newClient := func() client.Client {
		kc, err := k.Client(ctx)
		s.must(err, "kms client")
		c, err := codec.New(kc, codec.Options{KeyID: k.KeyID})
		s.must(err, "codec")
		dc, fc := c.Converters()
		tmp := testenv.TemporalForTest(t)
		cl, err := client.Dial(client.Options{HostPort: tmp.Address, Namespace: tmp.Namespace, DataConverter: dc,
			FailureConverter: fc, Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
		s.must(err, "dial")
		t.Cleanup(cl.Close)
		return cl
	}
	id := s.sandbox.Generate(1)[0]
	wid := workflows.OrderWorkflowID(id)

	// KMS down while the worker first decodes the workflow's input.
	proxy.down.Store(true)
	_, err := newClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: s.app.Config.TaskQueue},
		workflows.OrderLifecycleName, map[string]string{"amazonOrderId": id})
	s.must(err, "start")
	s.awaitWorkflowTaskFailures(ctx, wid)
	proxy.down.Store(false)
	s.waitStage(ctx, id, workflows.StageAwaitingDelivery)

	// KMS down while a legal hold arrives: the signal must not be lost.
	proxy.down.Store(true)
	s.must(newClient().SignalWorkflow(ctx, wid, "", workflows.SignalLegalHold,
		map[string]string{"reason": "tax-enquiry", "by": "dpo"}), "hold")
	s.awaitWorkflowTaskFailures(ctx, wid)
	proxy.down.Store(false)
	for st := s.status(ctx, id); len(st.Holds) == 0; st = s.status(ctx, id) {
		select {
		case <-ctx.Done():
			t.Fatal("the legal hold sent during the KMS outage was lost")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if st := s.status(ctx, id); !st.OnHold || st.Holds[0].Reason != workflows.HoldTaxEnquiry || len(st.RejectedSignals) != 0 {
		t.Fatalf("status %+v", st)
	}
	failedTasks := 0
	for _, ev := range s.events(ctx, wid) {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			failedTasks++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			t.Fatalf("the workflow ended: %v", ev.GetEventType())
		}
	}
	if failedTasks < 2 {
		t.Fatalf("%d workflow task failures recorded, want one per outage", failedTasks)
	}
	if os.Getenv("DPP_SAVE_HISTORIES") != "" {
		s.saveHistory(ctx, wid, "order_lifecycle_kms_outage.json")
	}
}
