package access

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SystemPostgres is the registry's system name of the DPP database's login roles.
const SystemPostgres = "postgres"

// Why the postgres connector refuses to disable an account.
const (
	ProtectedSuperuser = "superuser"
	ProtectedOwnRole   = "the connector's own role"
	// ProtectedApplication: a role the DPP itself runs as (dpp_worker,
	// dpp_auditor): disabling it would stop the very controls under review.
	ProtectedApplication = "a role the DPP itself runs as"
)

// terminateWaitMillis is how long disabling waits for each of the role's sessions
// to end, so that verifying right after sees them gone.
const terminateWaitMillis = 5000

// PostgresConnector manages the login roles that can reach the DPP database's
// tables, directly or through role membership (dpp_auditor, a group role). It
// connects with its own URL (DPP_ACCESS_POSTGRES_URL) to the DPP database as a role
// with CREATEROLE and membership in pg_signal_backend: disabling is ALTER ROLE
// ... NOLOGIN plus ending the role's sessions. It never disables a superuser or
// the role it connects as: List reports them as protected, Disable refuses.
type PostgresConnector struct {
	Pool *pgxpool.Pool
	// Application lists the roles the DPP runs as (the worker's, the auditor's):
	// reported, never disabled, like the connector's own role.
	Application []string
}

func (c *PostgresConnector) Name() string              { return ConnectorPostgres }
func (c *PostgresConnector) Serves(system string) bool { return system == SystemPostgres }

// listRoles finds the login roles that reach any table of this database: a
// superuser, an owner or grantee (has_table_privilege follows inherited
// membership), or a member that can SET ROLE to a grantee (NOINHERIT membership).
// A role without CONNECT on the database reaches nothing.
const listRoles = `
WITH tabs AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
), privs AS (SELECT 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'::text AS p)
SELECT r.rolname, r.rolsuper, r.rolname IN (current_user, session_user)
  FROM pg_roles r
 WHERE r.rolcanlogin AND r.rolname NOT LIKE 'pg\_%'
   AND (r.rolsuper OR (has_database_privilege(r.oid, current_database(), 'CONNECT') AND (
        EXISTS (SELECT 1 FROM tabs, privs WHERE has_table_privilege(r.oid, tabs.oid, privs.p))
     OR EXISTS (SELECT 1 FROM pg_roles g, tabs, privs
                 WHERE g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')
                   AND has_table_privilege(g.oid, tabs.oid, privs.p)))))
 ORDER BY r.rolname`

// List returns the login roles that can reach the database's tables.
func (c *PostgresConnector) List(ctx context.Context) ([]Found, error) {
	rows, err := c.Pool.Query(ctx, listRoles)
	if err != nil {
		return nil, fmt.Errorf("access: postgres connector: list roles: %w", err)
	}
	defer rows.Close()
	var out []Found
	for rows.Next() {
		var name string
		var super, own bool
		if err := rows.Scan(&name, &super, &own); err != nil {
			return nil, fmt.Errorf("access: postgres connector: list roles: %w", err)
		}
		f := Found{System: SystemPostgres, Account: name}
		switch {
		case slices.Contains(c.Application, name):
			f.Protected = ProtectedApplication
		case own:
			f.Protected = ProtectedOwnRole
		case super:
			f.Protected = ProtectedSuperuser
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// protection says whether the role exists and why it may not be disabled.
func (c *PostgresConnector) protection(ctx context.Context, role string) (exists bool, why string, err error) {
	var super, own bool
	err = c.Pool.QueryRow(ctx, `SELECT rolsuper, rolname IN (current_user, session_user) FROM pg_roles WHERE rolname = $1`,
		role).Scan(&super, &own)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("access: postgres connector: read role %s: %w", role, err)
	}
	switch {
	case slices.Contains(c.Application, role):
		return true, ProtectedApplication, nil
	case own:
		return true, ProtectedOwnRole, nil
	case super:
		return true, ProtectedSuperuser, nil
	}
	return true, "", nil
}

// Disable makes the role NOLOGIN and ends its sessions. A role that does not
// exist is already disabled; a protected one is refused with ErrProtected.
func (c *PostgresConnector) Disable(ctx context.Context, system, role string) error {
	exists, why, err := c.protection(ctx, role)
	if err != nil || !exists {
		return err
	}
	if why != "" {
		return fmt.Errorf("%w: postgres role %s is %s", ErrProtected, role, why)
	}
	if _, err := c.Pool.Exec(ctx, `ALTER ROLE `+pgx.Identifier{role}.Sanitize()+` NOLOGIN`); err != nil {
		return fmt.Errorf("access: postgres connector: disable role %s: %w", role, err)
	}
	rows, err := c.Pool.Query(ctx, `SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity
		WHERE usename = $1 AND pid <> pg_backend_pid()`, role, terminateWaitMillis)
	if err != nil {
		return fmt.Errorf("access: postgres connector: end sessions of %s: %w", role, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ended bool
		if err := rows.Scan(&ended); err != nil {
			return fmt.Errorf("access: postgres connector: end sessions of %s: %w", role, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("access: postgres connector: end sessions of %s (the connector's role needs pg_signal_backend): %w", role, err)
	}
	return nil
}

// Disabled is true when the role cannot log in and has no session left (or does
// not exist).
func (c *PostgresConnector) Disabled(ctx context.Context, system, role string) (bool, error) {
	var disabled bool
	err := c.Pool.QueryRow(ctx, `SELECT NOT r.rolcanlogin AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = r.rolname)
		FROM pg_roles r WHERE r.rolname = $1`, role).Scan(&disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("access: postgres connector: check role %s: %w", role, err)
	}
	return disabled, nil
}

// Enable gives the role LOGIN back.
func (c *PostgresConnector) Enable(ctx context.Context, system, role string) error {
	exists, _, err := c.protection(ctx, role)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%w: postgres role %s does not exist", ErrUnknownAccount, role)
	}
	if _, err := c.Pool.Exec(ctx, `ALTER ROLE `+pgx.Identifier{role}.Sanitize()+` LOGIN`); err != nil {
		return fmt.Errorf("access: postgres connector: enable role %s: %w", role, err)
	}
	return nil
}
