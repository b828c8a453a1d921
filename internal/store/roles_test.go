package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/schemas"
)

func TestMain(m *testing.M) {
	// local-kms accepts any credentials; the SDK only needs some.
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

const (
	codeInsufficientPrivilege = "42501"
	codeRestrictViolation     = "23001" // the append-only trigger
)

// roleDB is a migrated test database with a pool per role.
type roleDB struct {
	owner, worker, auditor *pgxpool.Pool
}

func newRoleDB(t *testing.T) *roleDB {
	t.Helper()
	ownerDSN := testenv.Database(t)
	return &roleDB{
		owner:   connect(t, ownerDSN),
		worker:  connect(t, testenv.AsRole(t, ownerDSN, store.WorkerRole)),
		auditor: connect(t, testenv.AsRole(t, ownerDSN, store.AuditorRole)),
	}
}

func connect(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // runs before the database is dropped
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("connect as %s: %v", pool.Config().ConnConfig.User, err)
	}
	return pool
}

// appendEvidence appends n entries as the worker does (its signing key created on
// the way, as on a worker's first start).
func appendEvidence(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	appendEvidenceFrom(t, pool, 1, n)
}

// appendEvidenceFrom appends the entries for orders first..last.
func appendEvidenceFrom(t *testing.T, pool *pgxpool.Pool, first, last int) {
	t.Helper()
	ctx := context.Background()
	v := testenv.VaultForTest(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	if err != nil {
		t.Fatalf("worker creates the signing key: %v", err)
	}
	for i := first; i <= last; i++ {
		order := fmt.Sprintf("202-%07d-0000001", i)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, _, err := evidence.Append(ctx, tx, signer, evidence.Entry{
				Kind: "test-purge", Subject: order, IdempotencyKey: "order-" + order + "/purge",
				Body: map[string]any{"orderId": order, "fields": 7},
			}, time.Now())
			return err
		})
		if err != nil {
			t.Fatalf("worker appends evidence: %v", err)
		}
	}
}

// mustFail runs sql on pool and requires the Postgres error code.
func mustFail(t *testing.T, pool *pgxpool.Pool, code, sql string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Errorf("%s as %s: want error %s, got %v", sql, pool.Config().ConnConfig.User, code, err)
		return
	}
	if pgErr.Code != code {
		t.Errorf("%s as %s: want error %s, got %s: %s", sql, pool.Config().ConnConfig.User, code, pgErr.Code, pgErr.Message)
	}
}

func mustWork(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		t.Errorf("%s as %s: %v", sql, pool.Config().ConnConfig.User, err)
	}
}

var tables = []string{"orders", "data_keys", "sealed_fields", "invoice_counters", "invoices",
	"sync_state", "sync_rejects", "signing_keys", "evidence_log", "evidence_head", "goose_db_version",
	"incident_keys", "incidents", "incident_timeline", "key_epochs", "key_epoch_members",
	"duty_reports", "duty_occurrences", "alerts", "alert_counters", "order_notifications", "free_texts", "evidence_checkpoints",
	"credit_notes"}

