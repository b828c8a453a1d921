// Package actor defines who may sign what the system records: people by an
// operator identifier (DPP_OPERATORS) and the system by its own names. An
// identifier is kept for years in certificates and the evidence log, which are
// never purged, so it must not be a name or an e-mail address.
package actor

import (
	"errors"
	"regexp"
	"slices"
)

// System names sign what the system does by itself.
const (
	OrderSync      = "order-sync"
	RetentionAudit = "retention-audit"
	TaxRecordSweep = "tax-record-sweep"
	// AccessReview revokes what nobody decided by a campaign's deadline.
	AccessReview = "access-review"
	// Lockout disables an account after too many failed logins.
	Lockout = "lockout"
	// CreditNotes issues the credit note of an order cancelled after its invoice.
	CreditNotes = "credit-notes"
)

// System lists the system names; operators may not take them.
var System = []string{OrderSync, RetentionAudit, TaxRecordSweep, AccessReview, Lockout, CreditNotes}

// MaxLength bounds an identifier.
const MaxLength = 64

var pattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)

// ErrNotAnID explains the form of an identifier; it never repeats the value.
var ErrNotAnID = errors.New(`must be an operator identifier (lower-case letters, digits, ".", "_", "-"; no "@"; at most 64 characters), not a name or e-mail address`)

// Valid checks the form of an identifier.
func Valid(id string) error {
	if !pattern.MatchString(id) {
		return ErrNotAnID
	}
	return nil
}

// IsSystem tells whether id is one of the system's own names.
func IsSystem(id string) bool { return slices.Contains(System, id) }
