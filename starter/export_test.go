package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/auditpack"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// marker is a buyer's name sealed in the database: no file of the pack may hold it.
const marker = "Zebedee-Quartermain-PII"

var day = func(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// seedPeriod writes a November and December 2026 worth of evidence and facts, as
// the worker and the access review would, into the database at dsn.
func seedPeriod(t *testing.T, ctx context.Context, dsn string) {
	t.Helper()
	v := testenv.VaultForTest(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	signer, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	if err != nil {
		t.Fatal(err)
	}
	add := func(at, kind, subject, key string, body any) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, _, err := evidence.Append(ctx, tx, signer, evidence.Entry{Kind: kind, Subject: subject, IdempotencyKey: key, Body: body}, day(at))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	cert := func(order string) map[string]any {
		return map[string]any{"media": map[string]any{"serialNumber": "pii/" + order, "propertyNumber": order},
			"sanitization": map[string]any{"methodType": "Purge", "methodUsed": "Cryptographic Erase"}}
	}
	// Before the period: must not be in it.
	add("2026-10-30T10:00:00Z", evidence.KindCertificate, "202-0000000-0000010", "order-202-0000000-0000010/purge", cert("202-0000000-0000010"))
	// The period, 2026-11-01 to 2026-11-30.
	add("2026-11-02T03:00:00Z", evidence.KindCertificate, "202-0000000-0000011", "order-202-0000000-0000011/purge", cert("202-0000000-0000011"))
	add("2026-11-03T03:00:00Z", evidence.KindCertificate, "202-0000000-0000012", "order-202-0000000-0000012/purge", cert("202-0000000-0000012"))
	add("2026-11-04T03:30:00Z", "retention-audit", "audit-2026-11-04", "retention-audit/audit-2026-11-04",
		map[string]any{"asOf": "2026-11-04T03:30:00Z", "found": 1, "purged": 1})
	add("2026-11-05T09:00:00Z", "order-problem", "202-0000000-0000013", "problem/invoice/202-0000000-0000013",
		map[string]any{"amazonOrderId": "202-0000000-0000013", "step": "invoice", "code": "invoice-no-buyer-address"})
	add("2026-11-06T00:00:00Z", "key-epoch-certificate", "alias/dpp/pii/2026-10-01", "key-epoch/k1/scheduled",
		map[string]any{"kmsKeyId": "arn:k1", "deletionDate": "2026-11-13T00:00:00Z"})
	for i, d := range []string{"keep", "keep", "revoke"} {
		add("2026-11-07T10:0"+string(rune('0'+i))+":00Z", "access-review-decision", "access-review-2026-Q4",
			"access-review-2026-Q4/item/"+string(rune('a'+i))+"/decision", map[string]any{"decision": d, "by": "U-REVIEWER"})
	}
	add("2026-11-08T10:00:00Z", "access-review-execution", "access-review-2026-Q4", "access-review-2026-Q4/item/c/disable",
		map[string]any{"system": "postgres", "account": "acct-c"})
	add("2026-11-09T10:00:00Z", "offboarding-disable", "offboarding-p-17", "offboarding-p-17/postgres/acct-17",
		map[string]any{"system": "postgres", "account": "acct-17"})
	add("2026-11-10T10:00:00Z", "offboarding-breach", "offboarding-p-18", "offboarding-p-18/breach",
		map[string]any{"personId": "p-18", "deadline": "2026-11-10T09:00:00Z", "stillEnabled": []string{"postgres/acct-18"}})
	add("2026-11-10T11:00:00Z", "access-escalation", "access-review-2026-Q4", "access-review-2026-Q4/item/d/problem",
		map[string]any{"itemId": "d", "system": "postgres", "account": "acct-d", "problem": "not verified", "to": "p-dpo"})
	add("2026-11-11T10:00:00Z", "invoice-export", "202-0000000-0000011", "export/INV-1/x",
		map[string]any{"invoiceNumber": "INV-1", "exportedBy": "dpo", "purpose": "vat-return"})
	add("2026-11-12T10:00:00Z", "incident-declared", "incident-inc-1", "incident-inc-1/declared", map[string]any{"incident": "inc-1"})
	// After the period.
	add("2026-12-02T03:00:00Z", evidence.KindCertificate, "202-0000000-0000014", "order-202-0000000-0000014/purge", cert("202-0000000-0000014"))

	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	order := `INSERT INTO orders (amazon_order_id, marketplace_id, purchased_at, is_business, currency, facts, sealed_at, purged_at, purge_due_at)
		VALUES ($1, 'A1F83G8C2ARO7P', $2, false, 'GBP', '{}', $2, $3, $4)`
	exec(order, "202-0000000-0000011", day("2026-09-20T10:00:00Z"), day("2026-11-02T03:00:00Z"), day("2026-11-02T03:00:00Z"))
	exec(order, "202-0000000-0000015", day("2026-11-01T10:00:00Z"), nil, day("2026-11-20T00:00:00Z")) // overdue
	exec(order, "202-0000000-0000016", day("2026-11-25T10:00:00Z"), nil, day("2027-01-20T00:00:00Z")) // not yet due
	// A sealed field holds the marker (as ciphertext would); the auditor cannot read it.
	exec(`INSERT INTO data_keys (key_ref, amazon_order_id, purpose, kms_key_id, wrapped_key) VALUES ('pii/202-0000000-0000015', '202-0000000-0000015', 'pii', 'k', 'x')`)
	exec(`INSERT INTO sealed_fields (amazon_order_id, field, key_ref, ciphertext) VALUES ('202-0000000-0000015', 'buyerName', 'pii/202-0000000-0000015', $1)`, []byte(marker))

	incident := func(id string, detected, amazonDue time.Time, sent *time.Time) {
		exec(`INSERT INTO incident_keys (incident_id, kms_key_id, wrapped_key) VALUES ($1, 'k', 'x')`, id)
		exec(`INSERT INTO incidents (incident_id, workflow_id, severity, personal_data, detected_at, declared_at, reported_by,
			title_sealed, stage, amazon_due_at, ico_due_at, amazon_sent_at, amazon_message_id)
			VALUES ($1, 'incident-'||$1, 'high', true, $2, $2, 'U-OPS', $3, 'contained', $4, $5, $6, CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE 'msg' END)`,
			id, detected, []byte(marker), amazonDue, amazonDue.Add(48*time.Hour), sent)
	}
	sent := day("2026-11-12T20:00:00Z")
	incident("inc-1", day("2026-11-12T09:00:00Z"), day("2026-11-13T09:00:00Z"), &sent)
	incident("inc-2", day("2026-11-20T09:00:00Z"), day("2026-11-21T09:00:00Z"), nil)

	exec(`INSERT INTO key_epochs (kms_key_id, alias, purpose, starts_at, ends_at, retire_at)
		VALUES ('arn:k2', 'alias/dpp/pii/2026-10-02', 'pii', '2026-10-02', '2026-10-03', '2026-11-15')`)
}

// TestEvidenceExport: the pack of a seeded month, written by the command as the
// auditor runs it, checked field by field in report.json and report.pdf, with the
// raw entries checkable on their own.
func TestEvidenceExport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := testenv.Database(t)
	seedPeriod(t, ctx, dsn)
	dir := t.TempDir()
	audit := map[string]string{"DATABASE_URL": testenv.AsRole(t, dsn, store.AuditorRole)}
	keys, code := starter(t, audit, "evidence", "keys")
	if code != 0 {
		t.Fatalf("evidence keys: %s", keys)
	}
	keysFile := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keysFile, []byte(keys), 0o644); err != nil {
		t.Fatal(err)
	}
	audit["DPP_EVIDENCE_KEYS"] = keysFile

	for _, bad := range [][]string{{"--from", "2026-11-31", "--to", "2026-11-30"}, {"--from", "2026-11-30", "--to", "2026-11-01"}, {"--from", "2026-11-01"}} {
		out, code := starter(t, audit, append(append([]string{"evidence", "export"}, bad...), "-o", dir)...)
		if code == 0 || !strings.Contains(out, "--") {
			t.Fatalf("export %v: want a refusal naming the flag, exit %d\n%s", bad, code, out)
		}
	}

	pack := filepath.Join(dir, "pack")
	out, code := starter(t, audit, "evidence", "export", "--from", "2026-11-01", "--to", "2026-11-30", "-o", pack)
	if code != 0 || !strings.Contains(out, "8 clauses, 14 evidence entries (seq 2 to 15)") || !strings.Contains(out, "chain head 16:") {
		t.Fatalf("evidence export: exit %d\n%s", code, out)
	}
	files := map[string][]byte{}
	for _, name := range []string{auditpack.ReportJSON, auditpack.ReportPDF, auditpack.EvidenceJSONL, auditpack.VerificationJSON} {
		b, err := os.ReadFile(filepath.Join(pack, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Fatalf("%s holds the PII marker", name)
		}
		files[name] = b
	}

	var p auditpack.Pack
	if err := json.Unmarshal(files[auditpack.ReportJSON], &p); err != nil {
		t.Fatal(err)
	}
	v := p.Verification
	if !v.OK || v.Entries != 16 || v.PeriodEntries != 14 || v.FirstSeq != 2 || v.LastSeq != 15 || !strings.HasPrefix(v.Head, "16:") || len(v.PinnedKeys) != 1 {
		t.Fatalf("verification: %+v", v)
	}
	if !p.From.Equal(day("2026-11-01T00:00:00Z")) || !p.To.Equal(day("2026-12-01T00:00:00Z")) {
		t.Fatalf("period: %s to %s", p.From, p.To)
	}
	clauses := map[string]auditpack.Clause{}
	var ids []string
	for _, c := range p.Clauses {
		clauses[c.ID] = c
		ids = append(ids, c.ID)
	}
	if got := strings.Join(ids, ","); got != "encryption,retention,access-review,offboarding,incident-response,logging,credential-management,vulnerability-scanning" {
		t.Fatalf("clauses: %s", got)
	}
	count := func(c auditpack.Clause, name string) int {
		t.Helper()
		for _, n := range c.Counts {
			if n.Name == name {
				return n.Value
			}
		}
		t.Fatalf("%s: no count %q in %+v", c.ID, name, c.Counts)
		return 0
	}
	has := func(l []auditpack.Item, id, what, detail string) {
		t.Helper()
		for _, it := range l {
			if it.ID == id && strings.Contains(it.What, what) && strings.Contains(it.Detail, detail) {
				return
			}
		}
		t.Fatalf("no item %s %q %q in %+v", id, what, detail, l)
	}
	controls := func(c auditpack.Clause) string {
		var s []string
		for _, e := range c.EnforcedBy {
			s = append(s, e.Type+" "+e.Name+": "+e.Detail)
		}
		return strings.Join(s, "\n")
	}

	enc := clauses["encryption"]
	if enc.Status != auditpack.Enforced || count(enc, "orders sealed in the period") != 2 || count(enc, "key epochs overdue for retirement") != 1 ||
		count(enc, "key epoch certificates in the period") != 1 {
		t.Fatalf("encryption: %+v", enc)
	}
	has(enc.Problems, "alias/dpp/pii/2026-10-02", "overdue for retirement", "due 2026-11-15")
	has(enc.Items, "alias/dpp/pii/2026-10-01", "key-epoch-certificate", "kmsKeyId=arn:k1")
	if s := controls(enc); !strings.Contains(s, "schedule key-epochs: rotates") || !strings.Contains(s, "setting DPP_KMS_KEY_ID") {
		t.Fatalf("encryption controls:\n%s", s)
	}

	ret := clauses["retention"]
	if count(ret, "certificates of sanitization in the period") != 2 || count(ret, "orders purged in the period") != 1 ||
		count(ret, "orders overdue for purge at the period's end") != 1 || count(ret, "retention audits in the period") != 1 {
		t.Fatalf("retention: %+v", ret)
	}
	has(ret.Items, "202-0000000-0000011", "certificate-of-sanitization", "sanitization.methodType=Purge, sanitization.methodUsed=Cryptographic Erase")
	has(ret.Problems, "202-0000000-0000015", "overdue for purge", "due 2026-11-20")
	has(ret.Problems, "202-0000000-0000013", "order-problem", "code=invoice-no-buyer-address")
	if s := controls(ret); !strings.Contains(s, "setting DPP_PII_RETENTION: how long PII is kept after delivery (default 720h)") ||
		!strings.Contains(s, "schedule retention-audit") || !strings.Contains(s, "schedule tax-record-sweep") {
		t.Fatalf("retention controls:\n%s", s)
	}
	for _, it := range ret.Items {
		if it.ID == "202-0000000-0000010" || it.ID == "202-0000000-0000014" {
			t.Fatalf("a certificate outside the period is in the pack: %+v", it)
		}
	}

	acc := clauses["access-review"]
	has(acc.Items, "access-review-2026-Q4", "campaign", "keep: 2, revoke: 1, revocations executed: 1")
	if count(acc, "review decisions") != 3 {
		t.Fatalf("access review: %+v", acc)
	}
	off := clauses["offboarding"]
	has(off.Items, "offboarding-p-17", "offboarding-disable", "account=acct-17")
	has(off.Problems, "offboarding-p-18", "offboarding-breach", `stillEnabled=["postgres/acct-18"]`)
	has(acc.Problems, "access-review-2026-Q4", "access-escalation", "itemId=d, system=postgres, account=acct-d, problem=not verified")

	inc := clauses["incident-response"]
	if count(inc, "incidents in the period") != 2 || count(inc, "Amazon notified on time") != 1 || count(inc, "Amazon notifications late or overdue") != 1 {
		t.Fatalf("incidents: %+v", inc)
	}
	has(inc.Items, "incident-inc-1", "incident", "Amazon due 2026-11-13 09:00Z: met at 2026-11-12 20:00Z")
	has(inc.Problems, "incident-inc-2", "Amazon notification OVERDUE", "due 2026-11-21 09:00Z")
	has(inc.Problems, "incident-inc-2", "ICO notification OVERDUE", "due 2026-11-23 09:00Z")

	lg := clauses["logging"]
	has(lg.Items, "evidence-chain", "verification", "intact; 16 entries verified")
	has(lg.Items, "202-0000000-0000011", "invoice-export", "purpose=vat-return")
	if vs := clauses["vulnerability-scanning"]; vs.Status != auditpack.NotEnforced || !strings.Contains(controls(vs), "compliance-calendar duty") {
		t.Fatalf("vulnerability scanning: %+v", vs)
	}
	if cm := clauses["credential-management"]; cm.Status != auditpack.Partly || !strings.Contains(strings.Join(cm.Notes, " "), "identity provider") {
		t.Fatalf("credential management: %+v", cm)
	}

	// verification.json is the report's verification; evidence.jsonl checks on its
	// own from the prevHash it names, with the pinned keys.
	var vf auditpack.Verification
	if err := json.Unmarshal(files[auditpack.VerificationJSON], &vf); err != nil || vf.Head != v.Head || vf.PrevHash != v.PrevHash {
		t.Fatalf("verification.json: %v %+v", err, vf)
	}
	pinned, err := evidence.LoadKeysFile(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	n, err := auditpack.CheckEntries(bytes.NewReader(files[auditpack.EvidenceJSONL]), vf.PrevHash, pinned)
	if err != nil || n != 14 {
		t.Fatalf("check evidence.jsonl: %d, %v", n, err)
	}
	tampered := bytes.Replace(files[auditpack.EvidenceJSONL], []byte(`"decision":"revoke"`), []byte(`"decision":"keep"`), 1)
	if _, err := auditpack.CheckEntries(bytes.NewReader(tampered), vf.PrevHash, pinned); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("a tampered evidence.jsonl: want a hash mismatch, got %v", err)
	}

	// And without this project's code: the script the README gives auditors.
	script, err := exec.Command("python3", "../scripts/check-audit-pack", pack, keysFile).CombinedOutput()
	if err != nil || !strings.Contains(string(script), "14 entries checked (seq 2 to 15): hashes, links and signatures verify") {
		t.Fatalf("scripts/check-audit-pack (needs python3 and openssl): %v\n%s", err, script)
	}

	// Without pinned keys there is no pack.
	noKeys := map[string]string{"DATABASE_URL": audit["DATABASE_URL"]}
	if out, code := starter(t, noKeys, "evidence", "export", "--from", "2026-11-01", "--to", "2026-11-30", "-o", filepath.Join(dir, "nokeys")); code != 1 || !strings.Contains(out, "DPP_EVIDENCE_KEYS") {
		t.Fatalf("export without pinned keys: exit %d\n%s", code, out)
	}

	// The owner rewrites a decision behind the triggers: the pack is still
	// written, says so, and the command fails.
	owner, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	for _, sql := range []string{`ALTER TABLE evidence_log DISABLE TRIGGER USER`,
		`UPDATE evidence_log SET body = convert_to(replace(convert_from(body, 'UTF8'), 'revoke', 'keep'), 'UTF8') WHERE seq = 9`,
		`ALTER TABLE evidence_log ENABLE TRIGGER USER`} {
		if _, err := owner.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	broken := filepath.Join(dir, "broken")
	out, code = starter(t, audit, "evidence", "export", "--from", "2026-11-01", "--to", "2026-11-30", "-o", broken)
	if code != 1 || !strings.Contains(out, "evidence chain BROKEN: evidence: seq 9: hash mismatch (the pack records it)") {
		t.Fatalf("export of a broken chain: exit %d\n%s", code, out)
	}
	var bv auditpack.Verification
	if b, err := os.ReadFile(filepath.Join(broken, auditpack.VerificationJSON)); err != nil || json.Unmarshal(b, &bv) != nil || bv.OK || bv.FirstBroken != "evidence: seq 9: hash mismatch" {
		t.Fatalf("verification.json of a broken chain: %v %+v", err, bv)
	}

	// The PDF says the same, read back with pdftotext.
	text := pdftotext(t, files[auditpack.ReportPDF])
	for _, want := range []string{
		"Audit pack: Plusranger Data Protection Policy (updated 1 January 2025)",
		"Period: 2026-11-01 to 2026-11-30 (inclusive)",
		"Chain verification: intact",
		"Entries verified: 16",
		"Chain head: " + v.Head,
		"Period entries: 14 (seq 2 to 15), in evidence.jsonl",
		"1. 3.1 Encryption in Transit and At Rest",
		"2. 3.2 Data Retention; 6 Disposal and Deletion",
		"- certificates of sanitization in the period: 2",
		"- 202-0000000-0000015: overdue for purge",
		"- access-review-2026-Q4: access review campaign",
		"keep: 2, revoke: 1, revocations executed: 1",
		"- offboarding-p-18: offboarding-breach",
		"- incident-inc-2: Amazon notification OVERDUE",
		"8. 2.2 Network Protection; 4.1 Risk Assessment",
		"Status: not enforced by this system",
		"- duty vulnerability scan: every 30 days: a compliance-calendar duty",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report.pdf lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("export:\n%s\nreport.json:\n%s\nverification.json:\n%s\nevidence.jsonl (first line):\n%s\npdftotext:\n%s", out,
			files[auditpack.ReportJSON], files[auditpack.VerificationJSON], bytes.SplitN(files[auditpack.EvidenceJSONL], []byte("\n"), 2)[0], text)
	}
}

// pdftotext reads a PDF's text back (layout kept, so each line of the PDF is a line).
func pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Fatalf("pdftotext not found (%v): install poppler-utils", err)
	}
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", path, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Collapse -layout's column padding so phrases match.
	return strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", " \n ")), " ")
}
