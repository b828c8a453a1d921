// Package vault is envelope encryption for buyer PII and other sealed records.
//
// Every order (and purpose, e.g. "pii" or "tax-record") gets its own AES-256 data
// key from KMS GenerateDataKey. Only the KMS-wrapped copy of the key is stored; the
// plaintext key lives in memory while a DataKey is in use and is zeroed by Destroy.
// Destroying every stored wrapped copy is the Cryptographic Erase of NIST SP 800-88.
//
// The KMS encryption context is {"orderId": ..., "purpose": ...}. It is logged in
// CloudTrail, so it must never carry PII: only order ids and fixed purpose names.
//
// Field ciphertexts are AES-256-GCM with a random 96-bit nonce, laid out as
//
//	nonce (12 bytes) || ciphertext || tag (16 bytes)
//
// and authenticated with additional data that binds them to one order, purpose and
// field (see aad), so a ciphertext copied to another field or order fails to open.
//
// Errors from this package never contain plaintext or key bytes.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the part of the AWS KMS client the vault uses; *kms.Client implements it.
type KMS interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Encryption-context keys sent to KMS with every GenerateDataKey and Decrypt.
const (
	ContextKeyOrderID = "orderId"
	ContextKeyPurpose = "purpose"
)

// aadVersion is the first element of the additional data of every field
// ciphertext; a new ciphertext format gets a new version.
const aadVersion = "dpp-vault-v1"

const (
	keySize   = 32 // AES-256
	nonceSize = 12 // 96-bit GCM nonce
	tagSize   = 16
)

var (
	// ErrDecrypt means a field ciphertext failed authentication: it was tampered
	// with, or it belongs to another order, purpose or field, or another key.
	ErrDecrypt = errors.New("vault: ciphertext failed authentication")
	// ErrDestroyed means the data key was used after Destroy.
	ErrDestroyed = errors.New("vault: data key destroyed")
)

// Vault wraps and unwraps per-order data keys with one KMS key.
type Vault struct {
	client KMS
	keyID  string
	cache  *keyCache // nil: no cache
}

// New returns a Vault that generates data keys under the KMS key keyID (a key id,
// key ARN, alias name or alias ARN).
func New(client KMS, keyID string, opts ...Option) (*Vault, error) {
	if client == nil {
		return nil, errors.New("vault: KMS client is required")
	}
	if keyID == "" {
		return nil, errors.New("vault: KMS key id is required")
	}
	v := &Vault{client: client, keyID: keyID}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// KeyID is the KMS key new data keys are generated under, as configured.
func (v *Vault) KeyID() string { return v.keyID }

// Context names what a data key protects. It becomes the KMS encryption context
// (logged in CloudTrail) and part of every ciphertext's additional data, so it must
// never contain PII: an order id and a fixed purpose name only.
type Context struct {
	OrderID string
	Purpose string
}

func (c Context) validate() error {
	if c.OrderID == "" || c.Purpose == "" {
		return errors.New("vault: context needs both OrderID and Purpose")
	}
	return nil
}

// EncryptionContext is the KMS encryption context of a data key bound to c; a
// KMS ReEncrypt of its wrapped form must send it as both source and destination.
func (c Context) EncryptionContext() map[string]string { return c.encryptionContext() }

func (c Context) encryptionContext() map[string]string {
	return map[string]string{ContextKeyOrderID: c.OrderID, ContextKeyPurpose: c.Purpose}
}

// DataKey is an unwrapped AES-256 data key for one Context. Store Wrapped and
// KMSKeyID; never store or log the key itself. Seal and Open may be called from
// several goroutines at once, but not concurrently with Destroy.
type DataKey struct {
	key  [keySize]byte
	aead cipher.AEAD
	// aadPrefix is the encoded (version, orderId, purpose); the field is appended.
	aadPrefix []byte

	// Wrapped is the data key encrypted by KMS (the CiphertextBlob).
	Wrapped []byte
	// KMSKeyID is the ARN of the KMS key that wrapped it, as KMS reported it.
	KMSKeyID string
	// Context is the encryption context the key is bound to.
	Context Context
}

// NewDataKey asks KMS for a fresh AES-256 data key bound to c, wrapped by the
// configured key.
func (v *Vault) NewDataKey(ctx context.Context, c Context) (*DataKey, error) {
	return v.NewDataKeyUnder(ctx, c, v.keyID)
}

// NewDataKeyUnder asks KMS for a fresh AES-256 data key bound to c, wrapped by
// the KMS key keyID (a key epoch's key) instead of the configured one.
func (v *Vault) NewDataKeyUnder(ctx context.Context, c Context, keyID string) (*DataKey, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if keyID == "" {
		return nil, errors.New("vault: KMS key id is required")
	}
	out, err := v.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: c.encryptionContext(),
	})
	if err != nil {
		return nil, newKMSError("GenerateDataKey", c, err)
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != keySize || len(out.CiphertextBlob) == 0 {
		return nil, &KMSError{Op: "GenerateDataKey", Context: c,
			Err: fmt.Errorf("unexpected response: %d-byte key, %d-byte blob", len(out.Plaintext), len(out.CiphertextBlob))}
	}
	kmsKeyID := aws.ToString(out.KeyId)
	if kmsKeyID == "" {
		kmsKeyID = keyID
	}
	v.cache.put(c, out.CiphertextBlob, out.Plaintext, kmsKeyID)
	return newDataKey(c, out.Plaintext, out.CiphertextBlob, kmsKeyID)
}

