package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/vault"
)

// Purge is the outcome of a Cryptographic Erase.
type Purge struct {
	PurgedAt     time.Time
	FieldsErased int
	Certificate  evidence.Record
}

// PurgeRequest says what to erase and why.
type PurgeRequest struct {
	AmazonOrderID string
	Reason        string // retention-expired, purge-now, cancelled, retention-audit
	Detail        string // the requester's reason code, if any
	RequestedBy   string
	DueAt         time.Time
}

// PurgeIdempotencyKey is the evidence key of an order's PII certificate.
func PurgeIdempotencyKey(orderID string) string { return "purge/" + PurposePII + "/" + orderID }

func taxPurgeIdempotencyKey(invoiceNumber string) string {
	return "purge/" + PurposeTaxRecord + "/" + invoiceNumber
}

// PurgePII crypto-erases an order's PII (NIST SP 800-88 Purge by Cryptographic
// Erase): its data key and every ciphertext are deleted, the deletion verified and
// a signed certificate appended to the evidence log, all in one transaction. The
// tax record keeps its own key and stays. Purging again returns the first
// certificate and changes nothing.
func (s *Service) PurgePII(ctx context.Context, req PurgeRequest) (*Purge, error) {
	id := req.AmazonOrderID
	var out Purge
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var purgedAt *time.Time
		err := tx.QueryRow(ctx, `SELECT purged_at FROM orders WHERE amazon_order_id = $1 FOR UPDATE`, id).Scan(&purgedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("purge %s: %w", id, ErrNotSealed)
		}
		if err != nil {
			return err
		}
		if purgedAt != nil {
			recs, err := evidence.Get(ctx, tx, id, evidence.KindCertificate)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.IdempotencyKey == PurgeIdempotencyKey(id) {
					out = Purge{PurgedAt: *purgedAt, Certificate: r}
					return nil
				}
			}
			return fmt.Errorf("purge %s: order is marked purged but has no certificate", id)
		}
		copies, err := s.copiesNote(ctx, tx, PurposePII, id)
		if err != nil {
			return err
		}
		erased, keyDigest, err := s.erase(ctx, tx, PurposePII, id)
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE orders SET purged_at = $2, purge_reason = $3 WHERE amazon_order_id = $1`,
			id, now, req.Reason); err != nil {
			return err
		}
		reason := req.Reason
		if req.Detail != "" {
			reason += " (" + req.Detail + ")"
		}
		notes := fmt.Sprintf("Reason: %s. Due at %s.", reason, req.DueAt.UTC().Format(time.RFC3339))
		if req.RequestedBy != "" {
			notes += " Requested by " + req.RequestedBy + "."
		}
		notes += " " + copies
		cert := s.certificate(now, id, keyRef(PurposePII, id), "Buyer PII of an Amazon order",
			fmt.Sprintf("AES-256-GCM data key (KMS-wrapped, SHA-256 of wrapped key %s) destroyed and %d sealed PII field(s) deleted; the order's VAT invoice is a tax record under its own key and is kept until its retention ends.", keyDigest, erased),
			notes)
		rec, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: evidence.KindCertificate, Subject: id, IdempotencyKey: PurgeIdempotencyKey(id), Body: cert,
		}, now)
		out = Purge{PurgedAt: now, FieldsErased: erased, Certificate: rec}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.Vault.Forget(vault.Context{OrderID: id, Purpose: PurposePII})
	// Verify again from outside the transaction: the key is gone, so nothing opens.
	if _, err := s.openPII(ctx, id); !errors.Is(err, ErrNoKey) {
		return nil, fmt.Errorf("purge %s: verification failed: PII key still loads (%v)", id, err)
	}
	return &out, nil
}

// erase deletes the ciphertext and the data key of one purpose of an order, and
// verifies inside the transaction that none remains. It returns how many sealed
// values were deleted and a digest of the destroyed wrapped key (for the
// certificate; the digest reveals nothing of the key).
func (s *Service) erase(ctx context.Context, tx pgx.Tx, purpose, orderID string) (int, string, error) {
	ref := keyRef(purpose, orderID)
	var wrapped []byte
	if err := tx.QueryRow(ctx, `SELECT wrapped_key FROM data_keys WHERE key_ref = $1`, ref).Scan(&wrapped); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, "", fmt.Errorf("erase %s: %w", ref, ErrNoKey)
		}
		return 0, "", err
	}
	digest := sha256.Sum256(wrapped)
	erased := 0
	switch purpose {
	case PurposePII:
		tag, err := tx.Exec(ctx, `DELETE FROM sealed_fields WHERE key_ref = $1`, ref)
		if err != nil {
			return 0, "", err
		}
		erased = int(tag.RowsAffected())
	case PurposeTaxRecord:
		tag, err := tx.Exec(ctx, `UPDATE invoices SET pdf_sealed = NULL, document_sealed = NULL, key_ref = NULL, purged_at = $2
			WHERE key_ref = $1`, ref, s.now())
		if err != nil {
			return 0, "", err
		}
		erased = int(tag.RowsAffected())
	case PurposeCreditNote:
		tag, err := tx.Exec(ctx, `UPDATE credit_notes SET pdf_sealed = NULL, key_ref = NULL, purged_at = $2
			WHERE key_ref = $1`, ref, s.now())
		if err != nil {
			return 0, "", err
		}
		erased = int(tag.RowsAffected())
	}
	if _, err := tx.Exec(ctx, `DELETE FROM data_keys WHERE key_ref = $1`, ref); err != nil {
		return 0, "", err
	}
	var left int
	if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM data_keys WHERE key_ref = $1)
		+ (SELECT count(*) FROM sealed_fields WHERE key_ref = $1)
		+ (SELECT count(*) FROM invoices WHERE key_ref = $1)
		+ (SELECT count(*) FROM credit_notes WHERE key_ref = $1)`, ref).Scan(&left); err != nil {
		return 0, "", err
	}
	if left != 0 {
		return 0, "", fmt.Errorf("erase %s: verification failed: %d row(s) remain", ref, left)
	}
	return erased, hex.EncodeToString(digest[:]), nil
}

