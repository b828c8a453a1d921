package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/taxupload"
	"github.com/plusranger/dpp/workflows"
)

// uploadsOn turns invoice uploads on, with an invoice series of the test's own:
// upload workflow IDs (tax-document-upload-<invoice number>) are unique per
// Temporal namespace, which the tests share, while each test's database numbers
// its invoices from 1.
func uploadsOn(env map[string]string, _ *sandbox.Options) {
	env["DPP_UPLOAD_INVOICES"] = "true"
	series := fmt.Sprintf("%X", time.Now().UnixNano()&0xffffffffff)
	env["DPP_INVOICE_SERIES"] = "U" + series
	env["DPP_CREDIT_NOTE_SERIES"] = "C" + series
}

// uploadResult waits for an invoice's TaxDocumentUpload run to finish.
func (s *stack) uploadResult(ctx context.Context, number string) workflows.TaxDocumentUploadStatus {
	s.t.Helper()
	var st workflows.TaxDocumentUploadStatus
	s.must(s.app.Temporal.GetWorkflow(ctx, workflows.TaxDocumentUploadWorkflowID(number), "").Get(ctx, &st), "upload of %s", number)
	return st
}

// logJSON logs an upload's status the way `starter invoice upload -wait` prints it.
func logJSON(t *testing.T, what string, st workflows.TaxDocumentUploadStatus) {
	t.Helper()
	b, _ := json.MarshalIndent(st, "", "  ")
	t.Logf("%s:\n%s", what, b)
}

func (s *stack) historyEvents(ctx context.Context, wid string) []*historypb.HistoryEvent {
	s.t.Helper()
	var evs []*historypb.HistoryEvent
	it := s.app.Temporal.GetWorkflowHistory(ctx, wid, "", false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		s.must(err, "history of %s", wid)
		evs = append(evs, ev)
	}
	return evs
}