// TestRolePrivileges compares every privilege each role holds on every column and
// table of the schema with exactly what it should hold: nothing more, nothing less.
func TestRolePrivileges(t *testing.T) {
	db := newRoleDB(t)
	ctx := context.Background()

	type grant struct {
		privs   string   // table-wide privileges, space-separated
		columns []string // column privileges: "PRIV col col ..."
	}
	want := map[string]map[string]grant{
		store.WorkerRole: {
			"sealed_fields": {privs: "SELECT INSERT DELETE"},
			// Re-wrapping moves a data key to the current epoch's key in place (00009).
			"data_keys": {privs: "SELECT INSERT DELETE", columns: []string{"UPDATE kms_key_id wrapped_key"}},
			"key_epochs": {privs: "SELECT INSERT", columns: []string{
				"UPDATE state rewrapped_out deletion_scheduled_at deletion_date certificate_seq deleted_at"}},
			"key_epoch_members": {privs: "SELECT INSERT"},
			// facts and facts_swept_at: the Amazon data sweep (00011).
			"orders": {privs: "SELECT INSERT", columns: []string{"UPDATE facts purged_at purge_reason purge_due_at on_hold problem facts_swept_at"}},
			// document_sealed: the invoice document a credit note is built from (00013).
			"invoices":         {privs: "SELECT INSERT", columns: []string{"UPDATE pdf_sealed key_ref purged_at document_sealed"}},
			"invoice_counters": {privs: "SELECT INSERT", columns: []string{"UPDATE last_number"}},
			"credit_notes":     {privs: "SELECT INSERT", columns: []string{"UPDATE pdf_sealed key_ref purged_at"}},
			"sync_state":       {privs: "SELECT INSERT", columns: []string{"UPDATE watermark updated_at"}},
			"sync_rejects":     {privs: "SELECT INSERT DELETE", columns: []string{"UPDATE reason_code first_seen_at last_seen_at attempts resolved_at resolution"}},
			"evidence_log":     {privs: "SELECT INSERT"},
			"signing_keys":     {privs: "SELECT INSERT"},
			"people": {privs: "SELECT INSERT", columns: []string{
				"UPDATE slack_user_id manager_id status terminated_at name_sealed email_sealed updated_at"}},
			"accounts": {privs: "SELECT INSERT", columns: []string{
				"UPDATE person_id amazon_data service last_seen_at disable_requested_at disabled_at disabled_by"}},
			"login_streaks":  {privs: "SELECT INSERT", columns: []string{"UPDATE failures last_event_at locked_at disabled_at"}},
			"slack_messages": {privs: "SELECT INSERT", columns: []string{"UPDATE channel ts posted_at"}},
			"evidence_head":  {privs: "SELECT", columns: []string{"UPDATE seq hash"}},
			// To refuse to start on a schema that is not current (00004).
			"goose_db_version": {privs: "SELECT"},
			// Incidents (00008): the timeline is append-only.
			// A closed incident's texts are erased in place after their retention (00015).
			"incident_keys":     {privs: "SELECT INSERT", columns: []string{"UPDATE wrapped_key erased_at"}},
			"incident_timeline": {privs: "SELECT INSERT"},
			"incidents": {privs: "SELECT INSERT", columns: []string{"UPDATE stage slack_channel slack_ts amazon_sent_at amazon_message_id " +
				"amazon_text_sealed ico_reference ico_reported_at closed_at outcome title_sealed summary_sealed texts_erased_at"}},
			// The compliance calendar and alerts (00011).
			"duty_reports":     {privs: "SELECT INSERT"},
			"duty_occurrences": {privs: "SELECT INSERT", columns: []string{"UPDATE due_at completed_at completed_by rotated_at report_sha256 evidence_seq"}},
			"alerts":           {privs: "SELECT INSERT", columns: []string{"UPDATE detail raise_notified_at cleared_at clear_notified_at slack_channel slack_ts"}},
			"alert_counters":   {privs: "SELECT INSERT", columns: []string{"UPDATE value updated_at"}},
			// ORDER_CHANGE notifications handled (00010): ids, statuses and times only.
			"order_notifications": {privs: "SELECT INSERT"},
			// Sealed free text (00014): erasure empties the key and ciphertext in place.
			"free_texts": {privs: "SELECT INSERT", columns: []string{"UPDATE kms_key_id wrapped_key text_sealed erased_at"}},
			// The alert check's verified point of the chain (00014).
			"evidence_checkpoints": {privs: "SELECT INSERT", columns: []string{"UPDATE seq hash verified_at full_verified_at"}},
			// Tax documents uploaded to Amazon (00012): ids, states and codes.
			"tax_document_uploads": {privs: "SELECT INSERT", columns: []string{
				"UPDATE state attempts run_id run_attempt feed_document_id feed_id result_code evidence_seq updated_at finished_at"}},
		},
		store.AuditorRole: {
			"evidence_log":     {privs: "SELECT"},
			"evidence_head":    {privs: "SELECT"},
			"orders":           {privs: "SELECT"},
			"invoice_counters": {privs: "SELECT"},
			"sync_state":       {privs: "SELECT"},
			"sync_rejects":     {privs: "SELECT"},
			"accounts":         {privs: "SELECT"},
			"login_streaks":    {privs: "SELECT"},
			"people":           {columns: []string{"SELECT id slack_user_id manager_id status terminated_at imported_at updated_at"}},
			// Which key protects which order: ids and dates, no key material.
			"key_epochs":        {privs: "SELECT"},
			"key_epoch_members": {privs: "SELECT"},
			"signing_keys":      {columns: []string{"SELECT key_id public_key created_at retired_at"}},
			"invoices": {columns: []string{"SELECT series number invoice_number amazon_order_id kind issued_at " +
				"tax_point currency total_net total_vat total_gross key_ref retain_until purged_at"}},
			"incidents": {columns: []string{"SELECT incident_id workflow_id severity personal_data detected_at declared_at " +
				"reported_by stage amazon_due_at ico_due_at amazon_sent_at amazon_message_id ico_reference ico_reported_at closed_at outcome " +
				"texts_erased_at"}},
			"incident_timeline": {columns: []string{"SELECT incident_id seq at kind actor detail idempotency_key"}},
			"duty_occurrences":  {privs: "SELECT"},
			"alerts":            {privs: "SELECT"},
			// A report's metadata, not its content.
			"duty_reports":         {columns: []string{"SELECT sha256 duty source media_type received_at"}},
			"order_notifications":  {privs: "SELECT"},
			"free_texts":           {columns: []string{"SELECT ref kind subject recorded_at retain_until erased_at"}},
			"evidence_checkpoints": {privs: "SELECT"},
			// Credit notes (00013): numbers, amounts and dates, not the sealed PDF.
			"credit_notes": {columns: []string{"SELECT series number credit_note_number amazon_order_id invoice_number source_id " +
				"reason_code requested_by lines currency total_net total_vat total_gross issued_at key_ref retain_until purged_at"}},
			"tax_document_uploads": {privs: "SELECT"},
		},
	}

	// Every column of every table in the schema the migrations use.
	rows, err := db.owner.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	columns := map[string][]string{}
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			t.Fatal(err)
		}
		columns[table] = append(columns[table], column)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if len(columns[table]) == 0 {
			t.Fatalf("table %s not found in the migrated schema", table)
		}
	}

	columnPrivs := []string{"SELECT", "INSERT", "UPDATE", "REFERENCES"}
	tablePrivs := []string{"DELETE", "TRUNCATE", "TRIGGER"}
	for role, byTable := range want {
		expected := map[string]bool{}
		for table, g := range byTable {
			for _, p := range strings.Fields(g.privs) {
				if p == "DELETE" {
					expected[table+" "+p] = true
					continue
				}
				for _, c := range columns[table] {
					expected[table+"."+c+" "+p] = true
				}
			}
			for _, spec := range g.columns {
				f := strings.Fields(spec)
				for _, c := range f[1:] {
					expected[table+"."+c+" "+f[0]] = true
				}
			}
		}
		got := map[string]bool{}
		for table, cols := range columns {
			for _, c := range cols {
				for _, p := range columnPrivs {
					var ok bool
					if err := db.owner.QueryRow(ctx, `SELECT has_column_privilege($1, $2::regclass, $3, $4)`,
						role, table, c, p).Scan(&ok); err != nil {
						t.Fatal(err)
					}
					if ok {
						got[table+"."+c+" "+p] = true
					}
				}
			}
			for _, p := range tablePrivs {
				var ok bool
				if err := db.owner.QueryRow(ctx, `SELECT has_table_privilege($1, $2::regclass, $3)`,
					role, table, p).Scan(&ok); err != nil {
					t.Fatal(err)
				}
				if ok {
					got[table+" "+p] = true
				}
			}
		}
		var extra, missing []string
		for k := range got {
			if !expected[k] {
				extra = append(extra, k)
			}
		}
		for k := range expected {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(extra)
		sort.Strings(missing)
		if len(extra) > 0 {
			t.Errorf("%s holds privileges it should not:\n  %s", role, strings.Join(extra, "\n  "))
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks privileges:\n  %s", role, strings.Join(missing, "\n  "))
		}
		// Neither role may create objects, own anything or act as another role.
		var canCreate, owns, member bool
		if err := db.owner.QueryRow(ctx, `SELECT has_schema_privilege($1, current_schema(), 'CREATE'),
			EXISTS (SELECT 1 FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)),
			EXISTS (SELECT 1 FROM pg_auth_members WHERE member = (SELECT oid FROM pg_roles WHERE rolname = $1))`,
			role).Scan(&canCreate, &owns, &member); err != nil {
			t.Fatal(err)
		}
		if canCreate || owns || member {
			t.Errorf("%s: may create in the schema %v, owns a relation %v, is a member of a role %v", role, canCreate, owns, member)
		}
	}
}

