package app_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

// shortRetention: orders are promised 2 s after they are placed and kept 3 s
// after that, so every purge in these tests comes due within seconds.
func shortRetention(env map[string]string, o *sandbox.Options) {
	o.DeliveryAfter = time.Hour
	o.LatestDeliveryAfter = 2 * time.Second
}

// runAudit runs one RetentionAudit on the stack's worker and returns its result
// (following its continuations) and the ID of its first run.
func (s *stack) runAudit(ctx context.Context, in workflows.RetentionAuditInput) (workflows.RetentionAuditResult, string) {
	s.t.Helper()
	run, err := s.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "retention-audit-" + s.app.Config.TaskQueue, TaskQueue: s.app.Config.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.RetentionAuditName, in)
	s.must(err, "start RetentionAudit")
	first := run.GetRunID() // Get follows the continuations and moves the run ID on
	var res workflows.RetentionAuditResult
	s.must(run.Get(ctx, &res), "RetentionAudit")
	return res, first
}

// orderRow is what the database knows of an order's retention.
type orderRow struct {
	dueAt    *time.Time
	onHold   bool
	problem  *string
	purgedAt *time.Time
	reason   *string
}

func (s *stack) orderRow(ctx context.Context, id string) orderRow {
	s.t.Helper()
	var r orderRow
	s.must(s.app.Pool.QueryRow(ctx, `SELECT purge_due_at, on_hold, problem, purged_at, purge_reason FROM orders
		WHERE amazon_order_id = $1`, id).Scan(&r.dueAt, &r.onHold, &r.problem, &r.purgedAt, &r.reason), "order row %s", id)
	return r
}

