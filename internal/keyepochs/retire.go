package keyepochs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/vault"
)

// Evidence kinds of key epochs. Their subject is the epoch's alias.
const (
	// KindEpochCertificate: the epoch key's deletion was scheduled; what it
	// wrapped and when every copy becomes undecryptable.
	KindEpochCertificate = "key-epoch-certificate"
	// KindEpochDeleted: DescribeKey no longer finds the key.
	KindEpochDeleted = "key-epoch-deleted"
)

// survivorsOf selects the PII data keys that must outlive their epoch key: the
// order is on hold, or not yet due for purge. A data key of an order
// past its due time and not held was meant to die; it dies with the key, whether
// or not its own purge has run yet ($1 is now). Callers add a filter on the key ($2 when
// they need one).
const survivorsOf = `SELECT d.key_ref, d.amazon_order_id, d.purpose, d.kms_key_id, d.wrapped_key
	FROM data_keys d JOIN orders o ON o.amazon_order_id = d.amazon_order_id
	WHERE d.purpose = 'pii' AND o.purged_at IS NULL
	  AND (o.on_hold OR o.purge_due_at IS NULL OR o.purge_due_at > $1)`

// underEpochZero: the data key is wrapped by a key that is no epoch key (the
// configured DPP_KMS_KEY_ID).
const underEpochZero = `d.kms_key_id NOT IN (SELECT kms_key_id FROM key_epochs)`

// Due is what a KeyEpochs run has to do.
type Due struct {
	// Retire are epochs past their lifetime (tax: past the year's end with no
	// record left) that are not yet scheduled for deletion.
	Retire []Epoch
	// Confirm are epochs pending deletion whose deletion date has passed.
	Confirm []Epoch
	// EpochZero: some PII data keys that must survive are still wrapped by the
	// configured key (sealed before key epochs).
	EpochZero bool
}

// Due lists the epochs a run must retire or confirm, oldest first. A tax-record
// epoch retires only once no data key is under it: invoices' and credit notes'
// keys alike are never re-wrapped (each dies with its own retention, and the
// epoch key after the last of them).
func (s *Service) Due(ctx context.Context) (*Due, error) {
	now := s.now()
	d := &Due{}
	rows, err := s.Pool.Query(ctx, `SELECT `+epochColumns+` FROM key_epochs e
		WHERE state IN ('active', 'retiring') AND retire_at <= $1
		  AND (purpose = 'pii' OR NOT EXISTS (SELECT 1 FROM data_keys d WHERE d.kms_key_id = e.kms_key_id))
		ORDER BY retire_at, alias`, now)
	if err != nil {
		return nil, fmt.Errorf("key epochs due: %w", err)
	}
	if d.Retire, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Epoch, error) { return scanEpoch(r) }); err != nil {
		return nil, fmt.Errorf("key epochs due: %w", err)
	}
	rows, err = s.Pool.Query(ctx, `SELECT `+epochColumns+` FROM key_epochs
		WHERE state = 'pending-deletion' AND deletion_date <= $1 ORDER BY deletion_date, alias`, now)
	if err != nil {
		return nil, fmt.Errorf("key epochs to confirm: %w", err)
	}
	if d.Confirm, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Epoch, error) { return scanEpoch(r) }); err != nil {
		return nil, fmt.Errorf("key epochs to confirm: %w", err)
	}
	err = s.Pool.QueryRow(ctx, `SELECT EXISTS (`+survivorsOf+` AND `+underEpochZero+`)`, now).Scan(&d.EpochZero)
	if err != nil {
		return nil, fmt.Errorf("key epoch zero: %w", err)
	}
	return d, nil
}

// Get returns one epoch by its key's ARN.
func (s *Service) Get(ctx context.Context, kmsKeyID string) (Epoch, error) {
	return scanEpoch(s.Pool.QueryRow(ctx, `SELECT `+epochColumns+` FROM key_epochs WHERE kms_key_id = $1`, kmsKeyID))
}

