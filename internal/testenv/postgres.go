// Package testenv starts the real components tests run against — PostgreSQL
// databases, the local-kms KMS emulator and the others — and hands each test what
// it needs to reach them. Nothing here is mocked: a component that is missing or
// not running fails the test with a message saying how to start it; it never skips.
//
// Components shared by a whole test binary are started lazily on first use and
// stopped by StopAll, which a package's TestMain calls after m.Run.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/schemas"
)

// EnvDatabaseURL names the admin connection tests use to create their databases;
// it must be allowed to CREATE and DROP databases.
const EnvDatabaseURL = "DPP_TEST_DATABASE_URL"

const defaultAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// templateLockKey is the pg_advisory_lock key that serialises template creation
// across test binaries running in parallel.
const templateLockKey int64 = 0x6470705f746d706c // "dpp_tmpl"

var (
	templateMu    sync.Mutex
	templateReady = map[string]bool{} // template name -> ensured by this process
)

// Database creates a fresh database for the test, cloned from a template that has
// every migration in schemas/migrations applied, and returns its DSN. The
// database is dropped (WITH (FORCE)) when the test ends.
//
// The template, dpp_tmpl_<first 8 hex digits of the migrations' SHA-256>, is built
// once per migrations content and reused by later runs and by test binaries
// running in parallel (they take turns with an advisory lock). Templates of older
// migrations stay until someone drops them.
func Database(t testing.TB) string {
	skipInShortMode(t, "PostgreSQL")
	t.Helper()
	adminDSN := adminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin := connectAdmin(t, ctx, adminDSN)
	defer admin.Close(context.Background())

	tmpl, err := ensureTemplate(ctx, admin, adminDSN)
	if err != nil {
		t.Fatalf("testenv: migrated template database: %v", err)
	}

	name := "dpp_test_" + testDBSuffix()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s from %s: %v", name, tmpl, err)
	}
	return dropAtEnd(t, adminDSN, name)
}

// EmptyDatabase creates a database with no migrations applied (what a first
// deployment starts from) and returns its DSN, as the admin user of
// DPP_TEST_DATABASE_URL, who owns it. It is dropped when the test ends.
func EmptyDatabase(t testing.TB) string {
	skipInShortMode(t, "PostgreSQL")
	t.Helper()
	adminDSN := adminURL()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := connectAdmin(t, ctx, adminDSN)
	defer admin.Close(context.Background())
	name := "dpp_test_empty_" + testDBSuffix()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	return dropAtEnd(t, adminDSN, name)
}

// Pool is Database plus a connection pool to it, closed when the test ends
// (before the database is dropped).
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("testenv: pool: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("testenv: pool: %v", err)
	}
	t.Cleanup(pool.Close) // registered after Database's, so it runs before the drop
	return pool
}

func connectAdmin(t testing.TB, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("testenv: %s is not a valid PostgreSQL DSN: %v", EnvDatabaseURL, err)
	}
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL at %s:%d (user %s) is unreachable: %v\n"+
			"Start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start\n"+
			"(or point %s at a server where this user may create databases)",
			cfg.Host, cfg.Port, cfg.User, err, EnvDatabaseURL)
	}
	return conn
}

// ensureTemplate returns the name of the migrated template database, building it
// if no process has yet. It is built under another name and renamed when
// complete, so a half-migrated template is never used.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, adminDSN string) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	tmpl := "dpp_tmpl_" + sum[:8]

	templateMu.Lock()
	defer templateMu.Unlock()
	if templateReady[tmpl] {
		return tmpl, nil
	}

	if err := ensureTemplateNamed(ctx, admin, adminDSN, tmpl); err != nil {
		return "", err
	}
	templateReady[tmpl] = true
	return tmpl, nil
}

// ensureTemplateNamed builds template tmpl unless it exists, holding the advisory
// lock so concurrent test binaries build it once.
func ensureTemplateNamed(ctx context.Context, admin *pgx.Conn, adminDSN, tmpl string) error {
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("advisory lock: %w", err)
	}
	defer func() {
		_, _ = admin.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey)
	}()

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	return buildTemplate(ctx, admin, adminDSN, tmpl)
}

func buildTemplate(ctx context.Context, admin *pgx.Conn, adminDSN, tmpl string) error {
	building := tmpl + "_building"
	ident := pgx.Identifier{building}.Sanitize()
	// A leftover from a build that crashed: we hold the lock, so nobody is using it.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return err
	}
	dsn, err := withDatabase(adminDSN, building)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	err = store.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", building, err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident+" RENAME TO "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{tmpl}.Sanitize()+" WITH IS_TEMPLATE true")
	return err
}

// migrationsHash is the SHA-256 over every embedded migration's name and content.
func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(schemas.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schemas.Migrations, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// withDatabase returns dsn (URL or keyword/value form) pointing at database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvDatabaseURL, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}

func testDBSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dropAtEnd drops the test's database when the test ends and returns its DSN.
func dropAtEnd(t testing.TB, adminDSN, name string) string {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(adminDSN, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// adminURL is DPP_TEST_DATABASE_URL, or the local server as postgres.
func adminURL() string {
	if v := os.Getenv(EnvDatabaseURL); v != "" {
		return v
	}
	return defaultAdminDSN
}