// waitRow polls the order's row until ok says it is as wanted.
func (s *stack) waitRow(ctx context.Context, id string, ok func(orderRow) bool) orderRow {
	s.t.Helper()
	for {
		r := s.orderRow(ctx, id)
		if ok(r) {
			return r
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("order %s: row never became as wanted: %+v", id, r)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestFailedInvoiceStillEndsInACertifiedPurge(t *testing.T) {
	s := newStack(t, func(env map[string]string, o *sandbox.Options) {
		shortRetention(env, o)
		env["DPP_ALWAYS_FULL_INVOICE"] = "true" // a full invoice needs the buyer's name and address
	})
	ctx := s.ctx()
	// A consumer order: a business buyer's tax registration would name and
	// address it even without the buyer's PII.
	var id string
	for id == "" {
		candidate := s.sandbox.Generate(1)[0]
		if o, _ := s.sandbox.Order(candidate); !o.IsBusiness() {
			id = candidate
		}
	}
	s.must(s.sandbox.WithholdRestrictedData(id), "withhold PII") // an app without Amazon's PII role
	started, err := s.app.StartOrder(ctx, id)
	s.must(err, "start")
	if !started {
		t.Fatal("not started")
	}
	res := s.await(ctx, id)
	if res.PurgeReason != workflows.PurgeReasonRetention || res.InvoiceNumber != "" || res.CertificateSeq == 0 {
		t.Fatalf("result %+v: want a retention purge with a certificate and no invoice", res)
	}
	st := s.status(ctx, id)
	if st.Problem == nil || st.Problem.Step != "invoice" || st.Problem.Code != orders.ProblemInvoiceNoBuyerAddress || st.Problem.EvidenceSeq == 0 {
		t.Fatalf("status problem %+v", st.Problem)
	}
	if row := s.orderRow(ctx, id); row.problem == nil || *row.problem != orders.ProblemInvoiceNoBuyerAddress || row.purgedAt == nil {
		t.Fatalf("order row %+v", row)
	}
	desc, err := s.app.Temporal.DescribeWorkflow(ctx, workflows.OrderWorkflowID(id), "")
	s.must(err, "describe")
	if code, _ := desc.TypedSearchAttributes.GetKeyword(workflows.OrderProblemKey); code != orders.ProblemInvoiceNoBuyerAddress {
		t.Fatalf("OrderProblem search attribute %q", code)
	}
	problems, err := evidence.Get(ctx, s.app.Pool, id, orders.KindOrderProblem)
	s.must(err, "evidence")
	if len(problems) != 1 || problems[0].Seq != st.Problem.EvidenceSeq ||
		!bytes.Contains(problems[0].Body, []byte(`"code":"`+orders.ProblemInvoiceNoBuyerAddress+`"`)) {
		t.Fatalf("problem evidence %+v", problems)
	}
	certs, err := s.app.Certificates(ctx, id)
	s.must(err, "certificates")
	if len(certs) != 1 || !certs[0].SignatureValid {
		t.Fatalf("certificates %+v", certs)
	}
	var invoices int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM invoices`).Scan(&invoices), "count")
	if invoices != 0 {
		t.Fatalf("%d invoices issued", invoices)
	}
	if st.DeliverySource != workflows.DeliveryFromPromise {
		t.Fatalf("delivery source %q: the wait for delivery should have ended at the promised date", st.DeliverySource)
	}
	// The replay test keeps this path: an invoice problem and the delivery-promise timeout.
	s.saveHistory(ctx, workflows.OrderWorkflowID(id), "order_lifecycle_invoice_problem_promise_timeout.json")
}

func TestRetentionAuditPurgesOrdersWhoseWorkflowIsGone(t *testing.T) {
	// Deliveries are promised hours ahead, so no workflow reaches its purge by
	// itself while the test arranges them; their due times are then moved into
	// the past in the database, as the passing of 30 days would.
	s := newStack(t, nil)
	ctx := s.ctx()
	ids := s.sandbox.Generate(4)
	terminated, held, neverStarted, running := ids[0], ids[1], ids[2], ids[3]

	// Terminated by an operator while it waited for delivery.
	s.startOrder(ctx, terminated)
	s.must(s.app.Temporal.TerminateWorkflow(ctx, workflows.OrderWorkflowID(terminated), "", "operator"), "terminate")

	// Held, then terminated: the database knows the hold.
	s.startOrder(ctx, held)
	s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.OrderWorkflowID(held), "", workflows.SignalLegalHold,
		map[string]string{"reason": "litigation", "by": "dpo", "note": "claim of J. Smith " + marker}), "hold")
	s.waitRow(ctx, held, func(r orderRow) bool { return r.onHold })
	s.waitSealedField(ctx, held, "note.legal-hold.%") // the note is sealed with the PII
	s.must(s.app.Temporal.TerminateWorkflow(ctx, workflows.OrderWorkflowID(held), "", "operator"), "terminate")

	// Sealed, but its workflow never started.
	acts := s.app.LifecycleActivities()
	_, err := acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: neverStarted})
	s.must(err, "seal")

	// Sealed, and its workflow runs (on a queue no worker polls, so it never purges).
	_, err = s.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.OrderWorkflowID(running), TaskQueue: s.app.Config.TaskQueue + "-idle"},
		workflows.OrderLifecycleName, workflows.OrderInput{AmazonOrderID: running})
	s.must(err, "start running")
	_, err = acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: running})
	s.must(err, "seal")

	for _, id := range ids {
		if r := s.orderRow(ctx, id); r.dueAt == nil || r.dueAt.Before(time.Now()) {
			t.Fatalf("order %s: purge due time %v recorded when sealed, want one ahead", id, r.dueAt)
		}
	}
	_, err = s.app.Pool.Exec(ctx, `UPDATE orders SET purge_due_at = now() - interval '1 minute' WHERE amazon_order_id = ANY($1)`, ids)
	s.must(err, "time passes")
	// dpp_purges_overdue counts from the database, whatever became of the workflows.
	if n, err := s.app.Orders.CountOverdue(ctx, time.Now()); err != nil || n != 3 {
		t.Fatalf("overdue before the audit: %d, %v; want 3 (the held one is not)", n, err)
	}

	// One order per batch and one batch per run: the audit continues as new.
	res, firstRun := s.runAudit(ctx, workflows.RetentionAuditInput{BatchSize: 1, MaxBatches: 1})
	if res.Found != 3 || res.Purged != 2 || res.Running != 1 || len(res.RunningIDs) != 1 || res.RunningIDs[0] != running || res.EvidenceSeq == 0 {
		t.Fatalf("audit %+v: want 3 found (the held one is not), 2 purged, 1 running (%s)", res, running)
	}
	for _, id := range []string{terminated, neverStarted} {
		r := s.orderRow(ctx, id)
		if r.purgedAt == nil || r.reason == nil || *r.reason != activities.PurgeReasonRetentionAudit {
			t.Fatalf("order %s not purged by the audit: %+v", id, r)
		}
		certs, err := s.app.Certificates(ctx, id)
		s.must(err, "certificates of %s", id)
		if len(certs) != 1 || !certs[0].SignatureValid || !bytes.Contains(certs[0].Certificate, []byte("Reason: retention-audit.")) {
			t.Fatalf("certificate of %s: %+v", id, certs)
		}
	}
	for _, id := range []string{held, running} {
		if r := s.orderRow(ctx, id); r.purgedAt != nil {
			t.Fatalf("order %s purged by the audit: %+v", id, r)
		}
	}
	summaries, err := evidence.Get(ctx, s.app.Pool, "retention-audit-"+s.app.Config.TaskQueue+"@"+res.AsOf.Format(time.RFC3339), activities.KindRetentionAudit)
	s.must(err, "evidence")
	if len(summaries) != 1 || !bytes.Contains(summaries[0].Body, []byte(`"found":3,"purged":2,"running":1`)) {
		t.Fatalf("audit evidence %+v", summaries)
	}

	if n, err := s.app.Orders.CountOverdue(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("overdue after the audit: %d, %v; want 1 (the running one)", n, err)
	}
	// Again: nothing new to purge; the running one is still reported.
	s.saveRunHistory(ctx, "retention-audit-"+s.app.Config.TaskQueue, firstRun, "retention_audit_continue_as_new.json")
	again, _ := s.runAudit(ctx, workflows.RetentionAuditInput{})
	if again.Found != 1 || again.Purged != 0 || again.Running != 1 {
		t.Fatalf("second audit %+v", again)
	}

	// The held order, started again, resumes its hold from the database; its
	// release purges it (the due time has passed).
	started, err := s.app.StartOrder(ctx, held)
	s.must(err, "start the held order again")
	if !started {
		t.Fatal("the terminated order could not be started again")
	}
	s.waitStage(ctx, held, workflows.StageOnHold)
	if st := s.status(ctx, held); len(st.Holds) != 1 || st.Holds[0].Reason != workflows.HoldRestored {
		t.Fatalf("restarted held order: %+v", st)
	}
	s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.OrderWorkflowID(held), "", workflows.SignalReleaseHold,
		map[string]string{"by": "dpo"}), "release")
	if res := s.await(ctx, held); res.PurgeReason != workflows.PurgeReasonRetention {
		t.Fatalf("released order: %+v", res)
	}
}

// A line cancelled in full (quantity 0, in a partly cancelled order) is left off
// the invoice instead of failing it.
func TestZeroQuantityLinesAreLeftOffTheInvoice(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	o, _ := s.sandbox.Order(s.sandbox.Generate(1)[0])
	cancelled := o.OrderItems[0]
	zero := 0
	cancelled.OrderItemID, cancelled.QuantityOrdered = "99999999999999", &zero
	product := *cancelled.Product
	product.Title, product.SellerSKU = "Cancelled line ZEROQTY", "PR-ZERO-01"
	cancelled.Product = &product
	o.OrderItems = append(o.OrderItems, cancelled)
	_, err := s.app.Orders.Seal(ctx, &o)
	s.must(err, "seal")
	inv, err := s.app.Orders.IssueInvoice(ctx, o.OrderID)
	s.must(err, "a quantity-0 line must not fail the invoice")
	pdf, _, err := s.app.Orders.InvoicePDF(ctx, o.OrderID)
	s.must(err, "pdf")
	text := pdfText(t, pdf)
	if bytes.Contains([]byte(text), []byte("ZEROQTY")) || bytes.Contains([]byte(text), []byte("PR-ZERO-01")) {
		t.Fatalf("invoice %s lists the cancelled line:\n%s", inv.Number, text)
	}
	if !bytes.Contains([]byte(text), []byte(o.OrderItems[0].Product.SellerSKU)) {
		t.Fatalf("invoice %s lacks the supplied line:\n%s", inv.Number, text)
	}
}

// waitSealedField polls until the order has one sealed field like the pattern.
func (s *stack) waitSealedField(ctx context.Context, id, field string) {
	s.t.Helper()
	for {
		var n int
		s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM sealed_fields WHERE amazon_order_id = $1 AND field LIKE $2`,
			id, field).Scan(&n), "count")
		if n == 1 {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("order %s: field %s never sealed", id, field)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A repeated delivery report changes nothing (the workflow.GetVersion guard of
// unchanged-signal-keeps-timer), and a cancellation purges at once.
func TestRepeatedDeliveryAndCancellation(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	ids := s.sandbox.Generate(2)
	delivered, cancelled := ids[0], ids[1]
	for _, id := range ids {
		s.startOrder(ctx, id)
	}
	at := time.Now().UTC().Truncate(time.Second)
	for range 2 {
		s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.OrderWorkflowID(delivered), "", workflows.SignalDelivered,
			workflows.DeliveredSignal{DeliveredAt: at}), "delivered")
	}
	s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.OrderWorkflowID(cancelled), "", workflows.SignalCancelled,
		map[string]string{"reason": workflows.CancelBuyer}), "cancelled")

	res := s.await(ctx, delivered)
	st := s.status(ctx, delivered)
	if res.PurgeReason != workflows.PurgeReasonRetention || !st.PurgeDueAt.Equal(at.Add(3*time.Second)) || len(st.RejectedSignals) != 0 {
		t.Fatalf("delivered order: result %+v, status %+v", res, st)
	}
	res = s.await(ctx, cancelled)
	if res.PurgeReason != workflows.PurgeReasonCancelled || !s.status(ctx, cancelled).Cancelled {
		t.Fatalf("cancelled order: result %+v", res)
	}
	certs, err := s.app.Certificates(ctx, cancelled)
	s.must(err, "certificates")
	if len(certs) != 1 || !bytes.Contains(certs[0].Certificate, []byte("Reason: cancelled (buyer-cancelled).")) {
		t.Fatalf("certificate of the cancelled order: %s", certs[0].Certificate)
	}
	s.saveHistory(ctx, workflows.OrderWorkflowID(delivered), "order_lifecycle_repeated_delivery.json")
	s.saveHistory(ctx, workflows.OrderWorkflowID(delivered), "order_lifecycle_repeated_delivery_sealed_facts.json")
	s.saveHistory(ctx, workflows.OrderWorkflowID(cancelled), "order_lifecycle_cancelled.json")
}
