package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/evidence"
)

func pinnedKeys(t *testing.T, s *evidence.Signer) map[string]ed25519.PublicKey {
	t.Helper()
	return map[string]ed25519.PublicKey{s.KeyID(): s.PublicKey()}
}

func readHead(t *testing.T, q evidence.Querier) evidence.Head {
	t.Helper()
	h, err := evidence.ReadHead(context.Background(), q)
	require.NoError(t, err)
	return h
}

// TestPublishedHeadsCatchATruncatedOrReplacedTail: with the real signing key
// (a worker's host, or an owner who can unseal it), the tail of the log can be
// cut or replaced so that every remaining entry verifies; a head published
// before is then missing, and VerifyWith says so.
func TestPublishedHeadsCatchATruncatedOrReplacedTail(t *testing.T) {
	ctx := context.Background()
	t.Run("intact", func(t *testing.T) {
		pool, s := setup(t)
		require.Equal(t, evidence.Head{Seq: 0, Hash: evidence.GenesisHash}, readHead(t, pool))
		appendN(t, pool, s, 3)
		h3 := readHead(t, pool)
		appendTx(t, pool, s, entry(4))
		appendTx(t, pool, s, entry(5))
		h5 := readHead(t, pool)
		require.EqualValues(t, 5, h5.Seq)
		rep, err := evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s),
			Heads: []evidence.Head{h3, h5, {Seq: 0, Hash: evidence.GenesisHash}}})
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.FirstBroken)
		require.Equal(t, h5, rep.Head)
	})
	t.Run("truncated", func(t *testing.T) {
		pool, s := setup(t)
		appendN(t, pool, s, 5)
		h5 := readHead(t, pool)
		tamper(t, pool, `DELETE FROM evidence_log WHERE seq = 5`)
		tamper(t, pool, `UPDATE evidence_head SET seq = 4, hash = (SELECT hash FROM evidence_log WHERE seq = 4)`)
		rep, err := evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s)})
		require.NoError(t, err)
		require.True(t, rep.OK(), "without the published head the cut does not show")
		rep, err = evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s), Heads: []evidence.Head{h5}})
		require.NoError(t, err)
		require.NotNil(t, rep.FirstBroken)
		require.EqualValues(t, 5, rep.FirstBroken.Seq)
		require.Equal(t, fmt.Sprintf("the chain ends at seq 4 but the published head %s is later: entries were removed", h5), rep.FirstBroken.Reason)
	})
	t.Run("replaced", func(t *testing.T) {
		pool, s := setup(t)
		appendN(t, pool, s, 5)
		h5 := readHead(t, pool)
		r4, err := evidence.BySeq(ctx, pool, 4)
		require.NoError(t, err)
		h4 := evidence.Head{Seq: 4, Hash: r4.Hash}
		tamper(t, pool, `DELETE FROM evidence_log WHERE seq = 5`)
		tamper(t, pool, `UPDATE evidence_head SET seq = 4, hash = (SELECT hash FROM evidence_log WHERE seq = 4)`)
		// A different fifth entry, properly signed and linked.
		other := entry(5)
		other.IdempotencyKey += "/replaced"
		other.Body = purgeBody{OrderID: "202-0000005-0000001", Fields: 0, N: 5}
		appendTx(t, pool, s, other)
		rep, err := evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s), Heads: []evidence.Head{h4}})
		require.NoError(t, err)
		require.True(t, rep.OK(), "the head before the replaced entry is still there: %v", rep.FirstBroken)
		rep, err = evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s), Heads: []evidence.Head{h4, h5}})
		require.NoError(t, err)
		require.NotNil(t, rep.FirstBroken)
		require.EqualValues(t, 5, rep.FirstBroken.Seq)
		require.Contains(t, rep.FirstBroken.Reason, "differs from the published head "+h5.String())
	})
	t.Run("conflicting published heads", func(t *testing.T) {
		pool, s := setup(t)
		appendN(t, pool, s, 1)
		h := readHead(t, pool)
		_, err := evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s),
			Heads: []evidence.Head{h, {Seq: 1, Hash: evidence.GenesisHash}}})
		require.ErrorContains(t, err, "two published heads for seq 1")
		_, err = evidence.VerifyWith(ctx, pool, evidence.VerifyOptions{Keys: pinnedKeys(t, s),
			Heads: []evidence.Head{{Seq: 0, Hash: h.Hash}}})
		require.ErrorContains(t, err, "seq 0 is the genesis")
	})
}

func TestParseHead(t *testing.T) {
	hash := bytes.Repeat([]byte{0xab}, 32)
	h, err := evidence.ParseHead(fmt.Sprintf(" 42:%x\n", hash))
	require.NoError(t, err)
	require.Equal(t, evidence.Head{Seq: 42, Hash: hash}, h)
	back, err := evidence.ParseHead(h.String())
	require.NoError(t, err)
	require.Equal(t, h, back)
	for _, bad := range []string{"", "42", "42:", "x:" + h.String()[3:], "-1:" + h.String()[3:], "42:abcd", "42:" + strings.Repeat("zz", 32)} {
		_, err := evidence.ParseHead(bad)
		require.Error(t, err, bad)
	}
}

// TestPinnedKeysFile: what `starter evidence keys` writes is what ParseKeys
// (DPP_EVIDENCE_KEYS) reads, and a file that does not hold up is refused.
func TestPinnedKeysFile(t *testing.T) {
	pool, s := setup(t)
	kf, err := evidence.ListKeys(context.Background(), pool)
	require.NoError(t, err)
	require.Len(t, kf.Keys, 1)
	var b bytes.Buffer
	require.NoError(t, kf.Write(&b))
	require.Contains(t, b.String(), `"keyId": "`+s.KeyID()+`"`)
	require.Contains(t, b.String(), `"publicKey": "`+base64.StdEncoding.EncodeToString(s.PublicKey())+`"`)
	keys, err := evidence.ParseKeys(b.Bytes())
	require.NoError(t, err)
	require.Equal(t, pinnedKeys(t, s), keys)

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	enc := base64.StdEncoding.EncodeToString
	for name, c := range map[string]struct{ file, problem string }{
		"not JSON":      {`ed25519-x AAAA`, "not a pinned-keys file"},
		"no keys":       {`{"keys":[]}`, "lists no keys"},
		"unknown field": {`{"keys":[],"trust":"all"}`, "unknown field"},
		"short key":     {`{"keys":[{"keyId":"ed25519-x","publicKey":"` + enc(pub[:16]) + `"}]}`, "has 16 bytes"},
		"id mismatch": {`{"keys":[{"keyId":"` + s.KeyID() + `","publicKey":"` + enc(pub) + `"}]}`,
			"does not match its public key"},
	} {
		_, err := evidence.ParseKeys([]byte(c.file))
		require.ErrorContains(t, err, c.problem, name)
	}
}