// TestWorkerCannotRewriteEvidence: the worker appends evidence, but its UPDATE and
// DELETE on the log are refused by the grants, and it can truncate, drop or alter
// nothing, nor switch the append-only trigger off.
func TestWorkerCannotRewriteEvidence(t *testing.T) {
	db := newRoleDB(t)
	appendEvidence(t, db.worker, 3)

	mustFail(t, db.worker, codeInsufficientPrivilege, `UPDATE evidence_log SET subject = 'rewritten' WHERE seq = 2`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM evidence_log WHERE seq = 3`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `ALTER TABLE evidence_log DISABLE TRIGGER evidence_log_append_only`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `ALTER TABLE evidence_log DISABLE TRIGGER ALL`)
	for _, table := range tables {
		mustFail(t, db.worker, codeInsufficientPrivilege, `TRUNCATE `+table)
		mustFail(t, db.worker, codeInsufficientPrivilege, `DROP TABLE `+table)
		mustFail(t, db.worker, codeInsufficientPrivilege, `ALTER TABLE `+table+` ADD COLUMN x int`)
	}
	mustFail(t, db.worker, codeInsufficientPrivilege, `DROP FUNCTION evidence_log_append_only()`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `CREATE TABLE shadow (x int)`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM orders`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM invoices`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `UPDATE invoices SET number = number + 1`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM credit_notes`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `UPDATE credit_notes SET total_gross = 0`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `UPDATE signing_keys SET retired_at = now()`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM signing_keys`)
	// The worker reads the migration table (to check the schema), never writes it.
	mustWork(t, db.worker, `SELECT * FROM goose_db_version`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM goose_db_version`)

	// What the worker may do on the head, its trigger still polices: no going back.
	mustFail(t, db.worker, codeRestrictViolation, `UPDATE evidence_head SET seq = 1`)
	mustFail(t, db.worker, codeInsufficientPrivilege, `DELETE FROM evidence_head`)

	rep, err := evidence.Verify(context.Background(), db.worker, nil)
	if err != nil || !rep.OK() || rep.Records != 3 {
		t.Fatalf("chain after the refused changes: %+v, %v", rep, err)
	}
}

