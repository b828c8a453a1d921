package testenv

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/schemas"
)

func getenvForTest(k string) string { return os.Getenv(k) }

func TestDatabaseIsMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	dsn1, dsn2 := Database(t), Database(t)
	if dsn1 == dsn2 {
		t.Fatal("two calls returned the same database")
	}
	c1, err := pgx.Connect(ctx, dsn1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	c2, err := pgx.Connect(ctx, dsn2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)

	// Migrated: the first migration's tables exist.
	if _, err := c1.Exec(ctx, `INSERT INTO sync_state (name, watermark) VALUES ('x', now())`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c2.QueryRow(ctx, `SELECT count(*) FROM sync_state`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d rows of the first", n)
	}
	var name string
	if err := c1.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "dpp_test_") {
		t.Fatalf("database name %q", name)
	}
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := Pool(t)
		if err := pool.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	admin := connectAdmin(t, context.Background(), adminURL())
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestDatabaseParallel(t *testing.T) {
	for i := 0; i < 4; i++ {
		t.Run("db", func(t *testing.T) {
			t.Parallel()
			pool := Pool(t)
			if _, err := pool.Exec(context.Background(), `SELECT 1 FROM orders`); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@h:5/postgres?sslmode=disable", "dpp_test_x")
	if err != nil || got != "postgres://u:p@h:5/dpp_test_x?sslmode=disable" {
		t.Fatalf("URL form: %q, %v", got, err)
	}
	got, err = withDatabase("host=h user=u dbname=postgres", "dpp_test_x")
	if err != nil || got != "host=h user=u dbname=postgres dbname=dpp_test_x" {
		t.Fatalf("keyword form: %q, %v", got, err)
	}
}

// Several "test binaries" (separate admin sessions) race to build one template:
// it is built once, completely, and every clone of it is migrated.
func TestTemplateBuildIsSafeConcurrently(t *testing.T) {
	ctx := context.Background()
	adminDSN := adminURL()
	tmpl := "dpp_tmpl_race_" + testDBSuffix()[:8]
	t.Cleanup(func() {
		c := connectAdmin(t, ctx, adminDSN)
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "ALTER DATABASE "+tmpl+" WITH IS_TEMPLATE false")
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+tmpl+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})

	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			c, err := pgx.Connect(ctx, adminDSN)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			errs <- ensureTemplateNamed(ctx, c, adminDSN, tmpl)
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	admin := connectAdmin(t, ctx, adminDSN)
	defer admin.Close(ctx)
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'`, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != tmpl {
		t.Fatalf("databases %v, want only %s", names, tmpl)
	}
	clone := tmpl + "_clone"
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+clone+" TEMPLATE "+tmpl); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP DATABASE "+clone+" WITH (FORCE)")
	dsn, _ := withDatabase(adminDSN, clone)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var versions int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(schemas.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if versions != len(files) {
		t.Fatalf("clone has %d migrations applied, want %d", versions, len(files))
	}
}