// The VAT invoice goes to Amazon: accepted at once; after a transient
// rejection (Amazon's internal error) on the second submission; rejected for
// good (a bad invoice number), then accepted after an operator's re-run
// (`starter invoice upload`, app.UploadInvoice). Each document's feeds are
// counted in the sandbox, its state and evidence checked in the database, and
// no buyer PII reaches the feed options, the histories or the logs.
func TestInvoicesAreUploadedToAmazon(t *testing.T) {
	s := newStack(t, uploadsOn)
	ctx := s.ctx()
	ids := s.sandbox.Generate(3)
	accepted, transient, permanent := ids[0], ids[1], ids[2]
	s.sandbox.RejectNextFeed(transient, spapi.ResultInternalError)
	s.sandbox.RejectNextFeed(permanent, spapi.ResultInvalidInvoiceNumber)
	var needles []needle
	for _, id := range ids {
		o, _ := s.sandbox.Order(id)
		needles = append(needles, piiNeedles(t, piiValues(&o))...)
		s.startOrder(ctx, id)
	}
	number := map[string]string{}
	for _, id := range ids {
		st := s.status(ctx, id)
		number[id] = st.InvoiceNumber
		want := workflows.TaxDocumentUploadWorkflowID(st.InvoiceNumber)
		if st.InvoiceUpload == nil || st.InvoiceUpload.WorkflowID != want || st.InvoiceUpload.State != taxupload.StateSubmitting {
			t.Fatalf("order %s: status invoiceUpload %+v, want %s submitting", id, st.InvoiceUpload, want)
		}
	}

	check := func(id string, want workflows.TaxDocumentUploadStatus, feeds int) workflows.TaxDocumentUploadStatus {
		t.Helper()
		st := s.uploadResult(ctx, number[id])
		if st.State != want.State || st.ResultCode != want.ResultCode || st.Attempts != want.Attempts || st.FeedID == "" || st.EvidenceSeq == 0 {
			t.Fatalf("order %s: upload %+v, want state %s, result %q, %d attempts, a feed and evidence", id, st, want.State, want.ResultCode, want.Attempts)
		}
		got := s.sandbox.Feeds(number[id])
		if len(got) != feeds {
			t.Fatalf("order %s: %d feeds for %s, want %d: %+v", id, len(got), number[id], feeds, got)
		}
		for _, f := range got {
			for k, v := range f.Options {
				if hits := piiHits([]byte(k+"="+v), needles); len(hits) > 0 {
					t.Fatalf("feed option %s carries PII %v", k, hits)
				}
			}
			if f.Options[spapi.FeedOptionOrderID] != id || f.Options[spapi.FeedOptionDocumentType] != spapi.DocumentTypeInvoice {
				t.Fatalf("feed options %v", f.Options)
			}
		}
		u, err := s.app.TaxUploads().Get(ctx, number[id])
		s.must(err, "upload row")
		if u.State != st.State || u.FeedID != st.FeedID || u.Attempts != st.Attempts || u.EvidenceSeq != st.EvidenceSeq {
			t.Fatalf("row %+v differs from the workflow's %+v", u, st)
		}
		var kind, body string
		s.must(s.app.Pool.QueryRow(ctx, `SELECT kind, convert_from(body, 'UTF8') FROM evidence_log WHERE seq = $1`, st.EvidenceSeq).Scan(&kind, &body), "evidence")
		wantKind := taxupload.KindAccepted
		if st.State == taxupload.StateRejected {
			wantKind = taxupload.KindRejected
		}
		if kind != wantKind || !strings.Contains(body, st.FeedID) || !strings.Contains(body, number[id]) {
			t.Fatalf("evidence %d: %s %s", st.EvidenceSeq, kind, body)
		}
		if hits := piiHits([]byte(body), needles); len(hits) > 0 {
			t.Fatalf("evidence carries PII %v", hits)
		}
		return st
	}
	check(accepted, workflows.TaxDocumentUploadStatus{State: taxupload.StateAccepted, Attempts: 1}, 1)
	check(transient, workflows.TaxDocumentUploadStatus{State: taxupload.StateAccepted, Attempts: 2}, 2)
	rejected := check(permanent, workflows.TaxDocumentUploadStatus{State: taxupload.StateRejected, ResultCode: spapi.ResultInvalidInvoiceNumber, Attempts: 1}, 1)
	logJSON(t, "rejected", rejected)
	logJSON(t, "transient, then accepted", s.uploadResult(ctx, number[transient]))
	s.saveHistory(ctx, workflows.TaxDocumentUploadWorkflowID(number[transient]), "tax_document_upload_transient_retry.json")
	s.saveHistory(ctx, workflows.TaxDocumentUploadWorkflowID(number[permanent]), "tax_document_upload_rejected.json")

	// The operator fixed it with Amazon and runs the upload again.
	run, err := s.app.UploadInvoice(ctx, permanent)
	s.must(err, "invoice upload (re-run)")
	if run.GetID() != workflows.TaxDocumentUploadWorkflowID(number[permanent]) {
		t.Fatalf("re-run %s", run.GetID())
	}
	t.Logf("started %s (run %s) for order %s", run.GetID(), run.GetRunID(), permanent)
	logJSON(t, "re-run", check(permanent, workflows.TaxDocumentUploadStatus{State: taxupload.StateAccepted, Attempts: 2}, 2))

	// An accepted invoice is never sent again.
	if _, err := s.app.UploadInvoice(ctx, accepted); !errors.Is(err, app.ErrUploadAccepted) {
		t.Fatalf("re-run of an accepted invoice: %v", err)
	}
	if got := len(s.sandbox.Feeds(number[accepted])); got != 1 {
		t.Fatalf("%d feeds for the accepted invoice", got)
	}

	// No PII in the upload histories (decoded), nor in the logs.
	for _, id := range ids {
		wire := s.decodedWire(s.historyEvents(ctx, workflows.TaxDocumentUploadWorkflowID(number[id])))
		if hits := piiHits(wire, needles); len(hits) > 0 {
			t.Fatalf("upload history of %s carries PII %v", id, hits)
		}
	}
	if hits := piiHits([]byte(s.logs.String()), needles); len(hits) > 0 {
		t.Fatalf("logs carry PII %v", hits)
	}
	// The order's lifecycle goes on to its purge; the upload outlived nothing it needed.
	if res := s.purgeNow(ctx, accepted); res.CertificateSeq == 0 {
		t.Fatalf("purge of %s: %+v", accepted, res)
	}
	s.saveHistory(ctx, workflows.OrderWorkflowID(accepted), "order_lifecycle_invoice_upload.json")
}

