package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"

	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestStackRunsAsTheWorkerRole: the integration stack connects as dpp_worker,
// exactly like production, so every integration test exercises its grants; the
// migrations ran as the owner.
func TestStackRunsAsTheWorkerRole(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	var user, gooseOwner string
	s.must(s.app.Pool.QueryRow(ctx, `SELECT current_user,
		(SELECT tableowner FROM pg_tables WHERE tablename = 'goose_db_version')`).Scan(&user, &gooseOwner), "whoami")
	if user != store.WorkerRole || gooseOwner == store.WorkerRole {
		t.Fatalf("worker connects as %q, migrations owned by %q", user, gooseOwner)
	}
	_, err := s.app.Pool.Exec(ctx, `UPDATE evidence_log SET subject = subject`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("worker's UPDATE of evidence_log: want permission denied, got %v", err)
	}
}

// TestFirstStartOnAnEmptyDatabase: the worker never migrates. On a database
// nobody has migrated it refuses to start and names `starter migrate`; on one an
// older release left behind (migrations up to 3), too. After `starter migrate`
// (store.MigrateURL as the owner; the migrations create dpp_worker and grant it
// its rights) it starts as dpp_worker and creates the signing key.
func TestFirstStartOnAnEmptyDatabase(t *testing.T) {
	ownerDSN := testenv.EmptyDatabase(t)
	env := map[string]string{"DATABASE_URL": ownerDSN, "DPP_KMS_KEY_ID": "alias/unused-before-the-schema-check",
		"DPP_SELLER_NAME": "Plusranger Ltd", "DPP_SELLER_ADDRESS": "1 High St|Leeds", "DPP_SELLER_VAT_NUMBER": "GB123456789"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := app.New(ctx, cfg, app.Options{Uses: app.Sealing}); err == nil || !strings.Contains(err.Error(), "`starter migrate`") {
		t.Fatalf("start on an empty database: %v, want a refusal naming starter migrate", err)
	}
	var tables int
	owner, err := pgx.Connect(ctx, ownerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(context.Background())
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the refused start left %d tables (%v): it must not migrate", tables, err)
	}

	pool, err := pgxpool.New(ctx, ownerDSN)
	if err != nil {
		t.Fatal(err)
	}
	err = store.MigrateTo(ctx, pool, 3)
	pool.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = testenv.AsRole(t, ownerDSN, store.WorkerRole)
	_, err = app.New(ctx, cfg, app.Options{Uses: app.Sealing})
	if err == nil || !strings.Contains(err.Error(), "`starter migrate`") {
		t.Fatalf("start as dpp_worker on a schema at version 3: %v, want a refusal naming starter migrate", err)
	}
	t.Logf("refused: %v", err)

	if _, err := store.MigrateURL(ctx, ownerDSN); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["DATABASE_URL"] = testenv.AsRole(t, ownerDSN, store.WorkerRole)
		delete(env, "DPP_MIGRATIONS_DATABASE_URL") // the worker never needs the owner's URL
	})
	var user string
	var keys int
	s.must(s.app.Pool.QueryRow(s.ctx(), `SELECT current_user, (SELECT count(*) FROM signing_keys)`).Scan(&user, &keys), "query as worker")
	if user != store.WorkerRole || keys != 1 {
		t.Fatalf("connected as %q with %d signing keys, want %s and 1", user, keys, store.WorkerRole)
	}
}
