package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/store"
)

// Check names of the database group.
const (
	CheckDatabase = "database"
	CheckRoles    = "database roles"
	CheckGrants   = "database grants"
)

// grant is a privilege a role must have (want true) or must not have.
type grant struct {
	role, table, privilege string
	want                   bool
	why                    string
}

// grants are the basics of least privilege the migrations set up.
var grants = []grant{
	{store.WorkerRole, "sealed_fields", "INSERT", true, "the worker seals PII"},
	{store.WorkerRole, "sealed_fields", "DELETE", true, "the worker crypto-erases PII"},
	{store.WorkerRole, "evidence_log", "INSERT", true, "the worker appends evidence"},
	{store.WorkerRole, "evidence_log", "UPDATE", false, "evidence is append-only"},
	{store.WorkerRole, "evidence_log", "DELETE", false, "evidence is append-only"},
	{store.AuditorRole, "evidence_log", "SELECT", true, "auditors read the evidence"},
	{store.AuditorRole, "evidence_log", "INSERT", false, "auditors only read"},
	{store.AuditorRole, "sealed_fields", "SELECT", false, "auditors never see ciphertext"},
	{store.AuditorRole, "data_keys", "SELECT", false, "auditors never see wrapped keys"},
}

func checkDatabase(ctx context.Context, cfg *config.Config, _ Options) []Result {
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return []Result{fail(CheckDatabase, "cannot connect: "+oneLine(err),
			"check DATABASE_URL (host, port, role, password, sslmode); the roles exist once `"+store.MigrateCommand+"` has run")}
	}
	defer conn.Close(context.Background())
	var user string
	var super bool
	if err := conn.QueryRow(ctx, `SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super); err != nil {
		return []Result{fail(CheckDatabase, "cannot read the role: "+oneLine(err), "check DATABASE_URL")}
	}
	var out []Result
	found := "connected as " + user
	if err := store.CheckSchema(ctx, conn); err != nil {
		return append(out, fail(CheckDatabase, found+"; "+oneLine(err), "run `"+store.MigrateCommand+"` as the schema owner (DPP_MIGRATIONS_DATABASE_URL)"))
	}
	switch {
	case super:
		out = append(out, fail(CheckDatabase, found+", a superuser: it could switch the evidence log's triggers off",
			"connect the worker as "+store.WorkerRole+" (DATABASE_URL=postgres://"+store.WorkerRole+"@...) and auditors as "+store.AuditorRole))
	case user != store.WorkerRole && user != store.AuditorRole:
		out = append(out, warn(CheckDatabase, found+" (not "+store.WorkerRole+"); schema current",
			"in production connect the worker as "+store.WorkerRole+": it may seal, erase and append evidence, never rewrite it"))
	default:
		out = append(out, ok(CheckDatabase, found+"; schema current"))
	}

	var missing []string
	for _, r := range []string{store.WorkerRole, store.AuditorRole} {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, r).Scan(&exists); err != nil {
			return append(out, fail(CheckRoles, oneLine(err), "check DATABASE_URL"))
		}
		if !exists {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return append(out, fail(CheckRoles, "missing roles: "+strings.Join(missing, ", "), "run `"+store.MigrateCommand+"`: the migrations create them"))
	}
	out = append(out, ok(CheckRoles, store.WorkerRole+" and "+store.AuditorRole+" exist"))

	var wrong []string
	for _, g := range grants {
		var has bool
		if err := conn.QueryRow(ctx, `SELECT has_table_privilege($1, $2, $3)`, g.role, g.table, g.privilege).Scan(&has); err != nil {
			return append(out, fail(CheckGrants, oneLine(err), "run `"+store.MigrateCommand+"`"))
		}
		if has != g.want {
			verb := "lacks"
			if has {
				verb = "has"
			}
			wrong = append(wrong, fmt.Sprintf("%s %s %s on %s (%s)", g.role, verb, g.privilege, g.table, g.why))
		}
	}
	if len(wrong) > 0 {
		return append(out, fail(CheckGrants, strings.Join(wrong, "; "),
			"someone changed the grants: run `"+store.MigrateCommand+"` again, or restore them as schemas/migrations grant them"))
	}
	return append(out, ok(CheckGrants, fmt.Sprintf("%d least-privilege grants as the migrations set them", len(grants))))
}
