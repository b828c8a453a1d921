package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// TestFirstStartOnAnEmptyDatabase: a worker configured with its own role and the
// owner's migrations URL starts on a database nobody has migrated yet (its
// migrations grant the rights it then uses) and creates the signing key as dpp_worker.
func TestFirstStartOnAnEmptyDatabase(t *testing.T) {
	admin := os.Getenv(testenv.EnvDatabaseURL)
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL unreachable (pg_ctlcluster --skip-systemctl-redirect 15 main start): %v", err)
	}
	name := fmt.Sprintf("dpp_first_start_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the stack's, which closes its connections
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s must be a postgres:// URL for this test: %v", testenv.EnvDatabaseURL, err)
	}
	u.Path = "/" + name
	ownerDSN := u.String()

	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["DATABASE_URL"] = testenv.AsRole(t, ownerDSN, store.WorkerRole)
		env["DPP_MIGRATIONS_DATABASE_URL"] = ownerDSN
	})
	var user string
	var keys int
	s.must(s.app.Pool.QueryRow(s.ctx(), `SELECT current_user, (SELECT count(*) FROM signing_keys)`).Scan(&user, &keys), "query as worker")
	if user != store.WorkerRole || keys != 1 {
		t.Fatalf("connected as %q with %d signing keys, want %s and 1", user, keys, store.WorkerRole)
	}
}
