package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// What an auditor keeps outside the database: the public signing keys (pinned
// when they are created, re-pinned when one is rotated) and heads of the chain
// published over time. With both, an owner who switches the triggers off, rewrites
// entries and signs them with a key of their own, or cuts the tail of the log,
// is caught by VerifyWith.

// KeyFile is the pinned-keys file (DPP_EVIDENCE_KEYS), exactly what
// `starter evidence keys` prints:
//
//	{
//	  "keys": [
//	    {
//	      "keyId": "ed25519-3f1c9a6e0b7d2c45",
//	      "publicKey": "<the 32-byte Ed25519 public key, standard base64>",
//	      "createdAt": "2026-12-01T10:12:03.123456Z"
//	    }
//	  ]
//	}
//
// createdAt and retiredAt are informational; keyId must be KeyIDFor(publicKey).
type KeyFile struct {
	Keys []PublicKey `json:"keys"`
}

// PublicKey is one signing key's public half.
type PublicKey struct {
	KeyID     string     `json:"keyId"`
	PublicKey []byte     `json:"publicKey"` // base64 in JSON
	CreatedAt time.Time  `json:"createdAt,omitzero"`
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
}

// ListKeys reads every signing key's public half (what dpp_auditor may read), in
// order of creation.
func ListKeys(ctx context.Context, q Querier) (KeyFile, error) {
	rows, err := q.Query(ctx, `SELECT key_id, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at, key_id`)
	if err != nil {
		return KeyFile{}, fmt.Errorf("evidence: list keys: %w", err)
	}
	defer rows.Close()
	kf := KeyFile{Keys: []PublicKey{}}
	for rows.Next() {
		var k PublicKey
		if err := rows.Scan(&k.KeyID, &k.PublicKey, &k.CreatedAt, &k.RetiredAt); err != nil {
			return KeyFile{}, fmt.Errorf("evidence: list keys: %w", err)
		}
		k.CreatedAt = k.CreatedAt.UTC()
		if k.RetiredAt != nil {
			t := k.RetiredAt.UTC()
			k.RetiredAt = &t
		}
		kf.Keys = append(kf.Keys, k)
	}
	if err := rows.Err(); err != nil {
		return KeyFile{}, fmt.Errorf("evidence: list keys: %w", err)
	}
	return kf, nil
}

// Write writes kf as the pinned-keys file format.
func (kf KeyFile) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(kf)
}

// ParseKeys reads a pinned-keys file and returns its keys by key id, each checked:
// an Ed25519 public key of the right size whose id is KeyIDFor it.
func ParseKeys(b []byte) (map[string]ed25519.PublicKey, error) {
	var kf KeyFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf(`not a pinned-keys file ({"keys":[{"keyId":...,"publicKey":...}]}, as "starter evidence keys" prints): %w`, err)
	}
	if len(kf.Keys) == 0 {
		return nil, errors.New("the pinned-keys file lists no keys")
	}
	keys := make(map[string]ed25519.PublicKey, len(kf.Keys))
	for i, k := range kf.Keys {
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %d (%q): publicKey has %d bytes, want %d", i+1, k.KeyID, len(k.PublicKey), ed25519.PublicKeySize)
		}
		pub := ed25519.PublicKey(k.PublicKey)
		if want := KeyIDFor(pub); k.KeyID != want {
			return nil, fmt.Errorf("key %d: keyId %q does not match its public key (whose id is %q)", i+1, k.KeyID, want)
		}
		keys[k.KeyID] = pub
	}
	return keys, nil
}

// LoadKeysFile is ParseKeys of the file at path.
func LoadKeysFile(path string) (map[string]ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// Head is a position in the chain: an entry's seq and hash (seq 0 and
// GenesisHash before the first entry). Its text form, SEQ:HASH with the hash in
// hex, is what `starter evidence head` prints and `verify --head` takes.
type Head struct {
	Seq  int64
	Hash []byte
}

func (h Head) String() string { return fmt.Sprintf("%d:%x", h.Seq, h.Hash) }

// ParseHead parses SEQ:HASH (the hash as 64 hex digits).
func ParseHead(s string) (Head, error) {
	seqText, hashText, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq < 0 {
		return Head{}, fmt.Errorf("head %q: want SEQ:HASH, e.g. 42:%x", s, GenesisHash)
	}
	hash, err := hex.DecodeString(hashText)
	if err != nil || len(hash) != len(GenesisHash) {
		return Head{}, fmt.Errorf("head %q: the hash must be %d hex digits", s, 2*len(GenesisHash))
	}
	return Head{Seq: seq, Hash: hash}, nil
}

// ReadHead returns the chain's current head: the head row, checked against the
// entry it points to.
func ReadHead(ctx context.Context, q Querier) (Head, error) {
	var h Head
	var entryHash []byte
	err := q.QueryRow(ctx, `SELECT h.seq, h.hash, l.hash FROM evidence_head h
		LEFT JOIN evidence_log l ON l.seq = h.seq WHERE h.id = 1`).Scan(&h.Seq, &h.Hash, &entryHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return Head{}, errors.New("evidence: head row is missing")
	}
	if err != nil {
		return Head{}, fmt.Errorf("evidence: read head: %w", err)
	}
	switch {
	case h.Seq == 0 && entryHash == nil && bytes.Equal(h.Hash, GenesisHash):
	case entryHash == nil:
		return Head{}, fmt.Errorf("evidence: the head points to seq %d, which is not in the log", h.Seq)
	case !bytes.Equal(entryHash, h.Hash):
		return Head{}, fmt.Errorf("evidence: the head's hash differs from that of seq %d", h.Seq)
	}
	return h, nil
}
