package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/vault"
)

// SigningKeyContext is the vault context of the data key that seals the signing
// key's private half (the KMS encryption context; no PII).
var SigningKeyContext = vault.Context{OrderID: "evidence-signing-key", Purpose: "signing-key"}

// Signer signs evidence entries with the active Ed25519 signing key.
type Signer struct {
	keyID string
	priv  ed25519.PrivateKey
	pub   ed25519.PublicKey
}

// KeyID is the id of the signing key, stored with every entry it signs.
func (s *Signer) KeyID() string { return s.keyID }

// PublicKey is the key that verifies this signer's signatures.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.pub }

// LoadOrCreateSigner returns a Signer for the active signing key, unsealing its
// private key with a vault data key. On the very first start there is none: it
// generates an Ed25519 key, seals the private key with a fresh data key
// (SigningKeyContext) and stores it. Concurrent first starts converge on one
// active key: each inserts with ON CONFLICT DO NOTHING against the one-active-key
// index, then all read back the key that won.
func LoadOrCreateSigner(ctx context.Context, pool *pgxpool.Pool, v *vault.Vault) (*Signer, error) {
	if pool == nil || v == nil {
		return nil, errors.New("evidence: signer: pool and vault are required")
	}
	s, err := loadActiveSigner(ctx, pool, v)
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return s, err
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("evidence: signer: generate key: %w", err)
	}
	defer clear(priv)
	keyID := KeyIDFor(pub)

	dk, err := v.NewDataKey(ctx, SigningKeyContext)
	if err != nil {
		return nil, fmt.Errorf("evidence: signer: %w", err)
	}
	defer dk.Destroy()
	sealed, err := dk.Seal(sealedKeyField(keyID), priv.Seed())
	if err != nil {
		return nil, fmt.Errorf("evidence: signer: seal key: %w", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO signing_keys
		(key_id, public_key, sealed_private_key, kms_key_id, wrapped_data_key)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		keyID, []byte(pub), sealed, dk.KMSKeyID, dk.Wrapped); err != nil {
		return nil, fmt.Errorf("evidence: signer: store key: %w", err)
	}

	s, err = loadActiveSigner(ctx, pool, v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errors.New("evidence: signer: no active signing key after creating one")
	}
	return s, err
}

// KeyIDFor is the id a signing key gets: "ed25519-" and the first 8 bytes of the
// SHA-256 of its public key, in hex.
func KeyIDFor(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519-" + hex.EncodeToString(sum[:8])
}

// sealedKeyField binds the sealed private key to its key id (vault additional data).
func sealedKeyField(keyID string) string { return "ed25519-seed/" + keyID }

// loadActiveSigner unseals the active key; pgx.ErrNoRows (wrapped) if there is none.
func loadActiveSigner(ctx context.Context, q Querier, v *vault.Vault) (*Signer, error) {
	var (
		keyID, kmsKeyID        string
		pub, sealed, wrappedDK []byte
	)
	err := q.QueryRow(ctx, `SELECT key_id, public_key, sealed_private_key, kms_key_id, wrapped_data_key
		FROM signing_keys WHERE retired_at IS NULL`).Scan(&keyID, &pub, &sealed, &kmsKeyID, &wrappedDK)
	if err != nil {
		return nil, fmt.Errorf("evidence: signer: read active key: %w", err)
	}
	dk, err := v.OpenDataKey(ctx, SigningKeyContext, kmsKeyID, wrappedDK)
	if err != nil {
		return nil, fmt.Errorf("evidence: signer: unwrap data key of %s: %w", keyID, err)
	}
	defer dk.Destroy()
	seed, err := dk.Open(sealedKeyField(keyID), sealed)
	if err != nil {
		return nil, fmt.Errorf("evidence: signer: unseal %s: %w", keyID, err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("evidence: signer: sealed key %s has the wrong size", keyID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	derived := priv.Public().(ed25519.PublicKey)
	if !bytes.Equal(derived, pub) {
		clear(priv)
		return nil, fmt.Errorf("evidence: signer: sealed key %s does not match its public key", keyID)
	}
	return &Signer{keyID: keyID, priv: priv, pub: derived}, nil
}
