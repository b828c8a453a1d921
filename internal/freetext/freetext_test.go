package freetext_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// marker is a name someone wrote although the form asked them not to.
const marker = "Philippa Freetext-Marker"

// A text sealed with its evidence entry (as the worker's role, against
// local-kms) is in no evidence row, opens for a reader with the key, shows
// "sealed until" to the auditor's role, and after its retention the sweep
// crypto-erases it with a signed entry: nothing can open it, every reader shows
// "erased on", the chain still verifies, and a second sweep changes nothing.
func TestSealedThenCryptoErasedAfterRetention(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t)
	worker, err := pgxpool.New(ctx, testenv.AsRole(t, dsn, store.WorkerRole))
	require.NoError(t, err)
	t.Cleanup(worker.Close)
	auditor, err := pgxpool.New(ctx, testenv.AsRole(t, dsn, store.AuditorRole))
	require.NoError(t, err)
	t.Cleanup(auditor.Close)
	v := testenv.VaultForTest(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, worker, v)
	require.NoError(t, err)

	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := at
	s := &freetext.Store{Pool: worker, Vault: v, Signer: signer, Now: func() time.Time { return now }}
	const ref = "access-review-2026-Q4/item/3/decision/reason"
	text := "kept: " + marker + " needs it for the VAT return"
	_, err = s.Seal(ctx, freetext.KindAccessReason, "a reason with words", "access-review-2026-Q4", text, at)
	require.ErrorContains(t, err, "id-like ref", "a ref must not be able to carry words")
	require.NotContains(t, err.Error(), "words")

	// Stored twice (a retried step): one text, one entry, the first text kept.
	for _, body := range []string{text, "another text"} {
		sealed, err := s.Seal(ctx, freetext.KindAccessReason, ref, "access-review-2026-Q4", body, at)
		require.NoError(t, err)
		require.NoError(t, pgx.BeginFunc(ctx, worker, func(tx pgx.Tx) error {
			if err := sealed.Insert(ctx, tx); err != nil {
				return err
			}
			_, _, err := evidence.Append(ctx, tx, signer, evidence.Entry{Kind: "access-review-decision", Subject: "access-review-2026-Q4",
				IdempotencyKey: "access-review-2026-Q4/item/3/decision", Body: map[string]any{"decision": "keep", "reasonRef": ref}}, at)
			return err
		}))
	}
	assertNowhereInTheDatabase(t, worker, marker)

	sh, err := s.Read(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, text, sh.String(), "a reader with the key sees the text while it exists")
	sh, err = freetext.Read(ctx, auditor, nil, ref)
	require.NoError(t, err)
	require.Equal(t, "sealed until 2028-01-01 (ref "+ref+")", sh.String(), "13 months; the auditor's role cannot open it")
	_, err = freetext.Read(ctx, auditor, v, ref)
	require.ErrorContains(t, err, "permission denied", "the auditor's role reads no ciphertext")

	// Not due yet: nothing erased.
	now = at.AddDate(0, freetext.RetentionMonths, 0).Add(-time.Second)
	n, more, err := s.EraseDue(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, more)

	now = at.AddDate(0, freetext.RetentionMonths, 1)
	n, more, err = s.EraseDue(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.False(t, more)
	n, _, err = s.EraseDue(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n, "a second sweep erases nothing")
	require.NoError(t, s.Erase(ctx, ref), "erasing again is a no-op")

	for _, q := range []evidence.Querier{worker, auditor} {
		sh, err = freetext.Read(ctx, q, v, ref)
		if q == auditor {
			sh, err = freetext.Read(ctx, q, nil, ref)
		}
		require.NoError(t, err)
		require.Equal(t, "erased on 2028-01-02", sh.String())
	}
	var left bool
	require.NoError(t, worker.QueryRow(ctx, `SELECT wrapped_key IS NOT NULL OR text_sealed IS NOT NULL OR kms_key_id IS NOT NULL
		FROM free_texts WHERE ref = $1`, ref).Scan(&left))
	require.False(t, left, "no key or ciphertext is left")
	recs, err := evidence.Get(ctx, worker, "access-review-2026-Q4", freetext.KindErased)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Contains(t, string(recs[0].Body), `"ref":"`+ref+`"`)
	rep, err := evidence.Verify(ctx, worker, nil)
	require.NoError(t, err)
	require.True(t, rep.OK(), "the chain verifies: %+v", rep.FirstBroken)
	require.Equal(t, 2, rep.Records)
	assertNowhereInTheDatabase(t, worker, marker)
}

// assertNowhereInTheDatabase reads every row of the tables that hold text.
func assertNowhereInTheDatabase(t *testing.T, pool *pgxpool.Pool, marker string) {
	t.Helper()
	for _, table := range []string{"evidence_log", "free_texts"} {
		var dump string
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(t::text, ' '), '') FROM `+table+` t`).Scan(&dump))
		require.NotEmpty(t, dump, table)
		for _, word := range strings.Fields(marker) {
			require.NotContains(t, dump, word, "the marker is in %s", table)
		}
	}
}
