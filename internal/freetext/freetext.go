// Package freetext keeps what people write in their own words (the reason for
// keeping a flagged account, a duty's completion note) out of the evidence log.
//
// The evidence log is append-only and can never be erased, and a form that asks
// people to name no one cannot make them. So each text is sealed under a data key
// of its own (AES-256-GCM, wrapped by KMS) in free_texts, and the evidence entry
// carries only the text's ref. Once the text's retention has passed, EraseDue
// crypto-erases it (wrapped key and ciphertext deleted in one transaction with a
// free-text-erased evidence entry); readers then show "erased on <date>".
//
// Nothing here logs or returns a text except Read with a vault, for showing.
package freetext

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/vault"
)

// Kinds of text, stored with each so an auditor can count them.
const (
	KindAccessReason = "access-keep-reason"
	KindDutyNote     = "duty-note"
	// KindIncidentNote: a note on an incident's timeline (a stage's note, the
	// edited notification, a false-positive reason, lessons learned).
	KindIncidentNote = "incident-note"
)

// KindErased is the evidence kind of a text's Cryptographic Erase.
const KindErased = "free-text-erased"

// RetentionMonths is how long a text is kept. The texts justify decisions of
// the access review and the compliance calendar, which Amazon's auditors look at
// a year at a time (the policy's annual risk assessment and audit cycle); one
// month more covers the audit itself. After that the decision and who made it
// stay in the evidence log; only the words go.
const RetentionMonths = 13

// RetainUntil is when a text recorded at is erased.
func RetainUntil(at time.Time) time.Time { return at.UTC().AddDate(0, RetentionMonths, 0) }

// purpose names the data keys in KMS's encryption context.
const purpose = "free-text"

func keyContext(ref string) vault.Context {
	return vault.Context{OrderID: "free-text:" + ref, Purpose: purpose}
}

// Store seals, opens and erases texts.
type Store struct {
	Pool   *pgxpool.Pool
	Vault  *vault.Vault
	Signer *evidence.Signer
	// Now is the clock of erasures; nil means time.Now.
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Sealed is a text sealed in memory, to be stored by Insert inside the
// transaction that appends the evidence entry referring to it.
type Sealed struct {
	Ref, Kind, Subject string
	RecordedAt         time.Time
	kmsKeyID           string
	wrapped, sealed    []byte
}

// Seal seals text under a fresh data key. ref names it for good (derive it from
// the evidence entry's idempotency key, so a retried step seals the same ref and
// Insert keeps the first); subject is the evidence subject it belongs to.
func (s *Store) Seal(ctx context.Context, kind, ref, subject, text string, at time.Time) (*Sealed, error) {
	if s == nil || s.Vault == nil {
		return nil, errors.New("free text: no vault to seal it with")
	}
	if kind == "" || !RefPattern.MatchString(ref) || subject == "" || at.IsZero() {
		return nil, errors.New("free text: kind, an id-like ref, subject and time are required")
	}
	k, err := s.Vault.NewDataKey(ctx, keyContext(ref))
	if err != nil {
		return nil, fmt.Errorf("free text %s: data key: %w", ref, err)
	}
	defer k.Destroy()
	sealed, err := k.Seal("text", []byte(text))
	if err != nil {
		return nil, fmt.Errorf("free text %s: %w", ref, err)
	}
	return &Sealed{Ref: ref, Kind: kind, Subject: subject, RecordedAt: at.UTC(), kmsKeyID: k.KMSKeyID,
		wrapped: k.Wrapped, sealed: sealed}, nil
}

// Insert stores x in tx; a ref stored before keeps its first text.
func (x *Sealed) Insert(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `INSERT INTO free_texts (ref, kind, subject, recorded_at, retain_until, kms_key_id, wrapped_key, text_sealed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (ref) DO NOTHING`,
		x.Ref, x.Kind, x.Subject, x.RecordedAt, RetainUntil(x.RecordedAt), x.kmsKeyID, x.wrapped, x.sealed)
	if err != nil {
		return fmt.Errorf("free text %s: store: %w", x.Ref, err)
	}
	return nil
}

// Save stores x on its own, for a text sealed where it is written (a Slack
// form) so that only its ref travels on, through a workflow's history, to the
// evidence entry. A text that then goes nowhere is erased with Erase.
func (s *Store) Save(ctx context.Context, x *Sealed) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { return x.Insert(ctx, tx) })
}

