// Package evidence is the signed, hash-chained, append-only evidence log: the
// certificates of sanitization and other records an auditor can check.
//
// Every entry is written inside the caller's transaction (so, for example, a
// purge's deletes and its certificate commit together or not at all), gets the next
// sequence number under a lock on the single evidence_head row, and is chained to
// its predecessor by hash:
//
//	hash      = SHA-256(encode("dpp-evidence-v1", seq, kind, subject,
//	                           idempotency_key, recorded_at, body, prev_hash))
//	signature = Ed25519(signing key, hash)
//
// where encode writes each element as a 4-byte big-endian length followed by its
// bytes; seq is 8 bytes big-endian, recorded_at is RFC 3339 with nanoseconds in
// UTC (time.RFC3339Nano; timestamps are truncated to microseconds, Postgres's
// precision, before hashing), body is the exact JSON stored, and the first entry's
// prev_hash is 32 zero bytes. Database triggers reject UPDATE, DELETE and
// TRUNCATE on evidence_log, and any INSERT that does not extend the chain (seq =
// head seq + 1, prev_hash = head hash; the insert then moves the head). Whoever can
// switch triggers off (the schema owner) can still rewrite rows, and can add a key
// to signing_keys: Verify with public keys pinned outside the database
// (ParseKeys, `starter evidence keys`) and heads published outside it (Head,
// `starter evidence head`) detects that.
//
// Nothing in the log may be PII: subjects are order ids or invoice numbers and
// bodies carry only ids, counts, key references and hashes.
package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what reads need: *pgxpool.Pool, *pgx.Conn and pgx.Tx implement it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Entry is a new evidence record.
type Entry struct {
	Kind    string // e.g. KindCertificate
	Subject string // an order id or invoice number; never PII
	// IdempotencyKey is unique across the log, derived from the workflow ID and
	// step, so a retried activity appends once.
	IdempotencyKey string
	// Body is marshalled with encoding/json, which is deterministic for structs
	// (field order) and maps (sorted keys). It must not contain PII.
	Body any
}

// Record is a stored evidence entry.
type Record struct {
	Seq            int64
	Kind           string
	Subject        string
	IdempotencyKey string
	RecordedAt     time.Time
	Body           json.RawMessage // the exact bytes that were hashed
	PrevHash       []byte
	Hash           []byte
	Signature      []byte
	SigningKeyID   string
}

var (
	// ErrNotFound is returned by BySeq for a sequence number with no entry.
	ErrNotFound = errors.New("evidence: no such entry")
	// ErrIdempotencyConflict means the idempotency key is already used by an entry
	// of another kind or subject.
	ErrIdempotencyConflict = errors.New("evidence: idempotency key already used for another kind or subject")
)

// GenesisHash is the prev_hash of the first entry: 32 zero bytes.
var GenesisHash = make([]byte, sha256.Size)

const hashVersion = "dpp-evidence-v1"

// ComputeHash returns the chain hash of r from its seq, kind, subject,
// idempotency key, recorded_at, body and prev_hash (the package comment gives the
// exact encoding). It ignores r.Hash, r.Signature and r.SigningKeyID.
func ComputeHash(r Record) []byte {
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], uint64(r.Seq))
	h := sha256.New()
	var lenBuf [4]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint32(lenBuf[:], uint32(len(b)))
		h.Write(lenBuf[:])
		h.Write(b)
	}
	write([]byte(hashVersion))
	write(seq[:])
	write([]byte(r.Kind))
	write([]byte(r.Subject))
	write([]byte(r.IdempotencyKey))
	write([]byte(r.RecordedAt.UTC().Format(time.RFC3339Nano)))
	write(r.Body)
	write(r.PrevHash)
	return h.Sum(nil)
}

const recordColumns = `seq, kind, subject, idempotency_key, recorded_at, body, prev_hash, hash, signature, signing_key_id`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var body []byte
	err := row.Scan(&r.Seq, &r.Kind, &r.Subject, &r.IdempotencyKey, &r.RecordedAt, &body,
		&r.PrevHash, &r.Hash, &r.Signature, &r.SigningKeyID)
	r.Body = body
	r.RecordedAt = r.RecordedAt.UTC()
	return r, err
}

