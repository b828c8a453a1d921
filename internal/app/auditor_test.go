package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestAuditorConnectionIsReadOnly: the auditor's commands cannot write, even
// when their URL names a role that could (here the owner), and refuse to check
// signatures without pinned keys.
func TestAuditorConnectionIsReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.OpenAuditor(ctx, &config.Auditor{DatabaseURL: testenv.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Pool.Exec(ctx, `INSERT INTO sync_state (name, watermark) VALUES ('auditor', now())`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
		t.Fatalf("auditor's insert: want a read-only refusal, got %v", err)
	}
	if _, err := a.Verify(ctx, nil); err == nil {
		t.Fatal("verify without pinned keys: want an error")
	}
	if _, err := app.OpenAuditor(ctx, &config.Auditor{DatabaseURL: "postgres://x@127.0.0.1:1/x", EvidenceKeysFile: "/nonexistent/keys.json"}); err == nil {
		t.Fatal("missing keys file: want an error")
	}
}
