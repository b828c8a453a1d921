package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/invoice"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

// invoiced seals n new orders and issues their invoices through the lifecycle's
// activities (no workflow: these tests drive the credit notes themselves).
func (s *stack) invoiced(ctx context.Context, n int) []string {
	s.t.Helper()
	acts := s.app.LifecycleActivities()
	ids := s.sandbox.Generate(n)
	for _, id := range ids {
		_, err := acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: id})
		s.must(err, "seal %s", id)
		_, err = acts.IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id})
		s.must(err, "invoice %s", id)
	}
	return ids
}

func fullInvoices(env map[string]string, _ *sandbox.Options) {
	env["DPP_ALWAYS_FULL_INVOICE"] = "true" // the customer block, marker PII included, is on every invoice
}

func TestCreditNotesForRefundsNeverExceedTheInvoiceAndOutliveThePII(t *testing.T) {
	s := newStack(t, fullInvoices)
	ctx := s.ctx()
	id := s.invoiced(ctx, 1)[0]
	svc := s.app.Orders
	facts, err := svc.Facts(ctx, id)
	s.must(err, "facts")
	item := facts.Items[0]
	refund := orders.CreditRequest{AmazonOrderID: id, SourceID: orders.RefundSource("R-1"), Reason: "damaged", By: "tester",
		Lines: []orders.CreditLineRequest{{OrderItemID: item.OrderItemID, AmountMinor: 1}}}
	first, err := svc.IssueCreditNote(ctx, refund)
	s.must(err, "refund R-1")
	if first.Number != "CRN-000001" || first.TotalGrossMinor != 1 || first.TotalNetMinor+first.TotalVATMinor != 1 {
		t.Fatalf("first credit note %+v", first)
	}
	// The same refund again (a repeated notification, signal or retry), even
	// with other amounts: the first note, nothing new.
	refund.Lines[0].AmountMinor = 5
	again, err := svc.IssueCreditNote(ctx, refund)
	s.must(err, "refund R-1 again")
	if again.Number != first.Number || again.TotalGrossMinor != 1 {
		t.Fatalf("repeated refund issued %+v", again)
	}

	// The order's PII is purged (60 days after delivery, say): refunds still
	// get credit notes, with the customer details as on the invoice.
	_, err = svc.PurgePII(ctx, orders.PurgeRequest{AmazonOrderID: id, Reason: "purge-now", RequestedBy: "tester", DueAt: time.Now()})
	s.must(err, "purge PII")
	inv, err := svc.Invoice(ctx, id)
	s.must(err, "invoice")
	over := orders.CreditRequest{AmazonOrderID: id, SourceID: orders.RefundSource("R-2"), Reason: "goodwill", By: "tester",
		Lines: []orders.CreditLineRequest{{OrderItemID: item.OrderItemID, AmountMinor: inv.TotalGrossMinor}}}
	if _, err := svc.IssueCreditNote(ctx, over); !errors.Is(err, orders.ErrCreditRefused) || !strings.Contains(err.Error(), "credits more than is left") {
		t.Fatalf("over-credit: %v", err)
	}
	unknown := over
	unknown.Lines = []orders.CreditLineRequest{{OrderItemID: "no-such-item", Quantity: 1}}
	if _, err := svc.IssueCreditNote(ctx, unknown); !errors.Is(err, orders.ErrCreditRefused) || !strings.Contains(err.Error(), `"no-such-item" is not on the invoice`) {
		t.Fatalf("unknown item: %v", err)
	}
	full, err := svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: id, SourceID: orders.SourceCancellation,
		Reason: "cancelled", By: "tester", Full: true})
	s.must(err, "full credit")
	if full.Number != "CRN-000002" {
		t.Fatalf("second credit note numbered %s: the rejected requests must not use a number", full.Number)
	}
	if full.TotalGrossMinor+first.TotalGrossMinor != inv.TotalGrossMinor ||
		full.TotalVATMinor+first.TotalVATMinor != inv.TotalVATMinor ||
		full.TotalNetMinor+first.TotalNetMinor != inv.TotalNetMinor {
		t.Fatalf("credited %d+%d gross, %d+%d VAT; invoiced %d gross, %d VAT", first.TotalGrossMinor, full.TotalGrossMinor,
			first.TotalVATMinor, full.TotalVATMinor, inv.TotalGrossMinor, inv.TotalVATMinor)
	}
	if _, err := svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: id, SourceID: orders.RefundSource("R-3"),
		Reason: "goodwill", By: "tester", Full: true}); !errors.Is(err, orders.ErrFullyCredited) {
		t.Fatalf("credit beyond the invoice: %v", err)
	}

	pdf, cn, err := svc.ExportCreditNote(ctx, full.Number, "tester", "audit")
	s.must(err, "export")
	text := pdfText(t, pdf)
	for _, want := range []string{"CREDIT NOTE", cn.Number, "Original invoice number:", inv.Number, "Original invoice date:",
		"Order cancelled after invoicing", id, "Plusranger Ltd", "GB123456789", marker,
		invoice.FormatMoney(-full.TotalGrossMinor, "GBP")} {
		if !strings.Contains(text, want) {
			t.Errorf("credit note lacks %q:\n%s", want, text)
		}
	}
	list, err := svc.CreditNotes(ctx, id)
	s.must(err, "list")
	if len(list) != 2 {
		t.Fatalf("credit notes %+v", list)
	}
	recs, err := evidence.Get(ctx, s.app.Pool, id, orders.KindCreditNote)
	s.must(err, "evidence")
	if len(recs) != 2 {
		t.Fatalf("credit-note evidence: %d records", len(recs))
	}
	// Buyer PII only ever sealed: never in a column, the evidence or the logs.
	s.assertNoPII("database dump", s.pgDump())
	s.assertNoPII("worker logs", []byte(s.logs.String()))
}

