package evidence_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/internal/vault"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

func testVault(t *testing.T) *vault.Vault {
	t.Helper()
	k := testenv.KMSForTest(t)
	client, err := k.Client(context.Background())
	require.NoError(t, err)
	v, err := vault.New(client, k.KeyID)
	require.NoError(t, err)
	return v
}

func setup(t *testing.T) (*pgxpool.Pool, *evidence.Signer) {
	t.Helper()
	pool := testenv.Pool(t)
	s, err := evidence.LoadOrCreateSigner(context.Background(), pool, testVault(t))
	require.NoError(t, err)
	return pool, s
}

type purgeBody struct {
	OrderID string `json:"orderId"`
	Fields  int    `json:"fields"`
	N       int    `json:"n"`
}

func entry(i int) evidence.Entry {
	order := fmt.Sprintf("202-%07d-0000001", i)
	return evidence.Entry{
		Kind:           "test-purge",
		Subject:        order,
		IdempotencyKey: "order-" + order + "/purge",
		Body:           purgeBody{OrderID: order, Fields: 7, N: i},
	}
}

func appendTx(t testing.TB, pool *pgxpool.Pool, s *evidence.Signer, e evidence.Entry) (evidence.Record, bool) {
	t.Helper()
	var rec evidence.Record
	var created bool
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		rec, created, err = evidence.Append(context.Background(), tx, s, e, time.Now())
		return err
	})
	require.NoError(t, err)
	return rec, created
}

func appendN(t *testing.T, pool *pgxpool.Pool, s *evidence.Signer, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		appendTx(t, pool, s, entry(i))
	}
}

func verify(t *testing.T, pool *pgxpool.Pool) evidence.VerifyReport {
	t.Helper()
	rep, err := evidence.Verify(context.Background(), pool, nil)
	require.NoError(t, err)
	return rep
}

func TestAppendConcurrentChainVerifies(t *testing.T) {
	pool, s := setup(t)
	defer evidence.SetVerifyBatch(17)() // cross many batch boundaries

	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := entry(w*1000 + i)
				err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
					_, created, err := evidence.Append(context.Background(), tx, s, e, time.Now())
					if err == nil && !created {
						err = errors.New("not created")
					}
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	rep := verify(t, pool)
	require.Nil(t, rep.FirstBroken)
	require.True(t, rep.OK())
	require.Equal(t, workers*each, rep.Records)
	require.EqualValues(t, workers*each, rep.HeadSeq)

	rows, err := pool.Query(context.Background(), `SELECT seq FROM evidence_log ORDER BY seq`)
	require.NoError(t, err)
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	for i, seq := range seqs {
		require.EqualValues(t, i+1, seq)
	}
	require.Len(t, seqs, workers*each)
}

func TestAppendIsIdempotent(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	first, created := appendTx(t, pool, s, entry(1))
	require.True(t, created)
	require.EqualValues(t, 1, first.Seq)
	require.Equal(t, evidence.GenesisHash, first.PrevHash)

	// A retry with a re-rendered body returns the stored record unchanged.
	retry := entry(1)
	retry.Body = purgeBody{OrderID: "202-0000001-0000001", Fields: 99}
	again, created := appendTx(t, pool, s, retry)
	require.False(t, created)
	require.Equal(t, first.Seq, again.Seq)
	require.Equal(t, first.Hash, again.Hash)
	require.Equal(t, first.Signature, again.Signature)
	require.JSONEq(t, string(first.Body), string(again.Body))
	require.True(t, first.RecordedAt.Equal(again.RecordedAt))

	// Same key, another subject: a programming error, not a silent no-op.
	conflict := entry(2)
	conflict.IdempotencyKey = retry.IdempotencyKey
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, _, err := evidence.Append(ctx, tx, s, conflict, time.Now())
		return err
	})
	require.ErrorIs(t, err, evidence.ErrIdempotencyConflict)

	// Concurrent appends of one key: exactly one creates it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	seqs := map[int64]bool{}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, c := appendTx(t, pool, s, entry(3))
			mu.Lock()
			defer mu.Unlock()
			if c {
				createdCount++
			}
			seqs[r.Seq] = true
		}()
	}
	wg.Wait()
	require.Equal(t, 1, createdCount)
	require.Len(t, seqs, 1)

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log`).Scan(&n))
	require.Equal(t, 2, n)
	require.True(t, verify(t, pool).OK())
}

func TestAppendRolledBackLeavesNoTrace(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	appendTx(t, pool, s, entry(1))
	var headSeq int64
	var headHash []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT seq, hash FROM evidence_head`).Scan(&headSeq, &headHash))

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	r, created, err := evidence.Append(ctx, tx, s, entry(2), time.Now())
	require.NoError(t, err)
	require.True(t, created)
	require.EqualValues(t, 2, r.Seq)
	require.NoError(t, tx.Rollback(ctx))

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log`).Scan(&n))
	require.Equal(t, 1, n)
	var seq2 int64
	var hash2 []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT seq, hash FROM evidence_head`).Scan(&seq2, &hash2))
	require.Equal(t, headSeq, seq2)
	require.Equal(t, headHash, hash2)
	_, err = evidence.BySeq(ctx, pool, 2)
	require.ErrorIs(t, err, evidence.ErrNotFound)

	// The same key can be appended afterwards, at the same seq.
	r2, created := appendTx(t, pool, s, entry(2))
	require.True(t, created)
	require.EqualValues(t, 2, r2.Seq)
	require.True(t, verify(t, pool).OK())
}

