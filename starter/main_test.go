package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
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
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
	"github.com/plusranger/dpp/internal/store"
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, env := openApp(t, dsn, kms, map[string]string{"SPAPI_ENDPOINT": url}, app.Sealing|app.SPAPI)
	id := sb.Generate(1)[0]
	acts := a.LifecycleActivities()
	if _, err := acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id}); err != nil {
		t.Fatal(err)
	}

	// The auditor: a read-only database URL (dpp_auditor) and nothing else, not
	// even KMS or AWS variables. First the keys, pinned outside the database.
	dir := t.TempDir()
	audit := map[string]string{"DATABASE_URL": testenv.AsRole(t, dsn, store.AuditorRole)}
	out, code := starter(t, audit, "evidence", "keys")
	if code != 0 || !strings.Contains(out, `"keyId": "`+a.Signer.KeyID()+`"`) {
		t.Fatalf("evidence keys: exit %d\n%s", code, out)
	}
	keysFile := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keysFile, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = starter(t, audit, "evidence", "verify")
	if code != 1 || !strings.Contains(out, "DPP_EVIDENCE_KEYS is required") {
		t.Fatalf("evidence verify without pinned keys: exit %d\n%s", code, out)
	}
	audit["DPP_EVIDENCE_KEYS"] = keysFile

	out, code = starter(t, audit, "certificate", id)
	if code == 0 || !strings.Contains(out, "not purged yet") {
		t.Fatalf("certificate before purge: exit %d\n%s", code, out)
	}
	if _, err := acts.PurgeOrder(ctx, activities.PurgeInput{AmazonOrderID: id, Reason: "purge-now", RequestedBy: "dpo"}); err != nil {
		t.Fatal(err)
	}
	out, code = starter(t, audit, "certificate", id)
	var certs []app.CheckedCertificate
	if code != 0 || json.Unmarshal([]byte(out), &certs) != nil || len(certs) != 1 || !certs[0].SignatureValid || !certs[0].ChainIntact {
		t.Fatalf("certificate: exit %d\n%s", code, out)
	}

	// The operator exports the invoice (recorded as evidence), with the worker's environment.
	pdf := filepath.Join(dir, "invoice.pdf")
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
	out, code = starter(t, audit, "evidence", "verify")
	if code != 0 || !strings.Contains(out, "2 entries") || !strings.Contains(out, "1 pinned key)") {
		t.Fatalf("evidence verify: exit %d\n%s", code, out)
	}
	out, code = starter(t, audit, "evidence", "head")
	head, err := evidence.ParseHead(out)
	if code != 0 || err != nil || head.Seq != 2 || !strings.Contains(out, head.String()) {
		t.Fatalf("evidence head: exit %d, %v\n%s", code, err, out)
	}
	out, code = starter(t, audit, "evidence", "verify", "--head", head.String())
	if code != 0 || !strings.Contains(out, "1 published head present") || !strings.Contains(out, "head "+head.String()) {
		t.Fatalf("evidence verify --head: exit %d\n%s", code, out)
	}
	out, code = starter(t, audit, "certificate", id, "--head", head.String())
	if code != 0 {
		t.Fatalf("certificate --head: exit %d\n%s", code, out)
	}

	owner, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	ownerExec := func(q string, args ...any) {
		t.Helper()
		if _, err := owner.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// The owner cuts the tail (the export record) and rewinds the head: every
	// remaining entry verifies, but the published head is gone.
	ownerExec(`ALTER TABLE evidence_log DISABLE TRIGGER USER`)
	ownerExec(`ALTER TABLE evidence_head DISABLE TRIGGER USER`)
	ownerExec(`DELETE FROM evidence_log WHERE seq = 2`)
	ownerExec(`UPDATE evidence_head SET seq = 1, hash = (SELECT hash FROM evidence_log WHERE seq = 1)`)
	out, code = starter(t, audit, "evidence", "verify")
	if code != 0 || !strings.Contains(out, "1 entry,") {
		t.Fatalf("evidence verify after a cut, without the published head: exit %d\n%s", code, out)
	}
	out, code = starter(t, audit, "evidence", "verify", "--head", head.String())
	if code != 1 || !strings.Contains(out, "first bad entry seq 2") || !strings.Contains(out, "entries were removed") {
		t.Fatalf("evidence verify --head after a cut: exit %d\n%s", code, out)
	}

	// The owner rewrites the certificate, with a signing key of their own added
	// to signing_keys, and relinks the head: the pinned keys name the entry.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	forger := evidence.KeyIDFor(pub)
	ownerExec(`INSERT INTO signing_keys (key_id, public_key, sealed_private_key, kms_key_id, wrapped_data_key, retired_at)
		VALUES ($1, $2, '\x00', 'none', '\x00', now())`, forger, []byte(pub))
	r, err := evidence.BySeq(ctx, owner, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Body = []byte(strings.Replace(string(r.Body), "purge-now", "retention-expired", 1))
	r.SigningKeyID = forger
	r.Hash = evidence.ComputeHash(r)
	r.Signature = ed25519.Sign(priv, r.Hash)
	ownerExec(`UPDATE evidence_log SET body = $1, hash = $2, signature = $3, signing_key_id = $4 WHERE seq = 1`,
		[]byte(r.Body), r.Hash, r.Signature, r.SigningKeyID)
	ownerExec(`UPDATE evidence_head SET hash = $1`, r.Hash)
	ownerExec(`ALTER TABLE evidence_log ENABLE TRIGGER USER`)
	ownerExec(`ALTER TABLE evidence_head ENABLE TRIGGER USER`)
	if rep, err := a.VerifyEvidence(ctx); err != nil || !rep.OK() {
		t.Fatalf("the forgery was expected to pass with the database's keys: %+v, %v", rep.FirstBroken, err)
	}
	out, code = starter(t, audit, "evidence", "verify")
	if code != 1 || !strings.Contains(out, "first bad entry seq 1") || !strings.Contains(out, forger) || !strings.Contains(out, "not among the trusted keys") {
		t.Fatalf("evidence verify after the rewrite: exit %d\n%s", code, out)
	}
	t.Logf("evidence verify: %s", out)
	out, code = starter(t, audit, "certificate", id)
	if code != 1 || !strings.Contains(out, "does not verify") || !strings.Contains(out, "not among the trusted keys") {
		t.Fatalf("certificate after tampering: exit %d\n%s", code, out)
	}
}

// TestMigrateCommand: `starter migrate` needs the owner's URL and nothing else:
// DPP_MIGRATIONS_DATABASE_URL, else DATABASE_URL. A second run applies nothing.
func TestMigrateCommand(t *testing.T) {
	dsn := testenv.EmptyDatabase(t)
	out, code := starter(t, map[string]string{"DPP_MIGRATIONS_DATABASE_URL": dsn, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}, "migrate")
	last := store.Versions()[len(store.Versions())-1]
	if code != 0 || !strings.Contains(out, "applied 00001_orders.sql") || !strings.Contains(out, "applied 00004_evidence_chain.sql") ||
		!strings.Contains(out, fmt.Sprintf("schema current: version %d", last)) {
		t.Fatalf("migrate: exit %d\n%s", code, out)
	}
	out, code = starter(t, map[string]string{"DATABASE_URL": dsn}, "migrate")
	if code != 0 || strings.Contains(out, "applied 0") || !strings.Contains(out, "0 applied now") {
		t.Fatalf("migrate again (DATABASE_URL): exit %d\n%s", code, out)
	}
	// The auditor reads the genesis head of the fresh log.
	out, code = starter(t, map[string]string{"DATABASE_URL": testenv.AsRole(t, dsn, store.AuditorRole)}, "evidence", "head")
	if code != 0 || strings.TrimSpace(out) != fmt.Sprintf("0:%x", evidence.GenesisHash) {
		t.Fatalf("evidence head of an empty log: exit %d\n%s", code, out)
	}
	out, code = starter(t, map[string]string{"DPP_MIGRATIONS_DATABASE_URL": "postgres://postgres@127.0.0.1:1/none"}, "migrate")
	if code != 1 || !strings.Contains(out, "DPP_MIGRATIONS_DATABASE_URL") {
		t.Fatalf("migrate with an unreachable database: exit %d\n%s", code, out)
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
	if out, code := starter(t, nil, "evidence", "rewrite"); code != 1 || !strings.Contains(out, "starter evidence keys") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if out, code := starter(t, nil, "evidence", "verify", "--head", "12:beef"); code != 2 || !strings.Contains(out, "64 hex digits") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestIncidentCommands: a bad declaration is refused before anything is
// contacted, naming the field; the report is written from the database and
// the evidence.
func TestIncidentCommands(t *testing.T) {
	out, code := starter(t, map[string]string{"DPP_KMS_KEY_ID": "alias/x", "DPP_SELLER_NAME": "P", "DPP_SELLER_ADDRESS": "1|L",
		"DPP_SELLER_VAT_NUMBER": "GB123456789"}, "incident", "declare", "--title", "Leak of PIIMARKER7Q", "--severity", "apocalyptic")
	if code != 1 || !strings.Contains(out, `"severity" must be one of`) || strings.Contains(out, "PIIMARKER7Q") {
		t.Fatalf("bad declaration: exit %d\n%s", code, out)
	}
	kms := testenv.KMSForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, env := openApp(t, testenv.AsRole(t, testenv.Database(t), store.WorkerRole), kms, nil, app.Sealing)
	now := time.Now().UTC()
	if _, err := a.IncidentService().Declare(ctx, incident.Declaration{ID: "inc-9", WorkflowID: "incident-inc-9", Title: "Lost laptop",
		Severity: "medium", ReportedBy: "dpo", DetectedAt: now.Add(-30 * time.Hour), DeclaredAt: now.Add(-29 * time.Hour),
		Stage: "triage", AmazonDueAt: now.Add(-6 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "inc-9")
	out, code = starter(t, env, "incident", "report", "inc-9", "-o", name)
	if code != 0 || !strings.Contains(out, "1 timeline entries") {
		t.Fatalf("report: exit %d\n%s", code, out)
	}
	md, err := os.ReadFile(name + ".md")
	if err != nil || !strings.Contains(string(md), "| Amazon (24 hours) |") || !strings.Contains(string(md), "| breached |") {
		t.Fatalf("report markdown (%v):\n%s", err, md)
	}
	if pdf, err := os.ReadFile(name + ".pdf"); err != nil || !strings.HasPrefix(string(pdf), "%PDF") {
		t.Fatalf("report PDF: %v", err)
	}
	if out, code := starter(t, env, "incident", "report", "inc-404"); code != 1 || !strings.Contains(out, "no such incident") {
		t.Fatalf("unknown incident: exit %d\n%s", code, out)
	}

	// Closed, and its texts erased after DPP_INCIDENT_TEXT_RETENTION: the report still works.
	svc := a.IncidentService()
	if _, err := svc.Record(ctx, incident.Event{IncidentID: "inc-9", Key: "incident-inc-9/closed", Kind: "closed", Actor: "dpo",
		At: now, Outcome: incident.OutcomeResolved}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(a.Config.IncidentTextRetention + time.Hour)
	svc.Now = func() time.Time { return later }
	if n, _, err := svc.EraseTextsDue(ctx, 10); err != nil || n != 1 {
		t.Fatalf("erase: %d, %v", n, err)
	}
	if out, code = starter(t, env, "incident", "report", "inc-9", "-o", name); code != 0 {
		t.Fatalf("report after the erasure: exit %d\n%s", code, out)
	}
	if md, err = os.ReadFile(name + ".md"); err != nil || !strings.Contains(string(md), "title erased on "+later.Format(time.DateOnly)) ||
		strings.Contains(string(md), "Lost laptop") {
		t.Fatalf("report after the erasure (%v):\n%s", err, md)
	}
}

// openApp builds the app on the database dsn and local-kms with the seller's
// settings and extra, as a starter command's environment, and returns the
// environment too (it is also set on the test process).
func openApp(t *testing.T, dsn string, kms *testenv.KMS, extra map[string]string, uses app.Component) (*app.App, map[string]string) {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL": dsn, "AWS_ENDPOINT_URL_KMS": kms.Endpoint, "DPP_KMS_KEY_ID": kms.KeyID,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"DPP_SELLER_NAME": "Plusranger Ltd", "DPP_SELLER_ADDRESS": "1 High St|Leeds|LS1 1AA", "DPP_SELLER_VAT_NUMBER": "GB123456789",
	}
	for k, v := range extra {
		env[k] = v
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
	a, err := app.New(ctx, cfg, app.Options{Uses: uses})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, env
}
