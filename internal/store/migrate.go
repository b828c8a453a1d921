// Package store is the PostgreSQL access layer: connection pools and migrations.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrateCommand is what applies the migrations; error messages name it.
const MigrateCommand = "starter migrate"

// Migrate applies every embedded migration in schemas/migrations to the database
// behind pool. Several processes may migrate at once: a Postgres session advisory
// lock makes them take turns, and each applies only what is still missing.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := Apply(ctx, pool)
	return err
}

// Apply is Migrate, returning the file names of the migrations it applied.
func Apply(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	provider, closeDB, err := newProvider(pool, true)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	results, err := provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: apply: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, path.Base(r.Source.Path))
	}
	return applied, nil
}

// MigrateTo applies the embedded migrations up to and including version, for
// tests that need a database an older release left behind.
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, version int64) error {
	provider, closeDB, err := newProvider(pool, true)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := provider.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrations: apply up to %d: %w", version, err)
	}
	return nil
}

func newProvider(pool *pgxpool.Pool, locked bool) (*goose.Provider, func(), error) {
	var opts []goose.ProviderOption
	if locked {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, nil, fmt.Errorf("migrations: create session locker: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	db := stdlib.OpenDBFromPool(pool)
	provider, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(), opts...)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	return provider, func() { db.Close() }, nil
}

// MigrateURL applies the migrations through a short-lived pool on dsn, the
// connection string of the role that owns the schema, and closes it: the rest of
// the program connects with its own, least-privileged role. It returns the file
// names of the migrations it applied.
func MigrateURL(ctx context.Context, dsn string) ([]string, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("cannot reach PostgreSQL: %w", err)
	}
	return Apply(ctx, pool)
}

// Versions are the versions of the embedded migrations, in order.
func Versions() []int64 {
	names, err := fs.Glob(mustSub(), "*.sql")
	if err != nil {
		panic(err) // only for a malformed pattern
	}
	var out []int64
	for _, n := range names {
		prefix, _, _ := strings.Cut(n, "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			panic("migrations: file " + n + " does not start with a version number")
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// SchemaError says how the database's migrations differ from this binary's.
type SchemaError struct {
	Missing []int64 // embedded migrations the database lacks
	Unknown []int64 // migrations the database has that this binary does not know
	Reason  string  // when the migration table cannot be read at all
}

func (e *SchemaError) Error() string {
	switch {
	case e.Reason != "":
		return fmt.Sprintf("the database schema is not current (%s): run `%s` as the schema owner (DPP_MIGRATIONS_DATABASE_URL)", e.Reason, MigrateCommand)
	case len(e.Missing) > 0:
		return fmt.Sprintf("the database schema is behind this binary (not applied: migration %s): run `%s` as the schema owner (DPP_MIGRATIONS_DATABASE_URL)",
			versionList(e.Missing), MigrateCommand)
	default:
		return fmt.Sprintf("the database schema is ahead of this binary (applied, unknown to this build: migration %s): run a build at least as new as the schema",
			versionList(e.Unknown))
	}
}

func versionList(vs []int64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%05d", v)
	}
	return strings.Join(s, ", ")
}

// CheckSchema reads (never writes) which migrations the database has and returns
// a *SchemaError unless they are exactly this binary's. Workers and operator
// commands call it at start instead of migrating: only `starter migrate`, with the
// owner's connection string, changes the schema. A database ahead of the binary is
// refused too: an older build does not know what the newer schema expects of it.
func CheckSchema(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) error {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if !exists {
		return &SchemaError{Reason: "no migrations have been applied"}
	}
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (version_id) version_id, is_applied
		FROM goose_db_version WHERE version_id > 0 ORDER BY version_id, id DESC`)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			// The grant that lets the worker read the table came with migration 4.
			return &SchemaError{Reason: "this role may not read goose_db_version, which migration 00004 grants"}
		}
		return fmt.Errorf("check schema: %w", err)
	}
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		var ok bool
		if err := rows.Scan(&v, &ok); err != nil {
			rows.Close()
			return fmt.Errorf("check schema: %w", err)
		}
		applied[v] = ok
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return &SchemaError{Reason: "this role may not read goose_db_version, which migration 00004 grants"}
		}
		return fmt.Errorf("check schema: %w", err)
	}
	e := &SchemaError{}
	known := map[int64]bool{}
	for _, v := range Versions() {
		known[v] = true
		if !applied[v] {
			e.Missing = append(e.Missing, v)
		}
	}
	for v, ok := range applied {
		if ok && !known[v] {
			e.Unknown = append(e.Unknown, v)
		}
	}
	slices.Sort(e.Unknown)
	if len(e.Missing) > 0 || len(e.Unknown) > 0 {
		return e
	}
	return nil
}