func TestCreditNoteNumbersStayGapFreeAndOnePerSourceUnderConcurrency(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	ids := s.invoiced(ctx, 4)
	svc := s.app.Orders
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(ids))
	for _, id := range ids {
		// Every order's cancellation asked for three times at once, as a
		// signal, a notification and a retry might.
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: id, SourceID: orders.SourceCancellation,
					Reason: "cancelled", By: "tester", Full: true})
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.must(err, "concurrent credit note")
	}
	var n, maxNumber, distinctOrders int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*), max(number), count(DISTINCT amazon_order_id) FROM credit_notes`).
		Scan(&n, &maxNumber, &distinctOrders), "count")
	if n != len(ids) || maxNumber != len(ids) || distinctOrders != len(ids) {
		t.Fatalf("%d credit notes, highest number %d, %d orders; want %d of each", n, maxNumber, distinctOrders, len(ids))
	}
}

func TestLegacyInvoiceIsRebuiltWhileThePIILastsAndRefusedAfter(t *testing.T) {
	s := newStack(t, fullInvoices)
	ctx := s.ctx()
	ids := s.invoiced(ctx, 2)
	// Invoices issued before migration 00013 kept no document.
	_, err := s.app.Pool.Exec(ctx, `UPDATE invoices SET document_sealed = NULL`)
	s.must(err, "forget documents")
	svc := s.app.Orders
	cn, err := svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: ids[0], SourceID: orders.SourceCancellation,
		Reason: "cancelled", By: "tester", Full: true})
	s.must(err, "credit note from the rebuilt invoice")
	inv, err := svc.Invoice(ctx, ids[0])
	s.must(err, "invoice")
	if cn.TotalGrossMinor != inv.TotalGrossMinor {
		t.Fatalf("credited %d of %d", cn.TotalGrossMinor, inv.TotalGrossMinor)
	}
	_, err = svc.PurgePII(ctx, orders.PurgeRequest{AmazonOrderID: ids[1], Reason: "purge-now", RequestedBy: "tester", DueAt: time.Now()})
	s.must(err, "purge")
	_, err = svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: ids[1], SourceID: orders.SourceCancellation,
		Reason: "cancelled", By: "tester", Full: true})
	if !errors.Is(err, orders.ErrNoInvoiceDocument) {
		t.Fatalf("legacy invoice after the PII purge: %v", err)
	}
	s.assertNoPII("error", []byte(err.Error()))
}

func TestTaxRecordSweepErasesCreditNotesWithACertificate(t *testing.T) {
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["DPP_PII_RETENTION"] = "1s"
		env["DPP_TAX_RETENTION"] = "3s"
	})
	ctx := s.ctx()
	id := s.invoiced(ctx, 1)[0]
	svc := s.app.Orders
	cn, err := svc.IssueCreditNote(ctx, orders.CreditRequest{AmazonOrderID: id, SourceID: orders.SourceCancellation,
		Reason: "cancelled", By: "tester", Full: true})
	s.must(err, "credit note")
	// The credit-note key is wrapped by the tax-record epoch key of the year,
	// like the invoice's, and dies with it.
	var epochPurpose string
	s.must(s.app.Pool.QueryRow(ctx, `SELECT e.purpose FROM key_epoch_members m JOIN key_epochs e USING (kms_key_id)
		WHERE m.amazon_order_id = $1 AND m.purpose = 'credit-note'`, id).Scan(&epochPurpose), "credit-note key's epoch")
	if epochPurpose != "tax-record" {
		t.Fatalf("credit-note key under a %s epoch", epochPurpose)
	}
	time.Sleep(time.Until(cn.RetainUntil) + 100*time.Millisecond)
	if res := s.runTaxSweep(ctx, 10); res.Purged != 2 {
		t.Fatalf("sweep purged %d, want the invoice and the credit note", res.Purged)
	}
	if _, _, err := svc.CreditNotePDF(ctx, cn.Number); !errors.Is(err, orders.ErrTaxRecordPurged) {
		t.Fatalf("credit note after its purge: %v", err)
	}
	var keys, sealed int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM data_keys WHERE purpose <> 'pii'),
		(SELECT count(*) FROM credit_notes WHERE pdf_sealed IS NOT NULL OR key_ref IS NOT NULL)`).Scan(&keys, &sealed), "count")
	if keys != 0 || sealed != 0 {
		t.Fatalf("after the sweep: %d tax keys, %d sealed credit notes", keys, sealed)
	}
	certs, err := evidence.Get(ctx, s.app.Pool, id, evidence.KindCertificate)
	s.must(err, "certificates")
	var found bool
	for _, c := range certs {
		if c.IdempotencyKey == "purge/credit-note/"+id {
			found = strings.Contains(string(c.Body), cn.Number)
		}
	}
	if !found {
		t.Fatalf("no credit-note certificate naming %s among %d certificates", cn.Number, len(certs))
	}
	checked, err := s.app.Certificates(ctx, id)
	s.must(err, "certificates, checked")
	if len(checked) != 2 || !checked[0].SignatureValid || !checked[1].SignatureValid {
		t.Fatalf("checked certificates %+v", checked)
	}
	// A second sweep finds nothing and changes nothing.
	n, more, err := svc.SweepTaxRecords(ctx, 10)
	if err != nil || n != 0 || more {
		t.Fatalf("second sweep: %d, %v, %v", n, more, err)
	}
}

