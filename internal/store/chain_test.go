package store_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
)

// insertRaw inserts an evidence row by hand, as a role that bypasses the
// evidence package would, linking it to prev and signing it with priv.
func insertRaw(t *testing.T, pool *pgxpool.Pool, seq int64, prev []byte, keyID string, priv ed25519.PrivateKey) error {
	t.Helper()
	r := evidence.Record{Seq: seq, Kind: "test-forged", Subject: "202-0000000-0000000",
		IdempotencyKey: "forged/" + time.Now().Format(time.RFC3339Nano), RecordedAt: time.Now().UTC().Truncate(time.Microsecond),
		Body: []byte(`{"forged":true}`), PrevHash: prev, SigningKeyID: keyID}
	r.Hash = evidence.ComputeHash(r)
	r.Signature = ed25519.Sign(priv, r.Hash)
	_, err := pool.Exec(context.Background(), `INSERT INTO evidence_log
		(seq, kind, subject, idempotency_key, recorded_at, body, prev_hash, hash, signature, signing_key_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.Seq, r.Kind, r.Subject, r.IdempotencyKey, r.RecordedAt, []byte(r.Body), r.PrevHash, r.Hash, r.Signature, r.SigningKeyID)
	return err
}

func headOf(t *testing.T, pool *pgxpool.Pool) evidence.Head {
	t.Helper()
	h, err := evidence.ReadHead(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEvidenceInsertMustExtendTheChain: the database itself refuses an entry that
// leaves a gap or forks the chain, from the worker and from the owner alike, and
// an entry that does extend it moves the head in the same statement.
func TestEvidenceInsertMustExtendTheChain(t *testing.T) {
	db := newRoleDB(t)
	appendEvidence(t, db.worker, 3)
	ctx := context.Background()
	// A key the owner adds (the worker may add keys too: it creates the first one).
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyID := evidence.KeyIDFor(pub)
	mustWork(t, db.owner, `INSERT INTO signing_keys (key_id, public_key, sealed_private_key, kms_key_id, wrapped_data_key, retired_at)
		VALUES ('`+keyID+`', decode('`+hexOf(pub)+`', 'hex'), '\x00', 'none', '\x00', now())`)

	head := headOf(t, db.auditor)
	r1, err := evidence.BySeq(ctx, db.owner, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := evidence.BySeq(ctx, db.owner, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, pool := range map[string]*pgxpool.Pool{"worker": db.worker, "owner": db.owner} {
		for _, c := range []struct {
			what string
			seq  int64
			prev []byte
		}{
			{"a gap (seq head+2)", head.Seq + 2, head.Hash},
			{"a fork off seq 2 (seq 3 again)", 3, r2.Hash},
			{"a fork off seq 1 (seq 2 again)", 2, r1.Hash},
			{"the next seq with the wrong prev_hash", head.Seq + 1, r2.Hash},
			{"the next seq with a zero prev_hash", head.Seq + 1, evidence.GenesisHash},
		} {
			err := insertRaw(t, pool, c.seq, c.prev, keyID, priv)
			if err == nil || !strings.Contains(err.Error(), "must extend the chain") {
				t.Errorf("%s inserts %s: want refused (must extend the chain), got %v", name, c.what, err)
			}
		}
	}
	// A multi-row insert cannot sneak two entries past the check either.
	_, err = db.owner.Exec(ctx, `INSERT INTO evidence_log SELECT seq + 3, kind, subject, idempotency_key || '/copy', recorded_at,
		body, CASE WHEN seq = 1 THEN $1 ELSE prev_hash END, sha256(hash), signature, signing_key_id FROM evidence_log WHERE seq <= 2`, head.Hash)
	if err == nil || !strings.Contains(err.Error(), "must extend the chain") {
		t.Errorf("owner's multi-row insert: want refused, got %v", err)
	}
	if h := headOf(t, db.auditor); h.Seq != 3 || !bytes.Equal(h.Hash, head.Hash) {
		t.Fatalf("head moved to %s after refused inserts", h)
	}

	// An entry that extends the chain is accepted, whoever writes it, and the
	// head follows it: the database enforces the shape, the signatures are the
	// auditor's to check.
	if err := insertRaw(t, db.owner, head.Seq+1, head.Hash, keyID, priv); err != nil {
		t.Fatalf("owner extends the chain: %v", err)
	}
	h := headOf(t, db.auditor)
	r4, err := evidence.BySeq(ctx, db.auditor, 4)
	if err != nil || h.Seq != 4 || !bytes.Equal(h.Hash, r4.Hash) {
		t.Fatalf("head after the insert: %s (entry 4: %x, %v)", h, r4.Hash, err)
	}
	// A worker built before 00004 moves the head itself after its insert: setting
	// it where the insert already put it is allowed (a no-op); anything else is not.
	mustWork(t, db.worker, `UPDATE evidence_head SET seq = 4, hash = (SELECT hash FROM evidence_log WHERE seq = 4)`)
	mustFail(t, db.worker, codeRestrictViolation, `UPDATE evidence_head SET seq = 3, hash = (SELECT hash FROM evidence_log WHERE seq = 3)`)
	mustFail(t, db.worker, codeRestrictViolation, `UPDATE evidence_head SET seq = 5`)
	// The worker still appends through the evidence package after that.
	appendEvidenceFrom(t, db.worker, 5, 6)
	if h := headOf(t, db.auditor); h.Seq != 6 {
		t.Fatalf("head after the worker's appends: %s, want seq 6", h)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestOwnerRewriteIsCaughtByPinnedKeys: the owner switches the triggers off,
// adds a signing key of their own, rewrites an entry and re-signs and re-links
// everything after it, head included. Verification that trusts the keys in the
// database passes; with the keys pinned before the rewrite it fails and names the
// first rewritten entry; and a head published before is gone.
func TestOwnerRewriteIsCaughtByPinnedKeys(t *testing.T) {
	db := newRoleDB(t)
	appendEvidence(t, db.worker, 5)
	ctx := context.Background()

	// What the auditor keeps outside the database, read as dpp_auditor.
	kf, err := evidence.ListKeys(ctx, db.auditor)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := kf.Write(&file); err != nil {
		t.Fatal(err)
	}
	pinned, err := evidence.ParseKeys(file.Bytes())
	if err != nil || len(pinned) != 1 {
		t.Fatalf("pinned keys %v: %v\n%s", pinned, err, file.String())
	}
	published := headOf(t, db.auditor)

	// The rewrite, with the owner's rights only.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyID := evidence.KeyIDFor(pub)
	err = pgx.BeginFunc(ctx, db.owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (key_id, public_key, sealed_private_key, kms_key_id, wrapped_data_key, created_at, retired_at)
			VALUES ($1, $2, '\x00', 'none', '\x00', now() - interval '1 year', now() - interval '1 day')`, keyID, []byte(pub)); err != nil {
			return err
		}
		for _, q := range []string{`ALTER TABLE evidence_log DISABLE TRIGGER USER`, `ALTER TABLE evidence_head DISABLE TRIGGER USER`} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		prev, err := evidence.BySeq(ctx, tx, 2)
		if err != nil {
			return err
		}
		for seq := int64(3); seq <= 5; seq++ {
			r, err := evidence.BySeq(ctx, tx, seq)
			if err != nil {
				return err
			}
			if seq == 3 {
				r.Body = []byte(`{"fields":0,"orderId":"202-0000003-0000001"}`)
			}
			r.PrevHash, r.SigningKeyID = prev.Hash, keyID
			r.Hash = evidence.ComputeHash(r)
			r.Signature = ed25519.Sign(priv, r.Hash)
			if _, err := tx.Exec(ctx, `UPDATE evidence_log SET body = $2, prev_hash = $3, hash = $4, signature = $5, signing_key_id = $6 WHERE seq = $1`,
				r.Seq, []byte(r.Body), r.PrevHash, r.Hash, r.Signature, r.SigningKeyID); err != nil {
				return err
			}
			prev = r
		}
		if _, err := tx.Exec(ctx, `UPDATE evidence_head SET hash = $1`, prev.Hash); err != nil {
			return err
		}
		for _, q := range []string{`ALTER TABLE evidence_log ENABLE TRIGGER USER`, `ALTER TABLE evidence_head ENABLE TRIGGER USER`} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("owner's rewrite: %v", err)
	}

	// Trusting the database's keys, the forgery verifies: that is the hole.
	rep, err := evidence.Verify(ctx, db.auditor, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify with the database's keys: %+v, %v (the forgery was expected to pass)", rep.FirstBroken, err)
	}
	// With the pinned keys it does not, and the first rewritten entry is named.
	rep, err = evidence.VerifyWith(ctx, db.auditor, evidence.VerifyOptions{Keys: pinned})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.FirstBroken.Seq != 3 || !strings.Contains(rep.FirstBroken.Reason, keyID) ||
		!strings.Contains(rep.FirstBroken.Reason, "not among the trusted keys") {
		t.Fatalf("verify with pinned keys: %+v", rep.FirstBroken)
	}
	t.Logf("pinned keys: %v", rep.FirstBroken)
	// The published head names the same seq with another hash.
	rep, err = evidence.VerifyWith(ctx, db.auditor, evidence.VerifyOptions{Keys: kfKeys(t, db.auditor), Heads: []evidence.Head{published}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.FirstBroken.Seq != 5 || !strings.Contains(rep.FirstBroken.Reason, "published head "+published.String()) {
		t.Fatalf("verify against the published head (database keys): %+v", rep.FirstBroken)
	}
	t.Logf("published head: %v", rep.FirstBroken)
}

// kfKeys are the keys the database holds now (the forger's included).
func kfKeys(t *testing.T, pool *pgxpool.Pool) map[string]ed25519.PublicKey {
	t.Helper()
	keys, err := evidence.PublicKeys(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