// BeginRetire closes an epoch: from its commit on, nothing new is wrapped by
// its key (Join refuses), so re-wrapping what is under it misses nothing.
// Closing a closed epoch changes nothing.
func (s *Service) BeginRetire(ctx context.Context, kmsKeyID string) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE key_epochs SET state = 'retiring' WHERE kms_key_id = $1 AND state = 'active'`, kmsKeyID)
	if err != nil {
		return fmt.Errorf("retire key epoch %s: %w", kmsKeyID, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Get(ctx, kmsKeyID); err != nil {
			return fmt.Errorf("retire key epoch %s: %w", kmsKeyID, err)
		}
	}
	s.forget(kmsKeyID)
	return nil
}

// Rewrap is the outcome of one re-wrap batch.
type Rewrap struct {
	// Rewrapped data keys moved into the current epoch.
	Rewrapped int `json:"rewrapped"`
	// Gone: purged (or moved by another attempt) between the read and the update.
	Gone int `json:"gone"`
	// Remaining: the batch was full; more may be left.
	Remaining bool `json:"remaining"`
	// Into is the alias of the epoch they went into.
	Into string `json:"into,omitempty"`
	// Unusable: KMS refuses the old key (pending deletion, disabled or gone,
	// as after a database restore from before its retirement): what is under
	// it can no longer be re-wrapped and dies with it.
	Unusable bool `json:"unusable,omitempty"`
}

// unusableKey reports whether KMS refused a ReEncrypt because its source key
// may not be used: pending deletion or otherwise not enabled, or gone.
func unusableKey(err error) bool {
	return isCode(err, "KMSInvalidStateException") || isCode(err, "DisabledException") || isCode(err, "NotFoundException")
}

// RewrapBatch re-wraps up to limit surviving PII data keys out of the epoch key
// from ("" for epoch zero, the configured key) into the current epoch's key,
// with KMS ReEncrypt: the data key's plaintext never leaves KMS. Each data key
// is updated in its own transaction, and only if it is still wrapped by from,
// so a retried batch, or a purge running at the same time, loses nothing and
// moves nothing twice. afterEach, if set, runs after each committed row
// (tests stop there to play a crash).
func (s *Service) RewrapBatch(ctx context.Context, from string, limit int, afterEach func(int)) (*Rewrap, error) {
	now := s.now()
	var rows pgx.Rows
	var err error
	if from == "" {
		rows, err = s.Pool.Query(ctx, survivorsOf+` AND `+underEpochZero+` ORDER BY d.key_ref LIMIT $2`, now, limit)
	} else {
		rows, err = s.Pool.Query(ctx, survivorsOf+` AND d.kms_key_id = $2 ORDER BY d.key_ref LIMIT $3`, now, from, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("re-wrap: list data keys: %w", err)
	}
	type dataKey struct {
		ref, orderID, purpose, kmsKeyID string
		wrapped                         []byte
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dataKey, error) {
		var k dataKey
		err := r.Scan(&k.ref, &k.orderID, &k.purpose, &k.kmsKeyID, &k.wrapped)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("re-wrap: list data keys: %w", err)
	}
	out := &Rewrap{Remaining: len(keys) == limit}
	if len(keys) == 0 {
		return out, nil
	}
	// The current epoch's key. Under test timings it may be the epoch being
	// retired only if the lifetime were shorter than an epoch, which config forbids.
	into, err := s.PIIKey(ctx, now)
	if err != nil {
		return nil, err
	}
	if into == from {
		return nil, fmt.Errorf("re-wrap out of %s: it is still the current epoch's key", from)
	}
	out.Into = s.Timings.PIIAlias(s.prefix(), s.Timings.Start(now))
	for i, k := range keys {
		ec := vault.Context{OrderID: k.orderID, Purpose: k.purpose}.EncryptionContext()
		re, err := s.KMS.ReEncrypt(ctx, &kms.ReEncryptInput{
			CiphertextBlob: k.wrapped, SourceKeyId: aws.String(k.kmsKeyID), DestinationKeyId: aws.String(into),
			SourceEncryptionContext: ec, DestinationEncryptionContext: ec,
		})
		if err != nil && unusableKey(err) && k.kmsKeyID == from {
			out.Unusable, out.Remaining = true, false
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("re-wrap data key %s: KMS ReEncrypt: %w", k.ref, err)
		}
		moved := false
		err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE data_keys SET kms_key_id = $2, wrapped_key = $3 WHERE key_ref = $1 AND kms_key_id = $4`,
				k.ref, aws.ToString(re.KeyId), re.CiphertextBlob, k.kmsKeyID)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			moved = true
			if err := s.Join(ctx, tx, aws.ToString(re.KeyId), k.orderID, k.purpose, "rewrapped"); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE key_epochs SET rewrapped_out = rewrapped_out + 1 WHERE kms_key_id = $1`, k.kmsKeyID)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("re-wrap data key %s: %w", k.ref, err)
		}
		if moved {
			out.Rewrapped++
		} else {
			out.Gone++
		}
		if afterEach != nil {
			afterEach(i)
		}
	}
	return out, nil
}

// Scheduled is the outcome of scheduling an epoch key's deletion.
type Scheduled struct {
	Epoch          Epoch `json:"epoch"`
	CertificateSeq int64 `json:"certificateSeq"`
	// Rewrapped: survivors this call re-wrapped before scheduling (stragglers a
	// crash or a late hold left behind).
	Rewrapped int `json:"rewrapped"`
}

// ErrEpochNotEmpty: a tax-year key still wraps tax records; it is deleted only
// after the sweep has purged the last of them.
var ErrEpochNotEmpty = errors.New("key epoch still wraps records that must survive")

// ScheduleDeletion retires an epoch key: it closes the epoch, re-wraps any
// survivor still under it, checks that none is left, calls KMS
// ScheduleKeyDeletion with the deletion window, and records the new state and
// the signed epoch certificate in one transaction. Calling it again (a retry
// after a crash anywhere in between) finishes the job and returns the same
// certificate: a key KMS already holds pending deletion is taken as scheduled,
// with KMS's deletion date.
func (s *Service) ScheduleDeletion(ctx context.Context, kmsKeyID string, batch int) (*Scheduled, error) {
	e, err := s.Get(ctx, kmsKeyID)
	if err != nil {
		return nil, fmt.Errorf("key epoch %s: %w", kmsKeyID, err)
	}
	if e.State == StatePendingDeletion || e.State == StateDeleted {
		return &Scheduled{Epoch: e, CertificateSeq: derefSeq(e.CertificateSeq)}, nil
	}
	if err := s.BeginRetire(ctx, kmsKeyID); err != nil {
		return nil, err
	}
	out := &Scheduled{}
	left, err := s.survivors(ctx, e)
	for err == nil && left > 0 {
		if e.Purpose != PurposePII {
			return nil, fmt.Errorf("key epoch %s: %d tax record(s) remain: %w", e.Alias, left, ErrEpochNotEmpty)
		}
		var r *Rewrap
		if r, err = s.RewrapBatch(ctx, kmsKeyID, batch, nil); err == nil {
			out.Rewrapped += r.Rewrapped
			if r.Unusable {
				break // KMS already refuses the key: nothing more can be saved
			}
			left, err = s.survivors(ctx, e)
		}
	}
	if err != nil {
		return nil, err
	}
	deletionDate, err := s.scheduleKMS(ctx, e)
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		cur, err := scanEpoch(tx.QueryRow(ctx, `SELECT `+epochColumns+` FROM key_epochs WHERE kms_key_id = $1 FOR UPDATE`, kmsKeyID))
		if err != nil {
			return err
		}
		if cur.State != StateRetiring {
			out.Epoch, out.CertificateSeq = cur, derefSeq(cur.CertificateSeq)
			return nil
		}
		now := s.now()
		cert, err := s.certificate(ctx, tx, cur, now, deletionDate)
		if err != nil {
			return err
		}
		rec, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: KindEpochCertificate, Subject: cur.Alias,
			IdempotencyKey: "key-epoch/" + cur.KMSKeyID + "/scheduled", Body: cert}, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE key_epochs SET state = 'pending-deletion', deletion_scheduled_at = $2,
			deletion_date = $3, certificate_seq = $4 WHERE kms_key_id = $1`, kmsKeyID, now, deletionDate, rec.Seq); err != nil {
			return err
		}
		out.CertificateSeq = rec.Seq
		out.Epoch, err = scanEpoch(tx.QueryRow(ctx, `SELECT `+epochColumns+` FROM key_epochs WHERE kms_key_id = $1`, kmsKeyID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key epoch %s: record deletion: %w", e.Alias, err)
	}
	return out, nil
}