// runTaxSweep runs one TaxRecordSweep on the stack's worker.
func (s *stack) runTaxSweep(ctx context.Context, batch int) workflows.TaxRecordSweepResult {
	s.t.Helper()
	run, err := s.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "tax-sweep-" + s.app.Config.TaskQueue, TaskQueue: s.app.Config.TaskQueue,
	}, workflows.TaxRecordSweepName, workflows.TaxRecordSweepInput{BatchSize: batch})
	s.must(err, "start sweep")
	var res workflows.TaxRecordSweepResult
	s.must(run.Get(ctx, &res), "sweep")
	return res
}

// The order lifecycle on the real stack: a refund by Update gets its credit
// note and the answer shows it; the same refund again issues nothing; a
// cancellation after the invoice gets a full credit note before the purge.
// Neither the history nor the logs hold the buyer's PII.
func TestLifecycleIssuesCreditNotesForRefundsAndACancellationBeforeThePurge(t *testing.T) {
	s := newStack(t, fullInvoices)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	facts, err := s.app.Orders.Facts(ctx, id)
	s.must(err, "facts")
	wid := workflows.OrderWorkflowID(id)
	refund := map[string]any{"refundId": "AMZ-R-1", "reason": workflows.RefundDamaged, "by": "tester",
		"lines": []map[string]any{{"orderItemId": facts.Items[0].OrderItemID, "amount": "0.05"}}}
	update := func() workflows.OrderStatus {
		h, err := s.app.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.UpdateRefund,
			Args: []any{refund}, WaitForStage: client.WorkflowUpdateStageCompleted})
		s.must(err, "refund update")
		var st workflows.OrderStatus
		s.must(h.Get(ctx, &st), "refund answer")
		return st
	}
	st := update()
	if len(st.CreditNotes) != 1 || st.CreditNotes[0].SourceID != "refund/AMZ-R-1" || st.CreditNotes[0].TotalGrossMinor != 5 {
		t.Fatalf("answer %+v", st.CreditNotes)
	}
	if again := update(); len(again.CreditNotes) != 1 {
		t.Fatalf("the same refund again: %+v", again.CreditNotes)
	}
	// The same refund as a signal (a repeated notification): nothing new.
	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalRefund, refund), "refund signal")

	s.must(s.app.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalCancelled, map[string]string{"reason": workflows.CancelBuyer}), "cancel")
	res := s.await(ctx, id)
	if res.PurgeReason != workflows.PurgeReasonCancelled {
		t.Fatalf("result %+v", res)
	}
	notes, err := s.app.Orders.CreditNotes(ctx, id)
	s.must(err, "credit notes")
	inv, err := s.app.Orders.Invoice(ctx, id)
	s.must(err, "invoice")
	if len(notes) != 2 || notes[1].SourceID != orders.SourceCancellation || notes[1].By != "credit-notes" ||
		notes[0].TotalGrossMinor+notes[1].TotalGrossMinor != inv.TotalGrossMinor {
		t.Fatalf("credit notes %+v of invoice %+v", notes, inv)
	}
	var purgedAt time.Time
	s.must(s.app.Pool.QueryRow(ctx, `SELECT purged_at FROM orders WHERE amazon_order_id = $1`, id).Scan(&purgedAt), "purged")
	if !notes[1].IssuedAt.Before(purgedAt) {
		t.Fatalf("credit note issued %s, PII purged %s: the note must come first", notes[1].IssuedAt, purgedAt)
	}
	st = s.status(ctx, id)
	if len(st.CreditNotes) != 2 {
		t.Fatalf("status %+v", st.CreditNotes)
	}
	// After the lifecycle: the tax record's document still makes credit notes.
	pdf, _, err := s.app.Orders.CreditNotePDF(ctx, notes[1].Number)
	s.must(err, "credit note PDF")
	if text := pdfText(t, pdf); !strings.Contains(text, marker) || !strings.Contains(text, inv.Number) {
		t.Fatalf("credit note lacks the invoice's customer or number:\n%s", text)
	}
	s.assertNoPII("history", s.history(ctx, wid))
	s.assertNoPII("worker logs", []byte(s.logs.String()))
	s.assertNoPII("database dump", s.pgDump())
	s.saveHistory(ctx, wid, "order_lifecycle_refunds_cancelled_credit_notes.json")
}