// A retry of SubmitTaxDocument after it created and recorded the feed (the
// worker died before Temporal heard of it) finds the recorded feed: Amazon
// gets one feed for the invoice. The activity runs on the real stack's
// database, KMS and sandbox; Temporal's retry is the second execution with the
// same run and attempt. With DPP_UPLOAD_INVOICES off (the default) the
// lifecycle starts no upload and records nothing of one.
func TestSubmitRetriedAfterCreateFeedMakesNoSecondFeed(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	st := s.status(ctx, id)
	if st.InvoiceNumber == "" || st.InvoiceUpload != nil {
		t.Fatalf("uploads off: status %+v", st)
	}
	for _, ev := range s.historyEvents(ctx, workflows.OrderWorkflowID(id)) {
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil && m.GetMarkerName() == "LocalActivity" {
			if strings.Contains(string(wire(t, []*historypb.HistoryEvent{ev})), "StartTaxDocumentUpload") {
				t.Fatal("uploads off, yet the lifecycle started an upload")
			}
		}
	}
	if _, err := s.app.TaxUploads().Get(ctx, st.InvoiceNumber); !errors.Is(err, taxupload.ErrNotFound) {
		t.Fatalf("uploads off, yet a row: %v", err)
	}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := s.app.TaxUploadActivities()
	acts.Register(env)
	in := activities.TaxDocumentInput{AmazonOrderID: id, DocumentNumber: st.InvoiceNumber, DocumentType: spapi.DocumentTypeInvoice, Attempt: 1}
	var first, again activities.TaxDocumentSubmission
	v, err := env.ExecuteActivity(acts.SubmitTaxDocument, in)
	s.must(err, "submit")
	s.must(v.Get(&first), "result")
	v, err = env.ExecuteActivity(acts.SubmitTaxDocument, in)
	s.must(err, "submit again (the retry)")
	s.must(v.Get(&again), "result")
	if first.FeedID == "" || again != first || first.State != taxupload.StateProcessing {
		t.Fatalf("retry returned %+v, first %+v", again, first)
	}
	if got := s.sandbox.Feeds(st.InvoiceNumber); len(got) != 1 {
		t.Fatalf("%d feeds for %s after a retried submission: %+v", len(got), st.InvoiceNumber, got)
	}
	u, err := s.app.TaxUploads().Get(ctx, st.InvoiceNumber)
	s.must(err, "row")
	if u.FeedID != first.FeedID || u.FeedDocumentID == "" || u.State != taxupload.StateProcessing || u.Attempts != 1 {
		t.Fatalf("row %+v", u)
	}

	// A credit note that was never issued: a clear, final error, and no feed.
	_, err = env.ExecuteActivity(acts.SubmitTaxDocument, activities.TaxDocumentInput{AmazonOrderID: id,
		DocumentNumber: "CN-000001", DocumentType: spapi.DocumentTypeCreditNote, Attempt: 1})
	if err == nil || !strings.Contains(err.Error(), "upload of credit note CN-000001: tax document not available") {
		t.Fatalf("credit note: %v", err)
	}
	if got := s.sandbox.Feeds("CN-000001"); len(got) != 0 {
		t.Fatalf("a feed for the credit note: %+v", got)
	}
	// Bad input names what is wrong.
	_, err = env.ExecuteActivity(acts.SubmitTaxDocument, activities.TaxDocumentInput{AmazonOrderID: id,
		DocumentNumber: st.InvoiceNumber, DocumentType: "Receipt", Attempt: 1})
	if err == nil || !strings.Contains(err.Error(), "documentType must be Invoice or CreditNote") {
		t.Fatalf("bad document type: %v", err)
	}
}

