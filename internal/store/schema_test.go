package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestCheckSchema: the read-only check a worker makes at start instead of
// migrating, as the worker's role.
func TestCheckSchema(t *testing.T) {
	ctx := context.Background()
	check := func(dsn string) error {
		t.Helper()
		pool := connect(t, dsn)
		defer pool.Close()
		return store.CheckSchema(ctx, pool)
	}
	empty := testenv.EmptyDatabase(t)
	err := check(empty)
	var se *store.SchemaError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "no migrations have been applied") || !strings.Contains(err.Error(), "starter migrate") {
		t.Fatalf("empty database: %v", err)
	}

	// A database an older release migrated (up to 3): the worker may not even
	// read the migration table yet, the owner sees what is missing.
	owner := connect(t, empty)
	if err := store.MigrateTo(ctx, owner, 3); err != nil {
		t.Fatal(err)
	}
	err = check(testenv.AsRole(t, empty, store.WorkerRole))
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "starter migrate") {
		t.Fatalf("schema at 3, as the worker: %v", err)
	}
	err = check(empty)
	if !errors.As(err, &se) || len(se.Missing) == 0 || se.Missing[0] != 4 || !strings.Contains(err.Error(), "00004") ||
		!strings.Contains(err.Error(), "behind") || !strings.Contains(err.Error(), "starter migrate") {
		t.Fatalf("schema at 3, as the owner: %v", err)
	}
	t.Logf("behind: %v", err)

	if err := store.Migrate(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := check(testenv.AsRole(t, empty, store.WorkerRole)); err != nil {
		t.Fatalf("current schema, as the worker: %v", err)
	}

	// Ahead: a newer release's migration is applied.
	mustWork(t, owner, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`)
	err = check(testenv.AsRole(t, empty, store.WorkerRole))
	if !errors.As(err, &se) || len(se.Unknown) != 1 || se.Unknown[0] != 99999 || !strings.Contains(err.Error(), "ahead") {
		t.Fatalf("schema ahead, as the worker: %v", err)
	}
	t.Logf("ahead: %v", err)
}