// A crash inside the issuing transaction leaves nothing: no note, no number
// used; the retry issues exactly one note with the number the failed attempt
// would have had.
func TestCrashWhileIssuingACreditNoteLeavesExactlyOneAfterTheRetry(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.invoiced(ctx, 1)[0]
	owner, err := pgx.Connect(ctx, s.env["DPP_MIGRATIONS_DATABASE_URL"])
	s.must(err, "connect as owner")
	defer owner.Close(ctx)
	// The evidence record is the last write of the transaction: fail there.
	_, err = owner.Exec(ctx, `CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'crash before commit'; END $$;
		CREATE TRIGGER crash BEFORE INSERT ON evidence_log FOR EACH ROW
		WHEN (NEW.kind = 'credit-note') EXECUTE FUNCTION crash()`)
	s.must(err, "crash trigger")
	req := orders.CreditRequest{AmazonOrderID: id, SourceID: orders.SourceCancellation, Reason: "cancelled", By: "tester", Full: true}
	if _, err := s.app.Orders.IssueCreditNote(ctx, req); err == nil || !strings.Contains(err.Error(), "crash before commit") {
		t.Fatalf("first attempt: %v", err)
	}
	var notes, keys int
	var last int64
	s.must(owner.QueryRow(ctx, `SELECT (SELECT count(*) FROM credit_notes), (SELECT count(*) FROM data_keys WHERE purpose = 'credit-note'),
		(SELECT coalesce(max(last_number), 0) FROM invoice_counters WHERE series = 'CRN')`).Scan(&notes, &keys, &last), "after the crash")
	if notes != 0 || keys != 0 || last != 0 {
		t.Fatalf("after the crash: %d notes, %d credit-note keys, counter at %d", notes, keys, last)
	}
	_, err = owner.Exec(ctx, `DROP TRIGGER crash ON evidence_log; DROP FUNCTION crash()`)
	s.must(err, "drop trigger")
	cn, err := s.app.Orders.IssueCreditNote(ctx, req)
	s.must(err, "retry")
	again, err := s.app.Orders.IssueCreditNote(ctx, req) // a retry after a lost answer
	s.must(err, "retry again")
	if cn.Number != "CRN-000001" || again.Number != cn.Number {
		t.Fatalf("retries issued %s and %s", cn.Number, again.Number)
	}
	list, err := s.app.Orders.CreditNotes(ctx, id)
	s.must(err, "list")
	if len(list) != 1 {
		t.Fatalf("%d credit notes", len(list))
	}
}