func TestEvidenceLogIsAppendOnly(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	appendN(t, pool, s, 2)
	for _, stmt := range []string{
		`UPDATE evidence_log SET body = '{}' WHERE seq = 1`,
		`UPDATE evidence_log SET kind = kind`,
		`DELETE FROM evidence_log WHERE seq = 2`,
		`DELETE FROM evidence_log`,
		`TRUNCATE evidence_log CASCADE`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.Error(t, err, stmt)
		require.Contains(t, err.Error(), "evidence_log is append-only", stmt)
	}
	for _, stmt := range []string{
		`DELETE FROM evidence_head`,
		`UPDATE evidence_head SET seq = 0, hash = decode(repeat('00', 32), 'hex')`,
		`UPDATE evidence_head SET seq = seq + 1`,
		`TRUNCATE evidence_head`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.Error(t, err, stmt)
	}
	rep := verify(t, pool)
	require.True(t, rep.OK())
	require.Equal(t, 2, rep.Records)
}

// tamper changes the log behind the trigger's back, as a superuser could.
func tamper(t *testing.T, pool *pgxpool.Pool, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range []string{
			`ALTER TABLE evidence_log DISABLE TRIGGER evidence_log_append_only`,
			`ALTER TABLE evidence_head DISABLE TRIGGER evidence_head_forward_only`,
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, stmt, args...); err != nil {
			return err
		}
		for _, s := range []string{
			`ALTER TABLE evidence_log ENABLE TRIGGER evidence_log_append_only`,
			`ALTER TABLE evidence_head ENABLE TRIGGER evidence_head_forward_only`,
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
}

func TestVerifyFindsFirstBrokenLink(t *testing.T) {
	forged := func(t *testing.T, pool *pgxpool.Pool) {
		// Rewrite seq 3's body and recompute its hash, without the signing key.
		r, err := evidence.BySeq(context.Background(), pool, 3)
		require.NoError(t, err)
		r.Body = json.RawMessage(`{"orderId":"202-0000003-0000001","fields":0,"n":3}`)
		tamper(t, pool, `UPDATE evidence_log SET body = $1, hash = $2 WHERE seq = 3`, []byte(r.Body), evidence.ComputeHash(r))
	}
	otherSigner := func(t *testing.T, pool *pgxpool.Pool) {
		// Re-sign seq 3 with a key nobody registered, under the real key's id.
		r, err := evidence.BySeq(context.Background(), pool, 3)
		require.NoError(t, err)
		_, priv, _ := ed25519.GenerateKey(nil)
		tamper(t, pool, `UPDATE evidence_log SET signature = $1 WHERE seq = 3`, ed25519.Sign(priv, r.Hash))
	}
	zero := sha256.Sum256([]byte("x"))
	cases := []struct {
		name    string
		do      func(t *testing.T, pool *pgxpool.Pool)
		seq     int64
		reason  string
		records int
	}{
		{"body", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_log SET body = convert_to('{"orderId":"x"}', 'UTF8') WHERE seq = 3`)
		}, 3, "hash mismatch", 3},
		{"subject", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_log SET subject = 'other' WHERE seq = 3`)
		}, 3, "hash mismatch", 3},
		{"recorded_at", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_log SET recorded_at = recorded_at - interval '1 day' WHERE seq = 3`)
		}, 3, "hash mismatch", 3},
		{"hash", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_log SET hash = $1 WHERE seq = 3`, zero[:])
		}, 3, "hash mismatch", 3},
		{"signature", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_log SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1) WHERE seq = 3`)
		}, 3, "bad signature", 3},
		{"forged body and hash", forged, 3, "bad signature", 3},
		{"signed by another key", otherSigner, 3, "bad signature", 3},
		{"deleted entry", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM evidence_log WHERE seq = 3`)
		}, 3, "sequence gap after 2", 3},
		{"deleted tail", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM evidence_log WHERE seq = 5`)
		}, 5, "head points to seq 5 but the chain ends at seq 4", 4},
		{"head rewound", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_head SET seq = 4, hash = (SELECT hash FROM evidence_log WHERE seq = 4)`)
		}, 5, "head points to seq 4 but the chain continues to seq 5", 5},
		{"head hash", func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE evidence_head SET hash = $1`, zero[:])
		}, 5, "head points to seq 5 with a hash that differs from that entry's", 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, s := setup(t)
			appendN(t, pool, s, 5)
			require.True(t, verify(t, pool).OK())
			c.do(t, pool)
			rep := verify(t, pool)
			require.NotNil(t, rep.FirstBroken)
			require.Equal(t, c.seq, rep.FirstBroken.Seq, rep.FirstBroken.Reason)
			require.Equal(t, c.reason, rep.FirstBroken.Reason)
			require.Equal(t, c.records, rep.Records)
		})
	}

	t.Run("relinked after tampering", func(t *testing.T) {
		// Seq 2's prev_hash no longer links to seq 1 once seq 1's hash changes.
		pool, s := setup(t)
		appendN(t, pool, s, 3)
		r1, err := evidence.BySeq(context.Background(), pool, 1)
		require.NoError(t, err)
		r1.Body = json.RawMessage(`{"n":0}`)
		h := evidence.ComputeHash(r1)
		tamper(t, pool, `UPDATE evidence_log SET body = $1, hash = $2, signature = $3 WHERE seq = 1`,
			[]byte(r1.Body), h, make([]byte, 64))
		rep := verify(t, pool)
		require.EqualValues(t, 1, rep.FirstBroken.Seq)
		require.Equal(t, "bad signature", rep.FirstBroken.Reason)

		r2, err := evidence.BySeq(context.Background(), pool, 2)
		require.NoError(t, err)
		err = evidence.VerifyRecord(r2, s.PublicKey(), h)
		var b *evidence.Break
		require.ErrorAs(t, err, &b)
		require.Equal(t, "prev_hash does not link to seq 1", b.Reason)
	})
}

func TestVerifyEmptyAndUnknownKey(t *testing.T) {
	pool, s := setup(t)
	rep := verify(t, pool)
	require.True(t, rep.OK())
	require.Zero(t, rep.Records)

	appendN(t, pool, s, 2)
	rep, err := evidence.Verify(context.Background(), pool, map[string]ed25519.PublicKey{})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.FirstBroken.Seq)
	require.Contains(t, rep.FirstBroken.Reason, "unknown signing key")

	keys, err := evidence.PublicKeys(context.Background(), pool)
	require.NoError(t, err)
	require.Equal(t, s.PublicKey(), keys[s.KeyID()])
	// Inside a caller's transaction too.
	err = pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		rep, err := evidence.Verify(context.Background(), tx, keys)
		require.True(t, rep.OK())
		require.Equal(t, 2, rep.Records)
		return err
	})
	require.NoError(t, err)
}

func TestLoadOrCreateSignerConcurrentFirstStart(t *testing.T) {
	pool := testenv.Pool(t)
	v := testVault(t)
	ctx := context.Background()

	const n = 6
	ids := make([]string, n)
	pubs := make([]ed25519.PublicKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := evidence.LoadOrCreateSigner(ctx, pool, v)
			errs[i] = err
			if err == nil {
				ids[i], pubs[i] = s.KeyID(), s.PublicKey()
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i])
		require.Equal(t, pubs[0], pubs[i])
	}
	var count int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM signing_keys`).Scan(&count))
	require.Equal(t, 1, count)

	// A later start unseals the stored key; its signatures verify with the stored public key.
	s, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	require.NoError(t, err)
	require.Equal(t, ids[0], s.KeyID())
	appendTx(t, pool, s, entry(1))
	require.True(t, verify(t, pool).OK())

	// The private key is stored only sealed.
	var sealed, wrapped []byte
	var kmsKeyID string
	require.NoError(t, pool.QueryRow(ctx, `SELECT sealed_private_key, wrapped_data_key, kms_key_id FROM signing_keys`).Scan(&sealed, &wrapped, &kmsKeyID))
	require.NotEmpty(t, wrapped)
	require.Contains(t, kmsKeyID, testenv.KMSKeyID)
	require.Len(t, sealed, 12+ed25519.SeedSize+16)
}