// TestAuditorReadsEvidenceButNoCiphertext: the auditor verifies the chain and reads
// non-PII metadata, but no ciphertext table or column, and changes nothing.
func TestAuditorReadsEvidenceButNoCiphertext(t *testing.T) {
	db := newRoleDB(t)
	appendEvidence(t, db.worker, 3)
	ctx := context.Background()

	for _, sql := range []string{
		`SELECT * FROM sealed_fields`,
		`SELECT * FROM data_keys`,
		`SELECT count(*) FROM data_keys`,
		`SELECT sealed_private_key FROM signing_keys`,
		`SELECT wrapped_data_key FROM signing_keys`,
		`SELECT * FROM signing_keys`,
		`SELECT pdf_sealed FROM invoices`,
		`SELECT document_sealed FROM invoices`,
		`SELECT * FROM invoices`,
		`SELECT pdf_sealed FROM credit_notes`,
		`SELECT * FROM credit_notes`,
		`SELECT * FROM goose_db_version`,
	} {
		mustFail(t, db.auditor, codeInsufficientPrivilege, sql)
	}
	for _, sql := range []string{
		`SELECT seq, kind, subject, body, hash, signature FROM evidence_log`,
		`SELECT * FROM evidence_head`,
		`SELECT key_id, public_key, created_at, retired_at FROM signing_keys`,
		`SELECT invoice_number, kind, total_gross, retain_until, purged_at FROM invoices`,
		`SELECT * FROM orders`,
		`SELECT * FROM invoice_counters`,
		`SELECT * FROM sync_state`,
	} {
		mustWork(t, db.auditor, sql)
	}
	var n int
	if err := db.auditor.QueryRow(ctx, `SELECT count(*) FROM evidence_log`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("auditor reads %d evidence entries (%v), want 3", n, err)
	}
	rep, err := evidence.Verify(ctx, db.auditor, nil)
	if err != nil || !rep.OK() || rep.Records != 3 {
		t.Fatalf("auditor verifies the chain: %+v, %v", rep, err)
	}

	mustFail(t, db.auditor, codeInsufficientPrivilege, `UPDATE evidence_log SET subject = 'rewritten' WHERE seq = 2`)
	mustFail(t, db.auditor, codeInsufficientPrivilege, `DELETE FROM evidence_log`)
	mustFail(t, db.auditor, codeInsufficientPrivilege, `TRUNCATE evidence_log`)
	mustFail(t, db.auditor, codeInsufficientPrivilege, `INSERT INTO sync_state (name, watermark) VALUES ('x', now())`)
	mustFail(t, db.auditor, codeInsufficientPrivilege, `UPDATE orders SET purged_at = now()`)
	mustFail(t, db.auditor, codeInsufficientPrivilege, `CREATE TABLE shadow (x int)`)
}

