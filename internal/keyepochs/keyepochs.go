// Package keyepochs makes a purge hold against every copy of the database, not
// only the live one. Deleting an order's wrapped data key erases the live rows,
// but the same bytes sit in WAL, PITR archives, snapshots, replicas and dumps, and
// decrypt for as long as the KMS key that wrapped them exists. So PII data keys
// are wrapped by one KMS key per epoch (DPP_KEY_EPOCH, a day by default, by the
// time the data is sealed), and tax records by one KMS key per calendar year.
// When an epoch's lifetime ends (DPP_KEY_EPOCH_LIFETIME after it opened), the
// data keys of records that must outlive it are re-wrapped into the current
// epoch with KMS ReEncrypt (their plaintext never leaves KMS) and the epoch's key
// is scheduled for deletion (DPP_KEY_DELETION_WINDOW). Each step leaves signed
// evidence.
//
// Data keys wrapped by the configured key (DPP_KMS_KEY_ID) are "epoch zero":
// everything sealed before key epochs existed. They keep decrypting; KeyEpochs
// re-wraps the survivors among them into the current epoch, but never schedules
// the configured key for deletion: it also wraps the evidence signing key and
// the payload codec's keys.
package keyepochs

import (
	"fmt"
	"strconv"
	"time"
)

// Purposes of the data keys an epoch key wraps (the values of data_keys.purpose).
const (
	PurposePII       = "pii"
	PurposeTaxRecord = "tax-record"
	// PurposeCreditNote: an order's credit notes, a tax record under its own
	// data key, wrapped by the tax-record epoch key of its year (key_epochs
	// never has this purpose, its member rows do).
	PurposeCreditNote = "credit-note"
)

// DefaultAliasPrefix starts every epoch alias: alias/dpp/pii/<epoch start> and
// alias/dpp/tax/<YYYY>.
const DefaultAliasPrefix = "alias/dpp/"

// States of an epoch key (key_epochs.state).
const (
	StateActive          = "active"
	StateRetiring        = "retiring"
	StatePendingDeletion = "pending-deletion"
	StateDeleted         = "deleted"
)

// Timings are the epoch settings (internal/config checks that they keep the
// promise).
type Timings struct {
	// Epoch is how long one PII key wraps new data keys (DPP_KEY_EPOCH).
	Epoch time.Duration
	// Lifetime is how long after an epoch opened its key is retired
	// (DPP_KEY_EPOCH_LIFETIME).
	Lifetime time.Duration
	// DeletionWindow is the KMS pending-deletion window (DPP_KEY_DELETION_WINDOW),
	// whole days from 7 to 30.
	DeletionWindow time.Duration
}

// Default timings, as internal/config's defaults: a day, 23 days, 7 days. Data
// sealed at an epoch's start is re-wrapped or left to die 23 days later, and
// its key destroyed 7 days after that: 30 days.
var Default = Timings{Epoch: 24 * time.Hour, Lifetime: 552 * time.Hour, DeletionWindow: 168 * time.Hour}

// unixZero is where epochs are counted from: Temporal aligns an interval
// schedule to it, so the key-epochs schedule fires at each epoch's start.
var unixZero = time.Unix(0, 0).UTC()

// Start is the start of the epoch that contains at: every worker computes the
// same epoch for the same instant, and day-long epochs start at UTC midnight.
func (t Timings) Start(at time.Time) time.Time {
	return unixZero.Add(at.Sub(unixZero) / t.Epoch * t.Epoch)
}

// PIIAlias is the alias of the PII epoch that starts at start: its date for
// epochs of whole days, else YYYY-MM-DDTHHMMSSZ (KMS aliases allow no colon).
func (t Timings) PIIAlias(prefix string, start time.Time) string {
	if t.Epoch%(24*time.Hour) == 0 {
		return prefix + "pii/" + start.UTC().Format("2006-01-02")
	}
	return prefix + "pii/" + start.UTC().Format("2006-01-02T150405Z")
}

// TaxAlias is the alias of the key of a calendar year's tax records.
func TaxAlias(prefix string, year int) string { return prefix + "tax/" + strconv.Itoa(year) }

// WindowDays is the deletion window in KMS's whole days (rounded up).
func (t Timings) WindowDays() int32 {
	return int32((t.DeletionWindow + 24*time.Hour - 1) / (24 * time.Hour))
}

// Epoch is one epoch key, as key_epochs records it.
type Epoch struct {
	KMSKeyID string    `json:"kmsKeyId"`
	Alias    string    `json:"alias"`
	Purpose  string    `json:"purpose"`
	StartsAt time.Time `json:"startsAt"`
	EndsAt   time.Time `json:"endsAt"`
	// RetireAt is when its survivors are re-wrapped and its deletion scheduled
	// (tax: the year's end, and only once its last record has been purged).
	RetireAt            time.Time  `json:"retireAt"`
	State               string     `json:"state"`
	RewrappedOut        int        `json:"rewrappedOut"`
	DeletionScheduledAt *time.Time `json:"deletionScheduledAt,omitempty"`
	DeletionDate        *time.Time `json:"deletionDate,omitempty"`
	CertificateSeq      *int64     `json:"certificateSeq,omitempty"`
	DeletedAt           *time.Time `json:"deletedAt,omitempty"`
}

func (e Epoch) String() string { return fmt.Sprintf("%s (%s)", e.Alias, e.KMSKeyID) }

const epochColumns = `kms_key_id, alias, purpose, starts_at, ends_at, retire_at, state, rewrapped_out,
	deletion_scheduled_at, deletion_date, certificate_seq, deleted_at`

type scanner interface{ Scan(dest ...any) error }

// scanEpoch scans epochColumns, then the extra columns a query adds.
func scanEpoch(r scanner, extra ...any) (Epoch, error) {
	var e Epoch
	err := r.Scan(append([]any{&e.KMSKeyID, &e.Alias, &e.Purpose, &e.StartsAt, &e.EndsAt, &e.RetireAt, &e.State, &e.RewrappedOut,
		&e.DeletionScheduledAt, &e.DeletionDate, &e.CertificateSeq, &e.DeletedAt}, extra...)...)
	e.StartsAt, e.EndsAt, e.RetireAt = e.StartsAt.UTC(), e.EndsAt.UTC(), e.RetireAt.UTC()
	for _, p := range []**time.Time{&e.DeletionScheduledAt, &e.DeletionDate, &e.DeletedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return e, err
}