func (s *Service) certificate(now time.Time, property, serial, media, details, notes string) evidence.Certificate {
	p := s.Policy
	return evidence.Certificate{
		PersonPerforming: evidence.Person{
			Name: "dpp worker (automated sanitization service)", Title: "Automated data protection controls",
			Organisation: p.Seller.Name, Location: p.Location, Contact: p.DPOContact,
		},
		Media: evidence.Media{
			MakeVendor: "PostgreSQL (sealed store) + AWS KMS", Model: "dpp sealed store",
			SerialNumber: serial, PropertyNumber: property,
			MediaType: "Logical: database rows encrypted with AES-256-GCM under a KMS-wrapped data key",
			Source:    "Amazon Selling Partner API", Classification: "Confidential: Amazon Information (" + media + ")",
			DataBackedUp: p.BackupLocation != "" && p.BackupLocation != "none", BackupLocation: p.BackupLocation,
		},
		Sanitization: evidence.Sanitization{
			MethodType: evidence.MethodTypePurge, MethodUsed: evidence.MethodCryptographicErase,
			Details: details, Tool: "github.com/plusranger/dpp", ToolVersion: p.ToolVersion,
			VerificationMethod:             "Within the erasing transaction, no data key, ciphertext or sealed document row with this key reference remains; after commit, loading the key fails. This verifies the live database; copies of the wrapped key in WAL and backups die with the KMS key named in the notes.",
			VerificationResult:             "Passed",
			PostSanitizationClassification: "Unclassified in the live database; backup copies stay Confidential until the KMS key named in the notes is deleted",
			Notes:                          notes,
		},
		Destination: "Storage remains in service; only the erased records' keys were destroyed",
		SignedAt:    now,
		Validation:  evidence.Validation{Note: "Awaiting validation by a second person"},
	}
}

// copiesNote says, for a purge certificate, which KMS keys still protect copies
// of the erased data key outside the live database (WAL, archives, snapshots,
// replicas, dumps) and when each key's deletion takes effect: the order's
// promise holds for every copy only once the last of them is deleted.
func (s *Service) copiesNote(ctx context.Context, tx pgx.Tx, purpose, orderID string) (string, error) {
	if s.Epochs == nil {
		return "Copies of the wrapped data key in WAL and backups stay decryptable for as long as the configured KMS key (DPP_KMS_KEY_ID) exists: it is never scheduled for deletion.", nil
	}
	keys, err := keyepochs.ProtectionOf(ctx, tx, orderID, purpose, s.Epochs.Timings.DeletionWindow)
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "The data key was wrapped by the configured KMS key (DPP_KMS_KEY_ID, epoch zero), which is never scheduled for deletion: copies in WAL and backups taken before it was re-wrapped stay decryptable until those backups expire.", nil
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		when := "takes effect on "
		if k.Planned {
			when = "is planned to take effect by "
		}
		parts[i] = fmt.Sprintf("%s (%s, %s): its deletion %s%s", k.Alias, k.KMSKeyID, k.State, when, k.DeletionTakesEffect.Format(time.RFC3339))
	}
	return "Copies of the wrapped data key in WAL, archives, snapshots, replicas and dumps stay protected by the KMS key(s) " +
		strings.Join(parts, "; ") + ". Every copy is undecryptable once the last of these deletions takes effect; each key's epoch certificate records it.", nil
}

