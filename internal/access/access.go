// Package access is the access registry and what acts on it: the people and
// accounts HR exports (`starter access import`), the connectors that list, disable
// and check accounts in real systems, the detection of orphaned and shared
// accounts the quarterly review shows, and lockout after repeated failed logins.
//
// Staff names and e-mail addresses are personal data: they are sealed in the
// people table under a per-person KMS data key and never leave this package in
// plaintext. Everything it returns, logs or puts in errors is ids: person ids,
// Slack user ids, system and account names.
package access

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/vault"
)

// PurposeStaff is the vault purpose of the data key that seals a person's name and
// e-mail; its context's id is "person/<id>".
const PurposeStaff = "staff"

// Sealed field names of a person.
const (
	fieldName  = "name"
	fieldEmail = "email"
)

// Person statuses (people.status).
const (
	StatusActive     = "active"
	StatusTerminated = "terminated"
)

// Evidence kinds this package and the access workflows append. Subjects are
// workflow ids (access-review-<campaign>, offboarding-<personId>) or
// "<system>/<account>" for lockouts; bodies carry ids only.
const (
	KindDecision   = "access-review-decision"
	KindExecution  = "access-review-execution"
	KindOffboard   = "offboarding-disable"
	KindBreach     = "offboarding-breach"
	KindLockout    = "access-lockout"
	KindReenable   = "access-reenable"
	KindEscalation = "access-escalation"
	KindExtension  = "access-review-extension"
)

// Errors callers tell apart. Their messages never carry personal data.
var (
	ErrUnknownPerson  = errors.New("unknown person id")
	ErrUnknownAccount = errors.New("unknown account")
	// ErrProtected: the connector refuses to disable this account (a superuser,
	// or the role the connector itself connects as); it reports it instead.
	ErrProtected = errors.New("the connector never disables this account")
)

// Person is what may be known of a person outside the sealed store.
type Person struct {
	ID           string
	SlackUserID  string // empty: not in Slack
	ManagerID    string // empty: no manager
	Status       string
	TerminatedAt *time.Time
}

// Account is a registry row.
type Account struct {
	System             string
	Account            string
	PersonID           string // empty: mapped to nobody
	AmazonData         bool
	Service            bool
	DisableRequestedAt *time.Time
	DisabledAt         *time.Time
	DisabledBy         string
}

// Registry is the access registry in PostgreSQL.
type Registry struct {
	Pool  *pgxpool.Pool
	Vault *vault.Vault
	// Signer signs the evidence of lockouts and re-enables; nil where no evidence is written.
	Signer *evidence.Signer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func personContext(id string) vault.Context {
	return vault.Context{OrderID: "person/" + id, Purpose: PurposeStaff}
}