// RefPattern is what a ref looks like: ids and separators, never words of a text.
var RefPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$`)

// Shown is a text as a reader shows it.
type Shown struct {
	Ref         string     `json:"ref"`
	Text        string     `json:"text,omitempty"`
	RetainUntil time.Time  `json:"retainUntil"`
	ErasedAt    *time.Time `json:"erasedAt,omitempty"`
	// Opened is false when the reader had no key to open a text that exists
	// (the auditor's role reads only whether and until when it exists).
	Opened bool `json:"opened"`
}

// String is the text, "erased on <date>", or, for a reader without a key,
// "sealed until <date>".
func (sh Shown) String() string {
	switch {
	case sh.ErasedAt != nil:
		return "erased on " + sh.ErasedAt.UTC().Format(time.DateOnly)
	case sh.Opened:
		return sh.Text
	default:
		return "sealed until " + sh.RetainUntil.UTC().Format(time.DateOnly) + " (ref " + sh.Ref + ")"
	}
}

// ErrNotFound: no text with that ref.
var ErrNotFound = errors.New("free text: no such text")

// Read returns the text ref names. With v nil it reads only what dpp_auditor
// may (whether the text exists and until when), without opening it.
func Read(ctx context.Context, q evidence.Querier, v *vault.Vault, ref string) (Shown, error) {
	sh := Shown{Ref: ref}
	err := q.QueryRow(ctx, `SELECT retain_until, erased_at FROM free_texts WHERE ref = $1`, ref).Scan(&sh.RetainUntil, &sh.ErasedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sh, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	if err != nil || sh.ErasedAt != nil || v == nil {
		return sh, err
	}
	var kmsKeyID *string
	var wrapped, sealed []byte
	if err := q.QueryRow(ctx, `SELECT kms_key_id, wrapped_key, text_sealed FROM free_texts WHERE ref = $1`, ref).
		Scan(&kmsKeyID, &wrapped, &sealed); err != nil {
		return sh, fmt.Errorf("free text %s: %w", ref, err)
	}
	if kmsKeyID == nil {
		// Erased between the two reads.
		return Read(ctx, q, nil, ref)
	}
	k, err := v.OpenDataKey(ctx, keyContext(ref), *kmsKeyID, wrapped)
	if err != nil {
		return sh, fmt.Errorf("free text %s: open key: %w", ref, err)
	}
	defer k.Destroy()
	text, err := k.Open("text", sealed)
	if err != nil {
		return sh, fmt.Errorf("free text %s: open: %w", ref, err)
	}
	sh.Text, sh.Opened = string(text), true
	return sh, nil
}

// Read is Read with the store's pool and vault.
func (s *Store) Read(ctx context.Context, ref string) (Shown, error) {
	return Read(ctx, s.Pool, s.Vault, ref)
}

// Erase crypto-erases one text now, whatever its retention (a text whose
// decision was refused); erasing it again changes nothing.
func (s *Store) Erase(ctx context.Context, ref string) error {
	_, err := s.erase(ctx, ref, s.now())
	return err
}

// EraseDue crypto-erases up to limit texts whose retention has passed, each in
// its own transaction with its evidence entry; more is true when others are
// still due. Erasing a text again changes nothing.
func (s *Store) EraseDue(ctx context.Context, limit int) (n int, more bool, err error) {
	if limit <= 0 {
		return 0, false, errors.New("free text: erase: limit must be positive")
	}
	now := s.now()
	rows, err := s.Pool.Query(ctx, `SELECT ref FROM free_texts WHERE erased_at IS NULL AND retain_until <= $1
		ORDER BY retain_until, ref LIMIT $2`, now, limit+1)
	if err != nil {
		return 0, false, fmt.Errorf("free text: due: %w", err)
	}
	refs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, false, fmt.Errorf("free text: due: %w", err)
	}
	if len(refs) > limit {
		refs, more = refs[:limit], true
	}
	for _, ref := range refs {
		erased, err := s.erase(ctx, ref, now)
		if err != nil {
			return n, more, err
		}
		if erased {
			n++
		}
	}
	return n, more, nil
}

func (s *Store) erase(ctx context.Context, ref string, now time.Time) (bool, error) {
	erased := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var kind, subject string
		var recordedAt, retainUntil time.Time
		var kmsKeyID *string
		err := tx.QueryRow(ctx, `SELECT kind, subject, recorded_at, retain_until, kms_key_id FROM free_texts
			WHERE ref = $1 FOR UPDATE`, ref).Scan(&kind, &subject, &recordedAt, &retainUntil, &kmsKeyID)
		if err != nil || kmsKeyID == nil {
			return err
		}
		// Both copies of the key material go in the same statement; nothing
		// that could open the text is left in the row.
		if _, err := tx.Exec(ctx, `UPDATE free_texts SET kms_key_id = NULL, wrapped_key = NULL, text_sealed = NULL,
			erased_at = $2 WHERE ref = $1`, ref, now); err != nil {
			return err
		}
		var left bool
		if err := tx.QueryRow(ctx, `SELECT wrapped_key IS NOT NULL OR text_sealed IS NOT NULL FROM free_texts WHERE ref = $1`,
			ref).Scan(&left); err != nil || left {
			return errors.Join(err, errors.New("key or ciphertext still present after erase"))
		}
		_, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: KindErased, Subject: subject,
			IdempotencyKey: KindErased + "/" + ref, Body: map[string]any{
				"ref": ref, "textKind": kind, "recordedAt": recordedAt.UTC(), "retainUntil": retainUntil.UTC(),
				"erasedAt": now.UTC(), "kmsKeyId": *kmsKeyID,
				"method": "Cryptographic Erase: the text's wrapped data key and its ciphertext deleted",
			}}, now)
		erased = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("free text %s: erase: %w", ref, err)
	}
	return erased, nil
}