// TestOwnerTamperingIsExposed: even the owner's UPDATE, DELETE and TRUNCATE are
// refused by the append-only trigger; an owner who switches it off can change a
// row, and Verify (`starter evidence verify`) names the entry that was changed.
func TestOwnerTamperingIsExposed(t *testing.T) {
	db := newRoleDB(t)
	appendEvidence(t, db.worker, 4)
	ctx := context.Background()

	mustFail(t, db.owner, codeRestrictViolation, `UPDATE evidence_log SET subject = 'rewritten' WHERE seq = 2`)
	mustFail(t, db.owner, codeRestrictViolation, `DELETE FROM evidence_log WHERE seq = 4`)
	mustFail(t, db.owner, codeRestrictViolation, `TRUNCATE evidence_log CASCADE`)

	mustWork(t, db.owner, `ALTER TABLE evidence_log DISABLE TRIGGER evidence_log_append_only`)
	mustWork(t, db.owner, `UPDATE evidence_log SET subject = '202-9999999-0000001' WHERE seq = 2`)
	mustWork(t, db.owner, `ALTER TABLE evidence_log ENABLE TRIGGER evidence_log_append_only`)

	for name, pool := range map[string]*pgxpool.Pool{"auditor": db.auditor, "worker": db.worker} {
		rep, err := evidence.Verify(ctx, pool, nil)
		if err != nil {
			t.Fatalf("verify as %s: %v", name, err)
		}
		if rep.OK() || rep.FirstBroken.Seq != 2 {
			t.Fatalf("verify as %s after the owner changed seq 2: %+v (first broken %+v)", name, rep, rep.FirstBroken)
		}
		t.Logf("verify as %s: seq %d: %s", name, rep.FirstBroken.Seq, rep.FirstBroken.Reason)
	}
}

// TestRolesMigrationDownAndUp: the Down revokes every grant (the cluster-wide roles
// stay, other databases may use them) and the Up applies again over existing roles.
func TestRolesMigrationDownAndUp(t *testing.T) {
	db := newRoleDB(t)
	ctx := context.Background()
	migrations, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.owner)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations)
	if err != nil {
		t.Fatal(err)
	}
	privileges := func() (n int) {
		t.Helper()
		if err := db.owner.QueryRow(ctx, `SELECT count(*) FROM information_schema.column_privileges
			WHERE grantee IN ($1, $2)`, store.WorkerRole, store.AuditorRole).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if privileges() == 0 {
		t.Fatal("no column privileges after the migrations")
	}
	if _, err := provider.DownTo(ctx, 2); err != nil {
		t.Fatalf("down: %v", err)
	}
	if n := privileges(); n != 0 {
		t.Fatalf("%d column privileges left after the down migration", n)
	}
	mustFail(t, db.worker, codeInsufficientPrivilege, `SELECT count(*) FROM evidence_log`)
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("up again over existing roles: %v", err)
	}
	mustWork(t, db.worker, `SELECT count(*) FROM evidence_log`)
	mustFail(t, db.auditor, codeInsufficientPrivilege, `SELECT * FROM sealed_fields`)
}
