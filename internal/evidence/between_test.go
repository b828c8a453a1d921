package evidence_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/evidence"
)

// Between returns a gap-free run of the chain even where an appender's clock
// put an entry before its predecessor: the period's entries link up on their own.
func TestBetweenIsGapFree(t *testing.T) {
	pool, s := setup(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, offset := range []time.Duration{-time.Hour, 2 * time.Hour, 30 * time.Minute, 3 * time.Hour, 30 * time.Hour} {
		e := entry(i + 1)
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, _, err := evidence.Append(ctx, tx, s, e, base.Add(offset))
			return err
		}))
	}
	recs, err := evidence.Between(ctx, pool, base.Add(time.Hour), base.Add(24*time.Hour))
	require.NoError(t, err)
	var seqs []int64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	// seq 3 was recorded before the period's start but sits between 2 and 4.
	require.Equal(t, []int64{2, 3, 4}, seqs)
	none, err := evidence.Between(ctx, pool, base.Add(48*time.Hour), base.Add(72*time.Hour))
	require.NoError(t, err)
	require.Empty(t, none)
}