func TestGetAndBySeq(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	appendN(t, pool, s, 3)
	other := entry(2)
	other.Kind = "test-other"
	other.IdempotencyKey += "/other"
	appendTx(t, pool, s, other)

	subject := entry(2).Subject
	all, err := evidence.Get(ctx, pool, subject, "")
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.EqualValues(t, 2, all[0].Seq)
	require.EqualValues(t, 4, all[1].Seq)
	purges, err := evidence.Get(ctx, pool, subject, "test-purge")
	require.NoError(t, err)
	require.Len(t, purges, 1)
	var body purgeBody
	require.NoError(t, json.Unmarshal(purges[0].Body, &body))
	require.Equal(t, 2, body.N)
	none, err := evidence.Get(ctx, pool, "nobody", "")
	require.NoError(t, err)
	require.Empty(t, none)

	r, err := evidence.BySeq(ctx, pool, 4)
	require.NoError(t, err)
	require.Equal(t, "test-other", r.Kind)
	require.Equal(t, s.KeyID(), r.SigningKeyID)
	require.Equal(t, time.UTC, r.RecordedAt.Location())
	_, err = evidence.BySeq(ctx, pool, 99)
	require.ErrorIs(t, err, evidence.ErrNotFound)
}

func TestCertificateRoundTrip(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 30, 0, 123456789, time.UTC)
	cert := evidence.Certificate{
		PersonPerforming: evidence.Person{Name: "dpp-worker", Title: "Automated purge", Organisation: "Plusranger Ltd", Location: "eu-west-2", Contact: "dpo@example.com"},
		Media: evidence.Media{MakeVendor: "PostgreSQL", Model: "15", SerialNumber: "pii/202-1234567-1234567",
			PropertyNumber: "202-1234567-1234567", MediaType: "Database records (AES-256-GCM sealed fields)",
			Source: "Amazon SP-API order", Classification: "Confidential (buyer PII)", DataBackedUp: true, BackupLocation: "WAL archive"},
		Sanitization: evidence.Sanitization{MethodType: evidence.MethodTypePurge, MethodUsed: evidence.MethodCryptographicErase,
			Details: "7 sealed fields and 1 wrapped data key deleted", Tool: "dpp", ToolVersion: "test",
			VerificationMethod: "full", VerificationResult: "no field decrypts", PostSanitizationClassification: "Unclassified"},
		Destination: "Reused",
		SignedAt:    now,
	}
	e := evidence.Entry{Kind: evidence.KindCertificate, Subject: "202-1234567-1234567", IdempotencyKey: "order-202-1234567-1234567/certificate", Body: cert}
	var rec evidence.Record
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		rec, _, err = evidence.Append(ctx, tx, s, e, now)
		return err
	}))
	require.Equal(t, now.Truncate(time.Microsecond), rec.RecordedAt)

	var m map[string]map[string]any
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body, &raw))
	for _, k := range []string{"personPerforming", "media", "sanitization", "destination", "signedAt", "validation"} {
		require.Contains(t, raw, k)
	}
	delete(raw, "destination")
	delete(raw, "signedAt")
	b, _ := json.Marshal(raw)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, "Cryptographic Erase", m["sanitization"]["methodUsed"])
	require.Equal(t, "Purge", m["sanitization"]["methodType"])
	require.Equal(t, true, m["media"]["dataBackedUp"])
	require.NotContains(t, m["validation"], "date")

	got, err := evidence.Get(ctx, pool, "202-1234567-1234567", evidence.KindCertificate)
	require.NoError(t, err)
	require.Len(t, got, 1)
	var back evidence.Certificate
	require.NoError(t, json.Unmarshal(got[0].Body, &back))
	require.Equal(t, cert, back)
	require.NoError(t, evidence.VerifyRecord(got[0], s.PublicKey(), evidence.GenesisHash))
}

func TestAppendValidates(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, _, err = evidence.Append(ctx, tx, nil, entry(1), time.Now())
	require.Error(t, err)
	e := entry(1)
	e.IdempotencyKey = ""
	_, _, err = evidence.Append(ctx, tx, s, e, time.Now())
	require.Error(t, err)
	e = entry(1)
	e.Body = func() {}
	_, _, err = evidence.Append(ctx, tx, s, e, time.Now())
	require.Error(t, err)
}