func derefSeq(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// survivors counts the data keys under the epoch key that must not die with it:
// for PII those survivorsOf selects, for tax records every one.
func (s *Service) survivors(ctx context.Context, e Epoch) (int, error) {
	var n int
	var err error
	if e.Purpose == PurposePII {
		err = s.Pool.QueryRow(ctx, `SELECT count(*) FROM (`+survivorsOf+` AND d.kms_key_id = $2) s`, s.now(), e.KMSKeyID).Scan(&n)
	} else {
		err = s.Pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE kms_key_id = $1`, e.KMSKeyID).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("key epoch %s: count survivors: %w", e.Alias, err)
	}
	return n, nil
}

// scheduleKMS calls ScheduleKeyDeletion and returns the deletion date. AWS
// answers KMSInvalidStateException for a key already pending deletion (a retry
// after a crash that followed the call); DescribeKey then gives its date.
func (s *Service) scheduleKMS(ctx context.Context, e Epoch) (time.Time, error) {
	out, err := s.KMS.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{
		KeyId: aws.String(e.KMSKeyID), PendingWindowInDays: aws.Int32(s.Timings.WindowDays())})
	if err == nil && out.DeletionDate != nil {
		return out.DeletionDate.UTC(), nil
	}
	if err != nil && !isCode(err, "KMSInvalidStateException") {
		return time.Time{}, fmt.Errorf("key epoch %s: KMS ScheduleKeyDeletion: %w", e.Alias, err)
	}
	d, derr := s.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(e.KMSKeyID)})
	if derr != nil {
		return time.Time{}, fmt.Errorf("key epoch %s: KMS ScheduleKeyDeletion: %v; DescribeKey: %w", e.Alias, err, derr)
	}
	if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || d.KeyMetadata.DeletionDate == nil {
		return time.Time{}, fmt.Errorf("key epoch %s: KMS ScheduleKeyDeletion: %v; the key is %s", e.Alias, err, d.KeyMetadata.KeyState)
	}
	return d.KeyMetadata.DeletionDate.UTC(), nil
}

// Confirmation is the outcome of checking a key pending deletion.
type Confirmation struct {
	Deleted bool `json:"deleted"`
	// KMSState is what DescribeKey said: NotFound once deleted, PendingDeletion
	// while waiting, anything else means someone cancelled the deletion.
	KMSState    string `json:"kmsState"`
	EvidenceSeq int64  `json:"evidenceSeq,omitempty"`
}

// ConfirmDeletion asks KMS whether an epoch key pending deletion is gone. When
// DescribeKey no longer finds it, the epoch is marked deleted and a signed
// follow-up to its certificate is appended (once).
func (s *Service) ConfirmDeletion(ctx context.Context, kmsKeyID string) (*Confirmation, error) {
	e, err := s.Get(ctx, kmsKeyID)
	if err != nil {
		return nil, fmt.Errorf("key epoch %s: %w", kmsKeyID, err)
	}
	if e.State == StateDeleted {
		return &Confirmation{Deleted: true, KMSState: "NotFound"}, nil
	}
	if e.State != StatePendingDeletion {
		return nil, fmt.Errorf("key epoch %s is %s: only a key pending deletion can be confirmed deleted", e.Alias, e.State)
	}
	d, err := s.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(kmsKeyID)})
	if err == nil {
		return &Confirmation{KMSState: string(d.KeyMetadata.KeyState)}, nil
	}
	if !isCode(err, "NotFoundException") {
		return nil, fmt.Errorf("key epoch %s: KMS DescribeKey: %w", e.Alias, err)
	}
	out := &Confirmation{Deleted: true, KMSState: "NotFound"}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		now := s.now()
		rec, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: KindEpochDeleted, Subject: e.Alias,
			IdempotencyKey: "key-epoch/" + e.KMSKeyID + "/deleted", Body: DeletedEntry{
				KMSKeyID: e.KMSKeyID, Alias: e.Alias, CertificateSeq: derefSeq(e.CertificateSeq),
				DeletionDate: *e.DeletionDate, ConfirmedAt: now,
				Verification: "KMS DescribeKey answered NotFoundException: the key and every copy of its key material are destroyed, so no copy of a data key it wrapped (database, WAL, archives, snapshots, replicas, dumps) can be decrypted.",
			}}, now)
		if err != nil {
			return err
		}
		out.EvidenceSeq = rec.Seq
		_, err = tx.Exec(ctx, `UPDATE key_epochs SET state = 'deleted', deleted_at = $2 WHERE kms_key_id = $1 AND state = 'pending-deletion'`,
			kmsKeyID, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key epoch %s: record deletion: %w", e.Alias, err)
	}
	return out, nil
}

// Certificate is the body of an epoch certificate (KindEpochCertificate): the
// Cryptographic Erase of every copy of the data keys an epoch key wrapped.
// Ids, counts and a hash only: never PII.
type Certificate struct {
	KMSKeyID string    `json:"kmsKeyId"`
	Alias    string    `json:"alias"`
	Purpose  string    `json:"purpose"`
	Opened   time.Time `json:"epochStart"`
	Closed   time.Time `json:"epochEnd"`
	// RecordsSealed: data keys sealed under the key; RecordsRewrappedIn: moved
	// into it from older epochs; RecordsRewrappedOut: survivors moved out of it
	// into a later epoch before its deletion.
	RecordsSealed       int `json:"recordsSealed"`
	RecordsRewrappedIn  int `json:"recordsRewrappedIn"`
	RecordsRewrappedOut int `json:"recordsRewrappedOut"`
	// RecordsLeftToDie: data keys still wrapped by it when its deletion was
	// scheduled: of orders past their purge time and not held, or, when KMS
	// already refused the key (a database restored from before its
	// retirement), any that could no longer be re-wrapped.
	RecordsLeftToDie int `json:"recordsLeftToDie"`
	// OrderIDsSHA256 is the SHA-256 of the ids of every order whose data key it
	// wrapped, sorted and each followed by a newline.
	OrderIDsSHA256      string    `json:"orderIdsSha256"`
	Orders              int       `json:"orders"`
	DeletionScheduledAt time.Time `json:"deletionScheduledAt"`
	DeletionTakesEffect time.Time `json:"deletionTakesEffect"`
	MethodType          string    `json:"methodType"`
	MethodUsed          string    `json:"methodUsed"`
	Statement           string    `json:"statement"`
}

// DeletedEntry is the body of the follow-up entry (KindEpochDeleted).
type DeletedEntry struct {
	KMSKeyID       string    `json:"kmsKeyId"`
	Alias          string    `json:"alias"`
	CertificateSeq int64     `json:"certificateSeq"`
	DeletionDate   time.Time `json:"deletionDate"`
	ConfirmedAt    time.Time `json:"confirmedAt"`
	Verification   string    `json:"verification"`
}

func (s *Service) certificate(ctx context.Context, tx pgx.Tx, e Epoch, now, deletionDate time.Time) (Certificate, error) {
	c := Certificate{KMSKeyID: e.KMSKeyID, Alias: e.Alias, Purpose: e.Purpose, Opened: e.StartsAt, Closed: e.EndsAt,
		RecordsRewrappedOut: e.RewrappedOut, DeletionScheduledAt: now, DeletionTakesEffect: deletionDate,
		MethodType: evidence.MethodTypePurge, MethodUsed: evidence.MethodCryptographicErase}
	if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE how = 'sealed'), count(*) FILTER (WHERE how = 'rewrapped')
		FROM key_epoch_members WHERE kms_key_id = $1`, e.KMSKeyID).Scan(&c.RecordsSealed, &c.RecordsRewrappedIn); err != nil {
		return c, err
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE kms_key_id = $1`, e.KMSKeyID).Scan(&c.RecordsLeftToDie); err != nil {
		return c, err
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT amazon_order_id FROM key_epoch_members WHERE kms_key_id = $1 ORDER BY 1`, e.KMSKeyID)
	if err != nil {
		return c, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return c, err
	}
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id + "\n"))
	}
	c.Orders, c.OrderIDsSHA256 = len(ids), hex.EncodeToString(h.Sum(nil))
	c.Statement = fmt.Sprintf("KMS key %s (%s) wrapped the %s data keys of %d order(s) sealed from %s to %s. "+
		"%d survivor(s) were re-wrapped out of it with KMS ReEncrypt before its deletion was scheduled; "+
		"from %s KMS refuses every use of it, and on %s it destroys it, so every copy of a data key it wrapped "+
		"(live database, WAL, PITR archives, snapshots, replicas, dumps) becomes undecryptable for good.",
		e.Alias, e.KMSKeyID, e.Purpose, c.Orders, e.StartsAt.Format(time.RFC3339), e.EndsAt.Format(time.RFC3339),
		c.RecordsRewrappedOut, now.Format(time.RFC3339), deletionDate.Format(time.RFC3339))
	return c, nil
}

