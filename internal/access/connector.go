package access

import (
	"context"
	"fmt"
	"slices"
)

// Connector names.
const (
	ConnectorPostgres = "postgres"
	ConnectorRegistry = "registry"
)

// Found is an account a connector found in a system.
type Found struct {
	System   string
	Account  string
	Disabled bool
	// Protected says why the connector will never disable it ("superuser",
	// "connector's own role"); empty for an ordinary account.
	Protected string
}

// Connector lists, disables and checks the accounts of the systems it serves.
// Disable must be idempotent; Disabled asks the system itself, so a caller
// verifies a disable by asking again. An account that no longer exists counts as
// disabled: nobody can log in with it.
type Connector interface {
	Name() string
	// Serves tells whether this connector owns the system's accounts.
	Serves(system string) bool
	List(ctx context.Context) ([]Found, error)
	Disable(ctx context.Context, system, account string) error
	Disabled(ctx context.Context, system, account string) (bool, error)
}

// Enabler is a connector that can give an account its access back (lockout:
// only after the DPO approved).
type Enabler interface {
	Enable(ctx context.Context, system, account string) error
}

// Manual is a connector whose Disable only asks a person to do it: Disabled turns
// true when they confirm. The workflows send that person a task.
type Manual interface {
	Manual() bool
}

// Confirmer is a manual connector that records a person's confirmation.
type Confirmer interface {
	Confirm(ctx context.Context, system, account, by string) error
}

// IsManual tells whether c disables by hand.
func IsManual(c Connector) bool {
	m, ok := c.(Manual)
	return ok && m.Manual()
}

// Connectors is every connector, the registry last: it serves every system no
// other connector does.
type Connectors []Connector

// For returns the connector serving system.
func (cs Connectors) For(system string) (Connector, error) {
	for _, c := range cs {
		if c.Serves(system) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("access: no connector serves system %q", system)
}

// ByName returns the connector with this name.
func (cs Connectors) ByName(name string) (Connector, bool) {
	i := slices.IndexFunc(cs, func(c Connector) bool { return c.Name() == name })
	if i < 0 {
		return nil, false
	}
	return cs[i], true
}

// RegistryConnector serves the systems whose accounts people disable by hand
// (every system no other connector serves): it lists the registry's accounts,
// Disable records that someone was asked, and Disabled is true once a person
// confirmed it (Confirm).
type RegistryConnector struct {
	Registry *Registry
	// Automatic lists the systems other connectors serve.
	Automatic []string
}

func (c *RegistryConnector) Name() string              { return ConnectorRegistry }
func (c *RegistryConnector) Manual() bool              { return true }
func (c *RegistryConnector) Serves(system string) bool { return !slices.Contains(c.Automatic, system) }

func (c *RegistryConnector) unknown(system, account string) error {
	return fmt.Errorf("%w: %s/%s is not in the registry", ErrUnknownAccount, system, account)
}

// List returns the registry's accounts of the systems this connector serves.
func (c *RegistryConnector) List(ctx context.Context) ([]Found, error) {
	all, err := c.Registry.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, a := range all {
		if c.Serves(a.System) {
			out = append(out, Found{System: a.System, Account: a.Account, Disabled: a.DisabledAt != nil})
		}
	}
	return out, nil
}

// Disable records that the account's disabling was requested (the first time only).
func (c *RegistryConnector) Disable(ctx context.Context, system, account string) error {
	tag, err := c.Registry.Pool.Exec(ctx, `UPDATE accounts SET disable_requested_at = coalesce(disable_requested_at, $3)
		WHERE system = $1 AND account = $2`, system, account, c.Registry.now())
	if err != nil {
		return fmt.Errorf("access: registry disable %s/%s: %w", system, account, err)
	}
	if tag.RowsAffected() == 0 {
		return c.unknown(system, account)
	}
	return nil
}

// Disabled is true once someone confirmed the account disabled.
func (c *RegistryConnector) Disabled(ctx context.Context, system, account string) (bool, error) {
	a, err := c.Registry.Account(ctx, system, account)
	if err != nil {
		return false, err
	}
	return a.DisabledAt != nil, nil
}

// Enable clears the confirmation: the account is in use again.
func (c *RegistryConnector) Enable(ctx context.Context, system, account string) error {
	tag, err := c.Registry.Pool.Exec(ctx, `UPDATE accounts SET disable_requested_at = NULL, disabled_at = NULL, disabled_by = NULL
		WHERE system = $1 AND account = $2`, system, account)
	if err != nil {
		return fmt.Errorf("access: registry enable %s/%s: %w", system, account, err)
	}
	if tag.RowsAffected() == 0 {
		return c.unknown(system, account)
	}
	return nil
}

// Confirm records that person 'by' disabled the account by hand. Confirming again
// keeps the first confirmation.
func (c *RegistryConnector) Confirm(ctx context.Context, system, account, by string) error {
	tag, err := c.Registry.Pool.Exec(ctx, `UPDATE accounts SET disabled_at = coalesce(disabled_at, $3),
		disabled_by = coalesce(disabled_by, $4), disable_requested_at = coalesce(disable_requested_at, $3)
		WHERE system = $1 AND account = $2`, system, account, c.Registry.now(), by)
	if err != nil {
		return fmt.Errorf("access: registry confirm %s/%s: %w", system, account, err)
	}
	if tag.RowsAffected() == 0 {
		return c.unknown(system, account)
	}
	return nil
}
