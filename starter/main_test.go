package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
	"github.com/plusranger/dpp/internal/testenv"
)

// The test binary runs main() when asked, so the commands are tested as
// operators run them: arguments, environment, output and exit status.
func TestMain(m *testing.M) {
	if os.Getenv("DPP_STARTER_RUN_MAIN") == "1" {
		os.Args = append([]string{"starter"}, strings.Split(os.Getenv("DPP_STARTER_ARGS"), "\x1f")...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

func starter(t *testing.T, env map[string]string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"DPP_STARTER_RUN_MAIN=1", "DPP_STARTER_ARGS=" + strings.Join(args, "\x1f"), "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestEvidenceCommands(t *testing.T) {
	kms := testenv.KMSForTest(t)
	sb, url := sandboxtest.Start(t, sandbox.Options{Seed: 7, Limits: sandbox.TestLimits()})
	dsn := testenv.Database(t)
	env := map[string]string{
		"DATABASE_URL": dsn, "AWS_ENDPOINT_URL_KMS": kms.Endpoint, "DPP_KMS_KEY_ID": kms.KeyID,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "SPAPI_ENDPOINT": url,
		"DPP_SELLER_NAME": "Plusranger Ltd", "DPP_SELLER_ADDRESS": "1 High St|Leeds|LS1 1AA",
		"DPP_SELLER_VAT_NUMBER": "GB123456789",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{SkipTemporal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	id := sb.Generate(1)[0]
	acts := a.Activities()
	if _, err := acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id}); err != nil {
		t.Fatal(err)
	}

	out, code := starter(t, env, "certificate", id)
	if code == 0 || !strings.Contains(out, "not purged yet") {
		t.Fatalf("certificate before purge: exit %d\n%s", code, out)
	}
	if _, err := acts.PurgeOrder(ctx, activities.PurgeInput{AmazonOrderID: id, Reason: "purge-now", RequestedBy: "dpo"}); err != nil {
		t.Fatal(err)
	}
	out, code = starter(t, env, "certificate", id)
	var certs []app.CheckedCertificate
	if code != 0 || json.Unmarshal([]byte(out), &certs) != nil || len(certs) != 1 || !certs[0].SignatureValid || !certs[0].ChainIntact {
		t.Fatalf("certificate: exit %d\n%s", code, out)
	}

	pdf := filepath.Join(t.TempDir(), "invoice.pdf")
	// Free text is refused: the evidence log keeps who and why for years.
	out, code = starter(t, env, "invoice", id, "-o", pdf, "-by", "dpo", "-purpose", "VAT return for jane@example.com")
	if code != 1 || !strings.Contains(out, "-purpose must be one of: vat-return") || strings.Contains(out, "jane") {
		t.Fatalf("invoice with a free-text purpose: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "invoice", id, "-o", pdf, "-by", "jane@example.com", "-purpose", "vat-return")
	if code != 1 || !strings.Contains(out, "DPP_OPERATORS") || strings.Contains(out, "jane") {
		t.Fatalf("invoice by an unknown operator: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "invoice", id, "-o", pdf, "-by", "dpo", "-purpose", "vat-return")
	if b, _ := os.ReadFile(pdf); code != 0 || !strings.HasPrefix(string(b), "%PDF") {
		t.Fatalf("invoice: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "evidence", "verify")
	if code != 0 || !strings.Contains(out, "2 entries") {
		t.Fatalf("evidence verify: exit %d\n%s", code, out)
	}

	// The owner rewrites history behind the trigger's back: verify names the entry.
	owner, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	for _, q := range []string{
		`ALTER TABLE evidence_log DISABLE TRIGGER USER`,
		`UPDATE evidence_log SET body = convert_to(replace(convert_from(body, 'UTF8'), 'purge-now', 'retention-expired'), 'UTF8') WHERE seq = 1`,
		`ALTER TABLE evidence_log ENABLE TRIGGER USER`,
	} {
		if _, err := owner.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	out, code = starter(t, env, "evidence", "verify")
	if code != 1 || !strings.Contains(out, "seq 1") {
		t.Fatalf("evidence verify after tampering: exit %d\n%s", code, out)
	}
	out, code = starter(t, env, "certificate", id)
	if code != 1 || !strings.Contains(out, "does not verify") {
		t.Fatalf("certificate after tampering: exit %d\n%s", code, out)
	}
}

func TestUsageAndBadArguments(t *testing.T) {
	if out, code := starter(t, nil, "frobnicate"); code != 2 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if out, code := starter(t, nil, "start", "not-an-order"); code != 1 || !strings.Contains(out, "amazonOrderId") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if out, code := starter(t, nil, "invoice", "205-1234567-7654321"); code != 1 || !strings.Contains(out, "-o file.pdf") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