// Protection is an epoch key that wrapped an order's data key at some time,
// and so still protects copies of it in backups until it is deleted.
type Protection struct {
	Epoch
	How string `json:"how"` // sealed or rewrapped
	// DeletionTakesEffect is the KMS deletion date once scheduled, else the
	// planned one (retirement + the deletion window).
	DeletionTakesEffect time.Time `json:"deletionTakesEffect"`
	Planned             bool      `json:"planned"`
}

// Querier is what ProtectionOf reads with (a pool, a transaction, the
// auditor's read-only pool).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ProtectionOf lists the epoch keys that ever wrapped the order's data key of
// the purpose, oldest first. window is DPP_KEY_DELETION_WINDOW, for the planned
// dates of keys not yet scheduled (the auditor, who has no configuration, gives
// Default's).
func ProtectionOf(ctx context.Context, q Querier, orderID, purpose string, window time.Duration) ([]Protection, error) {
	rows, err := q.Query(ctx, `SELECT `+epochColumns+`, how FROM key_epochs
		JOIN (SELECT kms_key_id AS member_of, how FROM key_epoch_members WHERE amazon_order_id = $1 AND purpose = $2) m
		ON m.member_of = kms_key_id ORDER BY starts_at, alias`, orderID, purpose)
	if err != nil {
		return nil, fmt.Errorf("key epochs of %s: %w", orderID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Protection, error) {
		var p Protection
		var err error
		if p.Epoch, err = scanEpoch(r, &p.How); err != nil {
			return p, err
		}
		e := &p.Epoch
		if e.DeletionDate != nil {
			p.DeletionTakesEffect = e.DeletionDate.UTC()
		} else {
			p.DeletionTakesEffect, p.Planned = e.RetireAt.Add(window), true
		}
		return p, nil
	})
}