func queryRecords(ctx context.Context, q Querier, sql string, args ...any) ([]Record, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Append adds e to the log inside the caller's transaction tx and returns the
// stored record. If an entry with e.IdempotencyKey already exists it is returned
// with created=false (its body may differ from e.Body: the first write wins); a
// different kind or subject under the same key is ErrIdempotencyConflict.
//
// Append holds the lock on the chain head until tx ends, serialising all
// appenders: commit promptly. Rolling tx back leaves no trace. now is the
// recorded time; it is stored in UTC truncated to microseconds.
func Append(ctx context.Context, tx pgx.Tx, s *Signer, e Entry, now time.Time) (Record, bool, error) {
	if s == nil {
		return Record{}, false, errors.New("evidence: append: signer is required")
	}
	if e.Kind == "" || e.Subject == "" || e.IdempotencyKey == "" {
		return Record{}, false, errors.New("evidence: append: kind, subject and idempotency key are required")
	}
	if now.IsZero() {
		return Record{}, false, errors.New("evidence: append: recorded time is required")
	}
	body, err := json.Marshal(e.Body)
	if err != nil {
		return Record{}, false, fmt.Errorf("evidence: append %s for %s: marshal body: %w", e.Kind, e.Subject, err)
	}

	// Fast path for retries, without taking the head lock.
	if r, ok, err := existing(ctx, tx, e); err != nil || ok {
		return r, false, err
	}

	var headSeq int64
	var headHash []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM evidence_head WHERE id = 1 FOR UPDATE`).Scan(&headSeq, &headHash); err != nil {
		return Record{}, false, fmt.Errorf("evidence: append: lock head: %w", err)
	}
	// A concurrent append with the same key may have committed while we waited.
	if r, ok, err := existing(ctx, tx, e); err != nil || ok {
		return r, false, err
	}

	r := Record{
		Seq:            headSeq + 1,
		Kind:           e.Kind,
		Subject:        e.Subject,
		IdempotencyKey: e.IdempotencyKey,
		RecordedAt:     now.UTC().Truncate(time.Microsecond),
		Body:           body,
		PrevHash:       headHash,
		SigningKeyID:   s.keyID,
	}
	r.Hash = ComputeHash(r)
	r.Signature = ed25519.Sign(s.priv, r.Hash)

	if _, err := tx.Exec(ctx, `INSERT INTO evidence_log (`+recordColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.Seq, r.Kind, r.Subject, r.IdempotencyKey, r.RecordedAt, []byte(r.Body),
		r.PrevHash, r.Hash, r.Signature, r.SigningKeyID); err != nil {
		return Record{}, false, fmt.Errorf("evidence: append %s for %s (seq %d): %w", r.Kind, r.Subject, r.Seq, err)
	}
	// The insert's trigger has moved the head onto r (schemas/migrations/00004).
	return r, true, nil
}

func existing(ctx context.Context, q Querier, e Entry) (Record, bool, error) {
	r, err := scanRecord(q.QueryRow(ctx, `SELECT `+recordColumns+` FROM evidence_log WHERE idempotency_key = $1`, e.IdempotencyKey))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("evidence: append: look up idempotency key: %w", err)
	}
	if r.Kind != e.Kind || r.Subject != e.Subject {
		return Record{}, false, fmt.Errorf("%w: key %q is seq %d (%s for %s)", ErrIdempotencyConflict, e.IdempotencyKey, r.Seq, r.Kind, r.Subject)
	}
	return r, true, nil
}

// Get returns the entries about subject, of the given kind (every kind if kind is
// empty), in sequence order.
func Get(ctx context.Context, q Querier, subject, kind string) ([]Record, error) {
	var (
		recs []Record
		err  error
	)
	if kind == "" {
		recs, err = queryRecords(ctx, q, `SELECT `+recordColumns+` FROM evidence_log WHERE subject = $1 ORDER BY seq`, subject)
	} else {
		recs, err = queryRecords(ctx, q, `SELECT `+recordColumns+` FROM evidence_log WHERE subject = $1 AND kind = $2 ORDER BY seq`, subject, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("evidence: get %s %s: %w", kind, subject, err)
	}
	return recs, nil
}

// BySeq returns the entry with sequence number seq, or ErrNotFound.
func BySeq(ctx context.Context, q Querier, seq int64) (Record, error) {
	r, err := scanRecord(q.QueryRow(ctx, `SELECT `+recordColumns+` FROM evidence_log WHERE seq = $1`, seq))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	if err != nil {
		return Record{}, fmt.Errorf("evidence: seq %d: %w", seq, err)
	}
	return r, nil
}

// PublicKeys returns every signing key ever used (active and retired), by key id.
func PublicKeys(ctx context.Context, q Querier) (map[string]ed25519.PublicKey, error) {
	rows, err := q.Query(ctx, `SELECT key_id, public_key FROM signing_keys`)
	if err != nil {
		return nil, fmt.Errorf("evidence: public keys: %w", err)
	}
	defer rows.Close()
	keys := map[string]ed25519.PublicKey{}
	for rows.Next() {
		var id string
		var pub []byte
		if err := rows.Scan(&id, &pub); err != nil {
			return nil, fmt.Errorf("evidence: public keys: %w", err)
		}
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("evidence: public key %s has %d bytes", id, len(pub))
		}
		keys[id] = ed25519.PublicKey(pub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evidence: public keys: %w", err)
	}
	return keys, nil
}

// Break is the first place the chain fails to verify.
type Break struct {
	Seq    int64  // the first sequence number that does not verify
	Reason string // e.g. "hash mismatch", "bad signature", "sequence gap after 41"
}

func (b *Break) Error() string { return fmt.Sprintf("evidence: seq %d: %s", b.Seq, b.Reason) }

// VerifyRecord checks one record: its hash is recomputed from its content, its
// prev_hash must equal prevHash (the previous record's hash, or GenesisHash for
// seq 1) and its signature must verify with pub. The error is a *Break.
func VerifyRecord(r Record, pub ed25519.PublicKey, prevHash []byte) error {
	if !bytes.Equal(ComputeHash(r), r.Hash) {
		return &Break{Seq: r.Seq, Reason: "hash mismatch"}
	}
	if !bytes.Equal(r.PrevHash, prevHash) {
		return &Break{Seq: r.Seq, Reason: fmt.Sprintf("prev_hash does not link to seq %d", r.Seq-1)}
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, r.Hash, r.Signature) {
		return &Break{Seq: r.Seq, Reason: "bad signature"}
	}
	return nil
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Records     int    // entries examined, including a broken one
	HeadSeq     int64  // the head row's sequence number
	FirstBroken *Break // nil when the whole chain verifies
	// Head is the last entry verified (seq 0 and GenesisHash for an empty log),
	// worth publishing when the chain is OK.
	Head Head
}

// OK reports whether the whole chain verified.
func (r VerifyReport) OK() bool { return r.FirstBroken == nil }

// verifyBatch is how many entries Verify reads per query (a variable for tests).
var verifyBatch = 1000

// VerifyOptions say what Verify trusts.
type VerifyOptions struct {
	// Keys are the trusted public keys by signing key id. nil loads them with
	// PublicKeys from the database being verified, which trusts whoever can write
	// signing_keys; auditors pass keys pinned outside the database (ParseKeys).
	// An entry signed by a key not in Keys is a break.
	Keys map[string]ed25519.PublicKey
	// Heads are heads published earlier (`starter evidence head`): the chain must
	// still contain an entry with each one's seq and hash, so a truncated or
	// replaced tail is a break even when every remaining entry verifies.
	Heads []Head
	// From, when set, is a checkpoint: an entry this verifier checked before
	// and kept outside the chain. Verification starts after it, so a frequent
	// check costs what was appended since rather than the whole log; it still
	// requires the entry at From.Seq to have From.Hash. Changes before the
	// checkpoint are left to a full verification (From nil), which a caller
	// runs regularly (the alert check: daily) and auditors always run.
	// Published heads at or before it are not checked again.
	From *Head
}

// Verify is VerifyWith with only Keys set.
func Verify(ctx context.Context, q Querier, keys map[string]ed25519.PublicKey) (VerifyReport, error) {
	return VerifyWith(ctx, q, VerifyOptions{Keys: keys})
}

// VerifyWith walks the whole chain in sequence order, in batches: it recomputes
// every hash, checks every prev_hash link and signature (with opts.Keys) and that
// sequence numbers have no gaps, that each published head in opts.Heads is still
// in the chain, and finally that the head row points at the last entry. It stops
// at the first broken link and reports it; an error is returned only when the
// database cannot be read.
//
// If q can begin transactions (*pgxpool.Pool, *pgx.Conn), VerifyWith reads in one
// REPEATABLE READ READ ONLY transaction, so appends committing meanwhile cannot
// look like a broken head; with a pgx.Tx it reads in that transaction.
func VerifyWith(ctx context.Context, q Querier, opts VerifyOptions) (VerifyReport, error) {
	if b, ok := q.(interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
	}); ok {
		tx, err := b.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return VerifyReport{}, fmt.Errorf("evidence: verify: begin: %w", err)
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		q = tx
	}
	keys, pinned := opts.Keys, opts.Keys != nil
	if !pinned {
		var err error
		if keys, err = PublicKeys(ctx, q); err != nil {
			return VerifyReport{}, err
		}
	}
	published := map[int64][]byte{}
	for _, h := range opts.Heads {
		if h.Seq == 0 && !bytes.Equal(h.Hash, GenesisHash) {
			return VerifyReport{}, fmt.Errorf("evidence: verify: published head %s: seq 0 is the genesis, whose hash is 32 zero bytes", h)
		}
		if prev, ok := published[h.Seq]; ok && !bytes.Equal(prev, h.Hash) {
			return VerifyReport{}, fmt.Errorf("evidence: verify: two published heads for seq %d with different hashes", h.Seq)
		}
		published[h.Seq] = h.Hash
	}

	var rep VerifyReport
	lastSeq, lastHash := int64(0), GenesisHash
	if f := opts.From; f != nil && f.Seq > 0 {
		var hash []byte
		err := q.QueryRow(ctx, `SELECT hash FROM evidence_log WHERE seq = $1`, f.Seq).Scan(&hash)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return rep, fmt.Errorf("evidence: verify from seq %d: %w", f.Seq, err)
		}
		if !bytes.Equal(hash, f.Hash) {
			rep.FirstBroken = &Break{Seq: f.Seq, Reason: fmt.Sprintf(
				"the entry at the checkpoint %s is missing or differs from the one verified before: the chain was rewritten at or before seq %d", *f, f.Seq)}
			return rep, nil
		}
		lastSeq, lastHash = f.Seq, f.Hash
	}
	for {
		batch, err := queryRecords(ctx, q, `SELECT `+recordColumns+` FROM evidence_log WHERE seq > $1 ORDER BY seq LIMIT $2`, lastSeq, verifyBatch)
		if err != nil {
			return rep, fmt.Errorf("evidence: verify after seq %d: %w", lastSeq, err)
		}
		for _, r := range batch {
			rep.Records++
			if r.Seq != lastSeq+1 {
				rep.FirstBroken = &Break{Seq: lastSeq + 1, Reason: fmt.Sprintf("sequence gap after %d", lastSeq)}
				return rep, nil
			}
			pub, ok := keys[r.SigningKeyID]
			if !ok {
				reason := fmt.Sprintf("bad signature: unknown signing key %q", r.SigningKeyID)
				if pinned {
					reason += " (not among the trusted keys)"
				}
				rep.FirstBroken = &Break{Seq: r.Seq, Reason: reason}
				return rep, nil
			}
			if err := VerifyRecord(r, pub, lastHash); err != nil {
				rep.FirstBroken = err.(*Break)
				return rep, nil
			}
			if want, ok := published[r.Seq]; ok && !bytes.Equal(want, r.Hash) {
				rep.FirstBroken = &Break{Seq: r.Seq, Reason: fmt.Sprintf(
					"hash %x differs from the published head %s: the chain was rewritten at or before seq %d", r.Hash, Head{r.Seq, want}, r.Seq)}
				return rep, nil
			}
			lastSeq, lastHash = r.Seq, r.Hash
		}
		if len(batch) < verifyBatch {
			break
		}
	}
	for _, h := range opts.Heads {
		if h.Seq > lastSeq {
			rep.FirstBroken = &Break{Seq: lastSeq + 1, Reason: fmt.Sprintf(
				"the chain ends at seq %d but the published head %s is later: entries were removed", lastSeq, h)}
			return rep, nil
		}
	}

	var headHash []byte
	err := q.QueryRow(ctx, `SELECT seq, hash FROM evidence_head WHERE id = 1`).Scan(&rep.HeadSeq, &headHash)
	if errors.Is(err, pgx.ErrNoRows) {
		rep.FirstBroken = &Break{Seq: lastSeq + 1, Reason: "head row is missing"}
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("evidence: verify: read head: %w", err)
	}
	rep.Head = Head{Seq: lastSeq, Hash: lastHash}
	switch {
	case rep.HeadSeq > lastSeq:
		rep.FirstBroken = &Break{Seq: lastSeq + 1,
			Reason: fmt.Sprintf("head points to seq %d but the chain ends at seq %d", rep.HeadSeq, lastSeq)}
	case rep.HeadSeq < lastSeq:
		rep.FirstBroken = &Break{Seq: rep.HeadSeq + 1,
			Reason: fmt.Sprintf("head points to seq %d but the chain continues to seq %d", rep.HeadSeq, lastSeq)}
	case !bytes.Equal(headHash, lastHash):
		rep.FirstBroken = &Break{Seq: lastSeq,
			Reason: fmt.Sprintf("head points to seq %d with a hash that differs from that entry's", rep.HeadSeq)}
	}
	return rep, nil
}

// Between returns the entries of the period [from, to), in sequence order: from
// the first entry recorded in it to the last, with no gap, so that the result
// links up on its own even where an appender's clock put an entry's recorded_at
// slightly before its predecessor's.
func Between(ctx context.Context, q Querier, from, to time.Time) ([]Record, error) {
	recs, err := queryRecords(ctx, q, `SELECT `+recordColumns+` FROM evidence_log
		WHERE seq BETWEEN (SELECT min(seq) FROM evidence_log WHERE recorded_at >= $1 AND recorded_at < $2)
		              AND (SELECT max(seq) FROM evidence_log WHERE recorded_at >= $1 AND recorded_at < $2)
		ORDER BY seq`, from, to)
	if err != nil {
		return nil, fmt.Errorf("evidence: entries from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return recs, nil
}