// An order purged early (purge-now) and cancelled on Amazon afterwards: its
// lifecycle has ended, so OrderSync issues the cancellation's credit note from
// the tax record, once.
func TestOrderSyncCreditsACancellationAfterTheLifecycle(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	s.purgeNow(ctx, id)
	s.must(s.sandbox.Cancel(id), "cancel on Amazon")
	searchable()
	if res := s.runSync(ctx); res.CreditedAfterLifecycle != 1 {
		t.Fatalf("sync %+v", res)
	}
	notes, err := s.app.Orders.CreditNotes(ctx, id)
	s.must(err, "credit notes")
	inv, err := s.app.Orders.Invoice(ctx, id)
	s.must(err, "invoice")
	if len(notes) != 1 || notes[0].SourceID != orders.SourceCancellation || notes[0].By != "credit-notes" ||
		notes[0].TotalGrossMinor != inv.TotalGrossMinor {
		t.Fatalf("credit notes %+v of invoice %+v", notes, inv)
	}
	searchable()
	if res := s.runSync(ctx); res.CreditedAfterLifecycle != 0 {
		t.Fatalf("second sync %+v", res)
	}
}

// An item cancelled on Amazon after the invoice, the rest of the order going
// on (Orders v2026: the item's cancellationExecution): OrderSync reports it and
// the lifecycle issues a credit note for that item alone, once.
func TestItemCancelledAfterTheInvoiceGetsItsCreditNote(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.orderOfSeveralItems()
	s.startOrder(ctx, id)
	o, _ := s.sandbox.Order(id)
	item := o.OrderItems[1]
	s.must(s.sandbox.CancelItem(id, item.OrderItemID), "cancel an item")
	searchable()
	if res := s.runSync(ctx); res.ItemsCancelled != 1 || res.Cancelled != 0 {
		t.Fatalf("sync %+v", res)
	}
	var st workflows.OrderStatus
	for deadline := time.Now().Add(20 * time.Second); len(st.CreditNotes) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st = s.status(ctx, id)
	}
	unit, err := item.Product.Price.UnitPrice.Amount.Minor()
	s.must(err, "unit price")
	if len(st.CreditNotes) != 1 || st.CreditNotes[0].SourceID != "refund/item-cancelled-"+item.OrderItemID ||
		st.CreditNotes[0].TotalGrossMinor != unit*int64(item.Quantity()) || st.Stage != workflows.StageAwaitingDelivery {
		t.Fatalf("status %+v", st)
	}
	searchable()
	s.runSync(ctx) // the order seen again: nothing new
	notes, err := s.app.Orders.CreditNotes(ctx, id)
	s.must(err, "credit notes")
	if len(notes) != 1 || notes[0].By != "order-sync" || notes[0].Reason != workflows.RefundItemCancelled {
		t.Fatalf("credit notes %+v", notes)
	}
}

// An item cancelled before the order is sealed was never supplied: it is not
// invoiced (and so never credited).
func TestItemCancelledBeforeTheSealIsNotInvoiced(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.orderOfSeveralItems()
	o, _ := s.sandbox.Order(id)
	s.must(s.sandbox.CancelItem(id, o.OrderItems[0].OrderItemID), "cancel an item")
	acts := s.app.LifecycleActivities()
	_, err := acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: id})
	s.must(err, "seal")
	inv, err := acts.IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id})
	s.must(err, "invoice")
	var want int64
	for _, it := range o.OrderItems[1:] {
		unit, err := it.Product.Price.UnitPrice.Amount.Minor()
		s.must(err, "unit price")
		want += unit * int64(it.Quantity())
	}
	if inv.TotalGrossMinor != want {
		t.Fatalf("invoiced %d, want %d without the cancelled item", inv.TotalGrossMinor, want)
	}
}

// orderOfSeveralItems generates sandbox orders until one has more than one item.
func (s *stack) orderOfSeveralItems() string {
	for {
		id := s.sandbox.Generate(1)[0]
		if o, _ := s.sandbox.Order(id); len(o.OrderItems) > 1 {
			return id
		}
	}
}
