package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
	"github.com/plusranger/dpp/internal/testenv"
)

// After the lifecycle has ended and the PII is purged, the operator issues
// credit notes from the tax record, lists and exports them; bad input is
// refused with what was wrong, and nothing is issued.
func TestCreditNoteCommandsAfterTheLifecycle(t *testing.T) {
	temporal := testenv.TemporalForTest(t)
	kms := testenv.KMSForTest(t)
	sb, url := sandboxtest.Start(t, sandbox.Options{Seed: 11, Limits: sandbox.TestLimits()})
	a, env := openApp(t, testenv.Database(t), kms, map[string]string{"SPAPI_ENDPOINT": url,
		"TEMPORAL_ADDRESS": temporal.Address, "TEMPORAL_NAMESPACE": temporal.Namespace, "TEMPORAL_CONFIG_FILE": os.DevNull,
		"DPP_TASK_QUEUE": testenv.TaskQueue(t), "DPP_OPERATORS": "dpo,ops-1"}, app.Sealing|app.SPAPI)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := sb.Generate(1)[0]
	acts := a.LifecycleActivities()
	if _, err := acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.PurgeOrder(ctx, activities.PurgeInput{AmazonOrderID: id, Reason: "retention-expired", RequestedBy: "dpo"}); err != nil {
		t.Fatal(err)
	}
	facts, err := a.Orders.Facts(ctx, id)
	if err == nil {
		t.Fatalf("facts of a purged order: %+v", facts)
	}
	var item string
	if err := a.Pool.QueryRow(ctx, `SELECT facts->'items'->0->>'orderItemId' FROM orders WHERE amazon_order_id = $1`, id).Scan(&item); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"credit-note", "issue", id, "-refund-id", "R-1", "-reason", "broken", "-by", "dpo", "-full"}, `"reason" must be one of`},
		{[]string{"credit-note", "issue", id, "-refund-id", "R-1", "-reason", "damaged", "-by", "dpo"}, `field "lines" is required unless "full" is true`},
		{[]string{"credit-note", "issue", id, "-refund-id", "R-1", "-reason", "damaged", "-by", "mallory", "-full"}, "-by must name one of the operators"},
		{[]string{"credit-note", "issue", id, "-refund-id", "R-1", "-reason", "damaged", "-by", "dpo", "-line", item + ":99999.00"}, "credits more than is left"},
		{[]string{"credit-note", "issue", id, "-refund-id", "R-1", "-reason", "damaged", "-by", "dpo", "-line", "nope:1"}, `"nope" is not on the invoice`},
	} {
		out, code := starter(t, env, bad.args...)
		if code != 1 || !strings.Contains(out, bad.want) {
			t.Errorf("%v: exit %d, want 1 with %q:\n%s", bad.args[3:], code, bad.want, out)
		}
	}
	out, code := starter(t, env, "credit-note", "issue", id, "-refund-id", "R-1", "-reason", "damaged", "-by", "dpo", "-line", item+":0.10")
	if code != 0 || !strings.Contains(out, "credit note CRN-000001 for £0.10") {
		t.Fatalf("refund: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "credit-note", "issue", id, "-refund-id", "R-1", "-reason", "damaged", "-by", "dpo", "-line", item+":0.20")
	if code != 0 || !strings.Contains(out, "credit note CRN-000001 for £0.10") {
		t.Fatalf("the same refund again: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "credit-note", "issue", id, "-cancelled", "-by", "ops-1")
	if code != 0 || !strings.Contains(out, "credit note CRN-000002") {
		t.Fatalf("cancellation: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "credit-note", "list", id)
	if code != 0 || strings.Count(out, "CRN-0000") != 2 || !strings.Contains(out, "refund/R-1") || !strings.Contains(out, "cancellation") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	pdf := filepath.Join(t.TempDir(), "crn.pdf")
	out, code = starter(t, env, "credit-note", "CRN-000002", "-o", pdf, "-by", "dpo", "-purpose", "vat-return")
	if code != 0 || !strings.Contains(out, "export recorded for dpo") {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	text, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext (install poppler-utils): %v", err)
	}
	for _, want := range []string{"CREDIT NOTE", "CRN-000002", "Original invoice number:", "INV-000001", "Order cancelled after invoicing", id} {
		if !strings.Contains(string(text), want) {
			t.Errorf("credit note PDF lacks %q:\n%s", want, text)
		}
	}
}
