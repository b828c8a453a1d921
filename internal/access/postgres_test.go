package access_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// pgRoles creates login roles for one test (roles are cluster-wide: each name
// carries a random suffix) and drops them when it ends.
type pgRoles struct {
	t      *testing.T
	admin  *pgx.Conn
	suffix string
}

func newPGRoles(t *testing.T, dsn string) *pgRoles {
	t.Helper()
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r := &pgRoles{t: t, admin: admin, suffix: hex.EncodeToString(b)}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return r
}

func (r *pgRoles) create(base, options string, grants ...string) string {
	r.t.Helper()
	ctx := context.Background()
	name := base + "_" + r.suffix
	id := pgx.Identifier{name}.Sanitize()
	if _, err := r.admin.Exec(ctx, `CREATE ROLE `+id+` `+options); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		ctx := context.Background()
		_, _ = r.admin.Exec(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1`, name)
		_, _ = r.admin.Exec(ctx, `DROP OWNED BY `+id)
		if _, err := r.admin.Exec(ctx, `DROP ROLE `+id); err != nil {
			r.t.Logf("drop role %s: %v", name, err)
		}
	})
	for _, g := range grants {
		if _, err := r.admin.Exec(ctx, strings.ReplaceAll(g, "$ROLE", id)); err != nil {
			r.t.Fatal(err)
		}
	}
	return name
}

func TestPostgresConnectorDisablesARealRole(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t)
	roles := newPGRoles(t, dsn)
	var dbName, superuser string
	if err := roles.admin.QueryRow(ctx, `SELECT current_database(), current_user`).Scan(&dbName, &superuser); err != nil {
		t.Fatal(err)
	}
	connectGrant := `GRANT CONNECT ON DATABASE ` + pgx.Identifier{dbName}.Sanitize() + ` TO $ROLE`
	connRole := roles.create("dpp_access_connector", "LOGIN CREATEROLE", `GRANT pg_signal_backend TO $ROLE`, connectGrant)
	viaGroup := roles.create("emp_auditor", "LOGIN", `GRANT `+store.AuditorRole+` TO $ROLE`, connectGrant)
	direct := roles.create("emp_direct", "LOGIN", `GRANT SELECT ON orders TO $ROLE`, connectGrant)
	noAccess := roles.create("emp_none", "LOGIN", connectGrant)

	c := &access.PostgresConnector{Pool: connect(t, testenv.AsRole(t, dsn, connRole)), Application: []string{store.WorkerRole}}
	found, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]access.Found{}
	for _, f := range found {
		byName[f.Account] = f
	}
	for _, want := range []string{viaGroup, direct, superuser, store.WorkerRole, store.AuditorRole} {
		if _, ok := byName[want]; !ok {
			t.Errorf("List lacks %s (found %d roles)", want, len(found))
		}
	}
	if _, ok := byName[noAccess]; ok {
		t.Errorf("List has %s, which reaches no table", noAccess)
	}
	if byName[store.WorkerRole].Protected != access.ProtectedApplication {
		t.Errorf("the worker's role not reported protected: %+v", byName[store.WorkerRole])
	}
	if byName[superuser].Protected != access.ProtectedSuperuser {
		t.Errorf("superuser %s not reported protected: %+v", superuser, byName[superuser])
	}

	// A live session of the role, then the review revokes it.
	session, err := pgx.Connect(ctx, testenv.AsRole(t, dsn, viaGroup))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(ctx)
	if _, err := session.Exec(ctx, `SELECT count(*) FROM evidence_log`); err != nil {
		t.Fatalf("before: %v", err)
	}
	if err := c.Disable(ctx, access.SystemPostgres, viaGroup); err != nil {
		t.Fatal(err)
	}
	if err := c.Disable(ctx, access.SystemPostgres, viaGroup); err != nil {
		t.Fatalf("disable twice: %v", err)
	}
	if ok, err := c.Disabled(ctx, access.SystemPostgres, viaGroup); err != nil || !ok {
		t.Fatalf("Disabled after disable = %v, %v", ok, err)
	}
	if _, err := session.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("the role's open session survived the disable")
	}
	_, err = pgx.Connect(ctx, testenv.AsRole(t, dsn, viaGroup))
	if err == nil || !strings.Contains(err.Error(), "not permitted to log in") {
		t.Fatalf("a new connection as the disabled role: %v", err)
	}
	if ok, err := c.Disabled(ctx, access.SystemPostgres, direct); err != nil || ok {
		t.Fatalf("Disabled of an untouched role = %v, %v", ok, err)
	}
	if ok, err := c.Disabled(ctx, access.SystemPostgres, "no_such_role_"+roles.suffix); err != nil || !ok {
		t.Fatalf("Disabled of a missing role = %v, %v", ok, err)
	}

	// Never the superuser, never itself, never the DPP's own roles.
	for _, role := range []string{superuser, connRole, store.WorkerRole} {
		err := c.Disable(ctx, access.SystemPostgres, role)
		if !errors.Is(err, access.ErrProtected) {
			t.Errorf("Disable(%s) = %v, want ErrProtected", role, err)
		}
		var canLogin bool
		if err := roles.admin.QueryRow(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, role).Scan(&canLogin); err != nil || !canLogin {
			t.Errorf("%s lost LOGIN: %v %v", role, canLogin, err)
		}
	}

	// Re-enabling (lockout, after the DPO's approval) lets it in again.
	if err := c.Enable(ctx, access.SystemPostgres, viaGroup); err != nil {
		t.Fatal(err)
	}
	again, err := pgx.Connect(ctx, testenv.AsRole(t, dsn, viaGroup))
	if err != nil {
		t.Fatalf("after enable: %v", err)
	}
	again.Close(ctx)
	found, _ = c.List(ctx)
	if !slices.ContainsFunc(found, func(f access.Found) bool { return f.Account == viaGroup }) {
		t.Fatal("re-enabled role not listed")
	}
}