// TestRecordUploadOfARunSealedBeforeLevel2 records the history of an order
// sealed by a worker from before seal level 2 (DPP_LEVEL1_WORKER: the worker
// binary built from the commit before "upload-invoice", with migration 00012
// added so it accepts the schema) whose invoice is then issued by this code:
// the lifecycle asks workflow.GetVersion for "upload-invoice" and starts the
// upload. The old worker is killed while IssueInvoice waits on a lock, so this
// code issues the invoice. It only records (DPP_SAVE_HISTORIES=1 with
// DPP_LEVEL1_WORKER); TestReplaySavedHistories replays what it saved.
func TestRecordUploadOfARunSealedBeforeLevel2(t *testing.T) {
	oldWorker := os.Getenv("DPP_LEVEL1_WORKER")
	if os.Getenv("DPP_SAVE_HISTORIES") == "" || oldWorker == "" {
		t.Skip("records a history only: set DPP_SAVE_HISTORIES=1 and DPP_LEVEL1_WORKER to a worker built before seal level 2")
	}
	s := newStack(t, uploadsOn)
	ctx := s.ctx()
	s.worker.Stop()
	s.worker = nil
	release := s.blockWrites(ctx, "invoices")
	old := s.startWorkerProcess(ctx, oldWorker, "level-1 worker")
	id := s.sandbox.Generate(1)[0]
	_, err := s.app.StartOrder(ctx, id)
	s.must(err, "start")
	s.awaitBlockedWriter(ctx, "invoices")
	old.kill()
	release()
	s.worker = s.app.NewWorker()
	s.must(s.worker.Start(), "start this code's worker")
	s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
	st := s.status(ctx, id)
	if st.InvoiceUpload == nil {
		t.Fatalf("no upload started: %+v", st)
	}
	if up := s.uploadResult(ctx, st.InvoiceNumber); up.State != taxupload.StateAccepted {
		t.Fatalf("upload %+v", up)
	}
	markers := 0
	for _, ev := range s.historyEvents(ctx, workflows.OrderWorkflowID(id)) {
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil && m.GetMarkerName() == "Version" {
			markers++
		}
	}
	if markers == 0 {
		t.Fatal("the run sealed at level 1 asked no GetVersion")
	}
	s.purgeNow(ctx, id)
	s.saveHistory(ctx, workflows.OrderWorkflowID(id), "order_lifecycle_upload_invoice_sealed_level1.json")
}