// OpenDataKey unwraps a stored data key with KMS Decrypt, using the same
// encryption context and requiring the KMS key kmsKeyID (empty lets KMS pick the
// key from the blob). A wrong context fails with InvalidCiphertextException.
func (v *Vault) OpenDataKey(ctx context.Context, c Context, kmsKeyID string, wrapped []byte) (*DataKey, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if len(wrapped) == 0 {
		return nil, errors.New("vault: wrapped data key is empty")
	}
	if e, ok := v.cache.get(c, wrapped); ok {
		defer clear(e.key[:])
		return newDataKey(c, e.key[:], append([]byte(nil), wrapped...), e.kmsKeyID)
	}
	in := &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		EncryptionContext: c.encryptionContext(),
	}
	if kmsKeyID != "" {
		in.KeyId = aws.String(kmsKeyID)
	}
	out, err := v.client.Decrypt(ctx, in)
	if err != nil {
		return nil, newKMSError("Decrypt", c, err)
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != keySize {
		return nil, &KMSError{Op: "Decrypt", Context: c,
			Err: fmt.Errorf("unexpected response: %d-byte key", len(out.Plaintext))}
	}
	if got := aws.ToString(out.KeyId); got != "" {
		kmsKeyID = got
	}
	v.cache.put(c, wrapped, out.Plaintext, kmsKeyID)
	return newDataKey(c, out.Plaintext, append([]byte(nil), wrapped...), kmsKeyID)
}

func newDataKey(c Context, plaintext, wrapped []byte, kmsKeyID string) (*DataKey, error) {
	k := &DataKey{Wrapped: wrapped, KMSKeyID: kmsKeyID, Context: c}
	copy(k.key[:], plaintext)
	block, err := aes.NewCipher(k.key[:])
	if err != nil {
		k.Destroy()
		return nil, errors.New("vault: cannot create AES cipher")
	}
	k.aead, err = cipher.NewGCM(block)
	if err != nil {
		k.Destroy()
		return nil, errors.New("vault: cannot create GCM")
	}
	k.aadPrefix = appendLP(nil, aadVersion)
	k.aadPrefix = appendLP(k.aadPrefix, c.OrderID)
	k.aadPrefix = appendLP(k.aadPrefix, c.Purpose)
	return k, nil
}

// appendLP appends s with a 4-byte big-endian length prefix.
func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// aad is the additional data of one field's ciphertext: the length-prefixed
// encoding of (version, orderId, purpose, field), each as a 4-byte big-endian
// length followed by the UTF-8 bytes.
func (k *DataKey) aad(field string) []byte {
	b := make([]byte, 0, len(k.aadPrefix)+4+len(field))
	b = append(b, k.aadPrefix...)
	return appendLP(b, field)
}

// Seal encrypts plaintext for the named field (a column or attribute name such as
// "buyerName", never a value). The result is nonce || ciphertext || tag.
func (k *DataKey) Seal(field string, plaintext []byte) ([]byte, error) {
	if k.aead == nil {
		return nil, ErrDestroyed
	}
	if field == "" {
		return nil, errors.New("vault: field name is required")
	}
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("vault: nonce: %w", err)
	}
	return k.aead.Seal(out, out, plaintext, k.aad(field)), nil
}

// Open decrypts a ciphertext made by Seal for the same order, purpose and field.
// Any mismatch or tampering returns an error wrapping ErrDecrypt.
func (k *DataKey) Open(field string, ciphertext []byte) ([]byte, error) {
	if k.aead == nil {
		return nil, ErrDestroyed
	}
	if len(ciphertext) < nonceSize+tagSize {
		return nil, fmt.Errorf("field %q: ciphertext too short: %w", field, ErrDecrypt)
	}
	pt, err := k.aead.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], k.aad(field))
	if err != nil {
		return nil, fmt.Errorf("field %q of order %q purpose %q: %w", field, k.Context.OrderID, k.Context.Purpose, ErrDecrypt)
	}
	return pt, nil
}

// Destroy zeroes the plaintext key and makes the DataKey unusable. (The AES key
// schedule inside crypto/aes cannot be zeroed from outside; dropping the last
// reference leaves it to the garbage collector.) Destroy is idempotent.
func (k *DataKey) Destroy() {
	if k == nil {
		return
	}
	clear(k.key[:])
	k.aead = nil
}