// SweepTaxRecords crypto-erases up to limit tax records whose retention has
// ended (invoices, and orders' credit notes once the last of an order's is
// due), each in its own transaction with its certificate. It reports how many
// it purged and whether more are due.
func (s *Service) SweepTaxRecords(ctx context.Context, limit int) (int, bool, error) {
	purged := 0
	for _, purgeOne := range []func(context.Context) (bool, error){s.purgeOneTaxRecord, s.purgeOneCreditNoteKey} {
		for purged < limit {
			done, err := purgeOne(ctx)
			if err != nil {
				return purged, true, err
			}
			if !done {
				break
			}
			purged++
		}
	}
	var more bool
	err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM invoices WHERE purged_at IS NULL AND retain_until <= $1)
		OR EXISTS (`+creditNoteKeysDue+` LIMIT 1)`, s.now()).Scan(&more)
	return purged, more, err
}

// creditNoteKeysDue: orders whose credit notes are all past their retention
// ($1 is now). One key seals all of an order's credit notes, so it dies with
// the last of them.
const creditNoteKeysDue = `SELECT amazon_order_id FROM credit_notes WHERE purged_at IS NULL
	GROUP BY amazon_order_id HAVING max(retain_until) <= $1`

func creditNotePurgeIdempotencyKey(orderID string) string {
	return "purge/" + PurposeCreditNote + "/" + orderID
}

func (s *Service) purgeOneCreditNoteKey(ctx context.Context) (bool, error) {
	found := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var orderID string
		err := tx.QueryRow(ctx, creditNoteKeysDue+` ORDER BY max(retain_until) LIMIT 1`, s.now()).Scan(&orderID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// Two sweeps may pick the same order: the data key row serialises them,
		// and the loser finds nothing left.
		var wrapped []byte
		err = tx.QueryRow(ctx, `SELECT wrapped_key FROM data_keys WHERE key_ref = $1 FOR UPDATE SKIP LOCKED`,
			keyRef(PurposeCreditNote, orderID)).Scan(&wrapped)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		var numbers []string
		var lastDue time.Time
		if err := tx.QueryRow(ctx, `SELECT array_agg(credit_note_number ORDER BY series, number), max(retain_until)
			FROM credit_notes WHERE amazon_order_id = $1 AND purged_at IS NULL`, orderID).Scan(&numbers, &lastDue); err != nil {
			return err
		}
		found = true
		copies, err := s.copiesNote(ctx, tx, PurposeCreditNote, orderID)
		if err != nil {
			return err
		}
		erased, keyDigest, err := s.erase(ctx, tx, PurposeCreditNote, orderID)
		if err != nil {
			return err
		}
		now := s.now()
		cert := s.certificate(now, orderID, keyRef(PurposeCreditNote, orderID),
			"VAT credit note(s) "+strings.Join(numbers, ", ")+", tax records",
			fmt.Sprintf("AES-256-GCM data key (KMS-wrapped, SHA-256 of wrapped key %s) destroyed and %d sealed credit note document(s) deleted; the credit note numbers and amounts stay as a non-personal record of the gap-free series.", keyDigest, erased),
			"Reason: tax retention of the order's last credit note ended at "+lastDue.UTC().Format(time.RFC3339)+". "+copies)
		_, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: evidence.KindCertificate, Subject: orderID, IdempotencyKey: creditNotePurgeIdempotencyKey(orderID), Body: cert,
		}, now)
		s.Vault.Forget(vault.Context{OrderID: orderID, Purpose: PurposeCreditNote})
		return err
	})
	return found, err
}

func (s *Service) purgeOneTaxRecord(ctx context.Context) (bool, error) {
	found := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var orderID, number string
		var retainUntil time.Time
		err := tx.QueryRow(ctx, `SELECT amazon_order_id, invoice_number, retain_until FROM invoices
			WHERE purged_at IS NULL AND retain_until <= $1 ORDER BY retain_until LIMIT 1 FOR UPDATE SKIP LOCKED`,
			s.now()).Scan(&orderID, &number, &retainUntil)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		copies, err := s.copiesNote(ctx, tx, PurposeTaxRecord, orderID)
		if err != nil {
			return err
		}
		erased, keyDigest, err := s.erase(ctx, tx, PurposeTaxRecord, orderID)
		if err != nil {
			return err
		}
		now := s.now()
		cert := s.certificate(now, orderID, keyRef(PurposeTaxRecord, orderID), "VAT invoice "+number+", a tax record",
			fmt.Sprintf("AES-256-GCM data key (KMS-wrapped, SHA-256 of wrapped key %s) destroyed and %d sealed invoice document(s) deleted; the invoice number and amounts stay as a non-personal record of the gap-free series.", keyDigest, erased),
			"Reason: tax retention ended at "+retainUntil.UTC().Format(time.RFC3339)+". "+copies)
		_, _, err = evidence.Append(ctx, tx, s.Signer, evidence.Entry{
			Kind: evidence.KindCertificate, Subject: orderID, IdempotencyKey: taxPurgeIdempotencyKey(number), Body: cert,
		}, now)
		s.Vault.Forget(vault.Context{OrderID: orderID, Purpose: PurposeTaxRecord})
		return err
	})
	return found, err
}