// A worker killed while the upload waits for Amazon's verdict: another worker
// takes the wait over once the heartbeat timeout passes, and Amazon still gets
// one feed for the invoice, the database one accepted state and one evidence
// entry. The worker is the production binary, killed with SIGKILL.
func TestWorkerKilledWhileAmazonProcessesMakesNoSecondFeed(t *testing.T) {
	bin := buildWorker(t) // before the test's clock starts: a build on a busy machine takes a while
	s := newStack(t, uploadsOn)
	ctx := s.ctx()
	s.worker.Stop()
	s.worker = nil
	s.sandbox.HoldFeeds(true)
	first := s.startWorkerProcess(ctx, bin, "first worker")
	id := s.sandbox.Generate(1)[0]
	_, err := s.app.StartOrder(ctx, id)
	s.must(err, "start")
	s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
	number := s.status(ctx, id).InvoiceNumber
	wid := workflows.TaxDocumentUploadWorkflowID(number)
	for {
		var pending []string
		desc, err := s.app.Temporal.DescribeWorkflow(ctx, wid, "")
		if err == nil {
			for _, pa := range desc.RawResponse.GetPendingActivities() {
				pending = append(pending, fmt.Sprintf("%s %s attempt %d %s", pa.GetActivityType().GetName(), pa.GetState(),
					pa.GetAttempt(), pa.GetLastFailure().GetMessage()))
			}
			pas := desc.RawResponse.GetPendingActivities()
			if len(pas) == 1 && pas[0].GetActivityType().GetName() == "AwaitTaxDocumentFeed" &&
				pas[0].GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				break
			}
		}
		select {
		case <-ctx.Done():
			var events []string
			for _, ev := range s.historyEvents(context.Background(), wid) {
				events = append(events, ev.GetEventType().String())
			}
			t.Fatalf("the upload never waited for Amazon: %v; pending %v; history %v", err, pending, events)
		case <-time.After(50 * time.Millisecond):
		}
	}
	first.kill()
	// The workflow's next task would wait on the dead worker's sticky queue for
	// StickyScheduleToStartTimeout (2 min); the SDK resets stickiness when a
	// worker stops gracefully, and the test does it for the killed one.
	_, err = s.app.Temporal.WorkflowService().ResetStickyTaskQueue(ctx, &workflowservice.ResetStickyTaskQueueRequest{
		Namespace: s.env["TEMPORAL_NAMESPACE"], Execution: &commonpb.WorkflowExecution{WorkflowId: wid}})
	s.must(err, "reset the sticky queue")
	s.startWorkerProcess(ctx, bin, "second worker")
	s.sandbox.HoldFeeds(false)
	st := s.uploadResult(ctx, number)
	if st.State != taxupload.StateAccepted || st.Attempts != 1 {
		t.Fatalf("after the crash: %+v", st)
	}
	if got := s.sandbox.Feeds(number); len(got) != 1 {
		t.Fatalf("%d feeds for %s: %+v", len(got), number, got)
	}
	var entries int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log WHERE subject = $1 AND kind = $2`,
		number, taxupload.KindAccepted).Scan(&entries), "evidence")
	if entries != 1 {
		t.Fatalf("%d evidence entries for %s", entries, number)
	}
}

// Credit notes go to Amazon like the invoice (document type CreditNote): one
// issued by the running lifecycle (a refund Update), one OrderSync issues for
// a cancellation after the lifecycle ended, and one an operator issues from the
// tax record (`starter credit-note issue`, app.StartCreditNoteUpload). Each is
// accepted with one feed whose options carry the note's own number and totals
// and no PII; an accepted note is not sent again.
func TestCreditNotesAreUploadedToAmazon(t *testing.T) {
	s := newStack(t, uploadsOn)
	ctx := s.ctx()
	ids := s.sandbox.Generate(2)
	refunded, cancelled := ids[0], ids[1]
	var needles []needle
	for _, id := range ids {
		o, _ := s.sandbox.Order(id)
		needles = append(needles, piiNeedles(t, piiValues(&o))...)
		s.startOrder(ctx, id)
	}
	accepted := func(id, number, gross, vat string) {
		t.Helper()
		st := s.uploadResult(ctx, number)
		if st.State != taxupload.StateAccepted || st.FeedID == "" || st.EvidenceSeq == 0 {
			t.Fatalf("credit note %s: upload %+v", number, st)
		}
		feeds := s.sandbox.Feeds(number)
		if len(feeds) != 1 {
			t.Fatalf("credit note %s: %d feeds", number, len(feeds))
		}
		o := feeds[0].Options
		if o[spapi.FeedOptionDocumentType] != spapi.DocumentTypeCreditNote || o[spapi.FeedOptionOrderID] != id ||
			o[spapi.FeedOptionInvoiceNumber] != number || o[spapi.FeedOptionTotalAmount] != gross || o[spapi.FeedOptionTotalVATAmount] != vat {
			t.Fatalf("credit note %s: feed options %v, want totals %s / %s", number, o, gross, vat)
		}
		for k, v := range o {
			if hits := piiHits([]byte(k+"="+v), needles); len(hits) > 0 {
				t.Fatalf("feed option %s carries PII %v", k, hits)
			}
		}
	}

	// 1. A refund while the lifecycle runs: the lifecycle starts the upload.
	facts, err := s.app.Orders.Facts(ctx, refunded)
	s.must(err, "facts")
	h, err := s.app.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.OrderWorkflowID(refunded),
		UpdateName: workflows.UpdateRefund, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{map[string]any{"refundId": "AMZ-R-UP", "reason": workflows.RefundDamaged, "by": "tester",
			"lines": []map[string]any{{"orderItemId": facts.Items[0].OrderItemID, "amount": "1.20"}}}}})
	s.must(err, "refund update")
	var st workflows.OrderStatus
	s.must(h.Get(ctx, &st), "refund answer")
	if len(st.CreditNotes) != 1 || st.CreditNotes[0].Upload == nil ||
		st.CreditNotes[0].Upload.WorkflowID != workflows.TaxDocumentUploadWorkflowID(st.CreditNotes[0].Number) {
		t.Fatalf("status credit notes %+v", st.CreditNotes)
	}
	note := st.CreditNotes[0]
	b, _ := json.Marshal(note)
	t.Logf("status creditNotes[0]: %s", b)
	accepted(refunded, note.Number, "1.20", string(spapi.MinorToDecimal(note.TotalVATMinor)))
	logJSON(t, "its upload", s.uploadResult(ctx, note.Number))
	t.Logf("feed options: %v", s.sandbox.Feeds(note.Number)[0].Options)
	if _, err := s.app.UploadCreditNote(ctx, note.Number); !errors.Is(err, app.ErrUploadAccepted) {
		t.Fatalf("re-run of an accepted credit note: %v", err)
	}

	// 2. Cancelled on Amazon after the lifecycle ended: OrderSync issues the
	// note from the tax record and starts its upload.
	s.purgeNow(ctx, cancelled)
	s.must(s.sandbox.Cancel(cancelled), "cancel on Amazon")
	searchable()
	if res := s.runSync(ctx); res.CreditedAfterLifecycle != 1 {
		t.Fatalf("sync %+v", res)
	}
	notes, err := s.app.Orders.CreditNotes(ctx, cancelled)
	s.must(err, "credit notes")
	if len(notes) != 1 {
		t.Fatalf("credit notes %+v", notes)
	}
	accepted(cancelled, notes[0].Number, string(spapi.MinorToDecimal(notes[0].TotalGrossMinor)), string(spapi.MinorToDecimal(notes[0].TotalVATMinor)))

	// 3. An operator's refund after the refunded order's lifecycle ended.
	s.purgeNow(ctx, refunded)
	s.saveHistory(ctx, workflows.OrderWorkflowID(refunded), "order_lifecycle_credit_note_uploaded.json")
	cn, err := s.app.Orders.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: refunded, SourceID: orders.RefundSource("AMZ-R-LATE"),
		Reason: workflows.RefundGoodwill, By: "tester", Lines: []orders.CreditLineRequest{{OrderItemID: facts.Items[0].OrderItemID, AmountMinor: 30}}})
	s.must(err, "late refund")
	started, err := s.app.StartCreditNoteUpload(ctx, refunded, cn.Number)
	s.must(err, "start the late note's upload")
	if !started {
		t.Fatal("the late credit note's upload did not start")
	}
	accepted(refunded, cn.Number, "0.30", string(spapi.MinorToDecimal(cn.TotalVATMinor)))
	if again, err := s.app.StartCreditNoteUpload(ctx, refunded, cn.Number); err != nil || again {
		t.Fatalf("a second start: %v, %v", again, err)
	}
}
