// Package codec encrypts every Temporal payload dpp writes (workflow inputs and
// results, activity inputs and results, signals, queries, memos, and, through the
// failure converter, failure messages and stack traces) and serves the codec
// endpoints the Temporal Web UI and the `temporal` CLI decode them through.
//
// # Format
//
// An encoded payload is AES-256-GCM over the protobuf encoding of the original
// payload (metadata and data), optionally compressed first:
//
//	metadata["encoding"]               = "binary/encrypted"
//	metadata["encryption-format"]      = "dpp-codec-v2" (or the older "dpp-codec-v1")
//	metadata["encryption-key-id"]      = ARN of the KMS key that wrapped the data key
//	metadata["encryption-data-key"]    = the wrapped data key (KMS CiphertextBlob)
//	metadata["encryption-compression"] = "deflate", only when compressed
//	data                               = nonce (12 bytes) || ciphertext || tag (16 bytes)
//
// The additional data of the AEAD binds the format, the key id, the wrapped key,
// the compression and the encoding (and, in v2, the namespace), so none of that
// metadata can be swapped.
// Payloads whose encoding is not "binary/encrypted" decode to themselves, so
// histories written before the codec still replay.
//
// # Keys
//
// Encoding never calls KMS per payload: a process asks KMS GenerateDataKey for one
// data key and uses it for at most MaxKeyAge (default 1 h) or MaxKeyUses payloads
// (default 100 000), then generates the next. Each payload names its key, so
// changing the encoding key (DPP_CODEC_KMS_KEY_ID) is a rotation: old payloads keep
// decoding under the key they name. Decoding unwraps each data key once with KMS
// Decrypt and keeps it in a bounded LRU cache (default 1024 keys), so a worker does
// one KMS call per data key, not per payload.
//
// The KMS encryption context of a v2 data key is {"purpose": "temporal-payload",
// "namespace": <Temporal namespace>}: KMS unwraps it only for a codec of the same
// namespace, so a payload (or a wrapped key) copied from another namespace does
// not decode. v1 payloads, written before the namespace was bound, have the
// context {"purpose": "temporal-payload"} and keep decoding; new payloads are
// always v2. The format is in the AEAD's additional data and the context is
// fixed by KMS, so relabelling a v2 payload as v1 fails.
//
// Decoding calls KMS Decrypt only for keys in an allow-list: the encoding key and
// Options.PreviousKeyIDs, resolved to their ARNs (DescribeKey, once). A payload
// naming any other key is refused without a KMS call, so it cannot make the
// worker decrypt under a key of someone else's choosing.
//
// # Limits
//
// One payload inflates to at most Options.MaxPayloadSize (default 8 MiB, four
// times Temporal's default 2 MiB payload limit); the encoder refuses larger
// payloads, so whatever it writes decodes. The codec server also caps the bytes
// one request decodes to (ServerOptions.MaxDecoded).
//
// The codec is a pure function of the payload: it ignores the SDK's serialization
// context, so any client with access to the KMS key decodes any payload.
//
// # Failures
//
// Encode and Decode errors are converter.WorkflowTaskFailureError: during a
// workflow task they fail the task, which Temporal retries, never the workflow
// (a KMS outage delays workflows; it does not fail them). Errors never contain
// payload contents.
package codec

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/plusranger/dpp/internal/vault"
)

// Metadata keys and values of an encoded payload.
const (
	MetadataEncoding    = converter.MetadataEncoding // "encoding"
	MetadataFormat      = "encryption-format"
	MetadataKeyID       = "encryption-key-id"
	MetadataDataKey     = "encryption-data-key"
	MetadataCompression = "encryption-compression"

	EncodingEncrypted = "binary/encrypted"
	// FormatV1 payloads have data keys without the namespace in their encryption
	// context; they are still decoded, never written.
	FormatV1 = "dpp-codec-v1"
	// FormatV2 binds the Temporal namespace into the KMS encryption context and
	// the AEAD's additional data.
	FormatV2         = "dpp-codec-v2"
	CompressionFlate = "deflate"
)

// Defaults of Options.
const (
	DefaultMaxKeyAge         = time.Hour
	DefaultMaxKeyUses        = 100_000
	DefaultCacheSize         = 1024
	DefaultKMSTimeout        = 5 * time.Second
	DefaultCompressThreshold = 1024
	DefaultNamespace         = "default"
	// DefaultMaxPayloadSize is four times Temporal's default payload size limit
	// (2 MiB): room for a compressed payload that inflates well.
	DefaultMaxPayloadSize = 8 << 20
)

const (
	keySize   = 32
	nonceSize = 12
	tagSize   = 16
	// maxWrappedKey bounds the wrapped data key read from metadata.
	maxWrappedKey = 4096
	// refreshRetry is how long encoding keeps using an expired key after a
	// failed GenerateDataKey before asking KMS again.
	refreshRetry = 5 * time.Second
)

// ContextKeyNamespace is the encryption-context key of the Temporal namespace.
const ContextKeyNamespace = "namespace"

// encryptionContext is the KMS encryption context of a codec data key of the
// given format. It is logged in CloudTrail, so it names only the purpose and
// the namespace.
func (c *Codec) encryptionContext(format string) map[string]string {
	if format == FormatV1 {
		return map[string]string{vault.ContextKeyPurpose: "temporal-payload"}
	}
	return map[string]string{vault.ContextKeyPurpose: "temporal-payload", ContextKeyNamespace: c.opts.Namespace}
}

// ErrAuthentication means an encrypted payload failed AEAD authentication: it was
// tampered with, its metadata was changed, or its data key is not the one it names.
var ErrAuthentication = errors.New("codec: encrypted payload failed authentication")

// ErrTooLarge means a payload (or a codec server request) would decode to more
// bytes than allowed.
var ErrTooLarge = errors.New("codec: decoded size over the limit")

// ErrKeyNotAllowed means a payload names a KMS key outside the allow-list.
var ErrKeyNotAllowed = errors.New("codec: payload names a KMS key that is not allowed")

// Options configure a Codec. Only KeyID is required.
type Options struct {
	// KeyID is the KMS key (id, ARN, alias name or alias ARN) new data keys are
	// generated under.
	KeyID string
	// PreviousKeyIDs are the other keys (ids, ARNs or aliases) payloads may be
	// decoded under: the keys KeyID named before a rotation. Decoding asks KMS
	// only for KeyID and these; a payload naming another key is refused.
	PreviousKeyIDs []string
	// Namespace is the Temporal namespace bound into each data key's encryption
	// context (default "default").
	Namespace string
	// MaxPayloadSize bounds the size of one payload before encryption and after
	// decompression (default 8 MiB).
	MaxPayloadSize int
	// MaxKeyAge and MaxKeyUses bound how long and for how many payloads one data
	// key encodes (defaults 1 h and 100 000).
	MaxKeyAge  time.Duration
	MaxKeyUses int64
	// CacheSize bounds the unwrapped data keys kept for decoding (default 1024).
	CacheSize int
	// KMSTimeout bounds each KMS call, retries included (default 5 s): codec calls
	// count against the workflow task timeout (10 s by default).
	KMSTimeout time.Duration
	// CompressThreshold: payloads larger than this many bytes are compressed
	// before encryption when that makes them smaller (default 1 KiB; negative
	// disables compression).
	CompressThreshold int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Codec is the payload codec. It is safe for concurrent use.
type Codec struct {
	kms  vault.KMS
	opts Options

	mu              sync.Mutex // guards current and lastRefreshFail
	current         *dataKey
	lastRefreshFail time.Time

	cache *keyCache
	allow *allowList

	generated atomic.Int64
	decrypted atomic.Int64
}

var _ converter.PayloadCodec = (*Codec)(nil)

// dataKey is an unwrapped data key.
type dataKey struct {
	aead    cipher.AEAD
	keyID   string // ARN of the KMS key that wrapped it
	wrapped []byte
	created time.Time
	uses    int64 // encodings so far; guarded by Codec.mu
}

// New returns a codec that wraps its data keys with KMS through client.
func New(client vault.KMS, opts Options) (*Codec, error) {
	if client == nil {
		return nil, errors.New("codec: KMS client is required")
	}
	if opts.KeyID == "" {
		return nil, errors.New("codec: KMS key id is required")
	}
	if opts.MaxKeyAge <= 0 {
		opts.MaxKeyAge = DefaultMaxKeyAge
	}
	if opts.MaxKeyUses <= 0 {
		opts.MaxKeyUses = DefaultMaxKeyUses
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.KMSTimeout <= 0 {
		opts.KMSTimeout = DefaultKMSTimeout
	}
	if opts.CompressThreshold == 0 {
		opts.CompressThreshold = DefaultCompressThreshold
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.MaxPayloadSize <= 0 {
		opts.MaxPayloadSize = DefaultMaxPayloadSize
	}
	return &Codec{kms: client, opts: opts, cache: newKeyCache(opts.CacheSize),
		allow: newAllowList(append([]string{opts.KeyID}, opts.PreviousKeyIDs...))}, nil
}

// withOwnCache returns a codec like c (same KMS client, options and allow-list)
// with a data-key cache of its own of the given size: the codec server's
// requests then cannot evict the keys the worker decodes with.
func (c *Codec) withOwnCache(size int) *Codec {
	if size <= 0 {
		size = c.opts.CacheSize
	}
	return &Codec{kms: c.kms, opts: c.opts, cache: newKeyCache(size), allow: c.allow}
}

// KeyID is the configured encoding key.
func (c *Codec) KeyID() string { return c.opts.KeyID }

// Stats counts KMS calls: data keys generated and data keys unwrapped.
func (c *Codec) Stats() (generated, decrypted int64) {
	return c.generated.Load(), c.decrypted.Load()
}

// Warm generates the first encoding key and resolves the allow-list of
// decoding keys now, so a wrong key id or an unreachable KMS is reported at
// start rather than at the first payload.
func (c *Codec) Warm(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == nil {
		k, err := c.generate(ctx)
		if err != nil {
			return err
		}
		c.current = k
	}
	return c.allow.resolve(ctx, c.kms, true)
}

// Encode encrypts every payload. Its errors are converter.WorkflowTaskFailureError.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		enc, err := c.encodeOne(p)
		if err != nil {
			return nil, converter.NewWorkflowTaskFailureError(err)
		}
		out[i] = enc
	}
	return out, nil
}

// Decode decrypts every encrypted payload and passes others through unchanged.
// Its errors are converter.WorkflowTaskFailureError.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return c.decodeWithin(payloads, -1)
}

// decodeWithin is Decode that stops, with ErrTooLarge, once the decoded
// payloads together exceed budget bytes (no limit when negative); each one
// stops inflating at the budget left.
func (c *Codec) decodeWithin(payloads []*commonpb.Payload, budget int64) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	left := budget
	for i, p := range payloads {
		dec := p
		if IsEncrypted(p) {
			var err error
			if dec, err = c.decodeOne(p, left); err != nil {
				return nil, converter.NewWorkflowTaskFailureError(err)
			}
		}
		if budget >= 0 {
			if left -= int64(proto.Size(dec)); left < 0 {
				return nil, converter.NewWorkflowTaskFailureError(
					fmt.Errorf("%w: the payloads decode to more than %d bytes together", ErrTooLarge, budget))
			}
		}
		out[i] = dec
	}
	return out, nil
}

// IsEncrypted reports whether p is an encrypted payload (of this codec or another).
func IsEncrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[MetadataEncoding]) == EncodingEncrypted
}

// KeyIDOf returns the KMS key id an encrypted payload names ("" if none).
func KeyIDOf(p *commonpb.Payload) string {
	return string(p.GetMetadata()[MetadataKeyID])
}

func (c *Codec) encodeOne(p *commonpb.Payload) (*commonpb.Payload, error) {
	if p == nil {
		return nil, errors.New("codec: nil payload")
	}
	body, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("codec: marshal payload: %w", err)
	}
	if len(body) > c.opts.MaxPayloadSize {
		// No decoder would read it back: refuse it here, not in every workflow
		// task that would try to decode it.
		return nil, fmt.Errorf("%w: a %d-byte payload, the limit is %d", ErrTooLarge, len(body), c.opts.MaxPayloadSize)
	}
	compression := ""
	if c.opts.CompressThreshold > 0 && len(body) > c.opts.CompressThreshold {
		if z, err := deflate(body); err == nil && len(z) < len(body) {
			body, compression = z, CompressionFlate
		}
	}
	return c.seal(body, compression)
}

// seal encrypts body (compressed as compression says) under the current data
// key in the current format.
func (c *Codec) seal(body []byte, compression string) (*commonpb.Payload, error) {
	k, err := c.encodingKey()
	if err != nil {
		return nil, err
	}
	md := map[string][]byte{
		MetadataEncoding: []byte(EncodingEncrypted),
		MetadataFormat:   []byte(FormatV2),
		MetadataKeyID:    []byte(k.keyID),
		MetadataDataKey:  k.wrapped,
	}
	if compression != "" {
		md[MetadataCompression] = []byte(compression)
	}
	data := make([]byte, nonceSize, nonceSize+len(body)+tagSize)
	if _, err := rand.Read(data); err != nil {
		return nil, fmt.Errorf("codec: nonce: %w", err)
	}
	data = k.aead.Seal(data, data, body, c.additionalData(md))
	return &commonpb.Payload{Metadata: md, Data: data}, nil
}

// decodeOne decrypts one encrypted payload, which may inflate to at most
// budget bytes (and MaxPayloadSize; no budget when negative).
func (c *Codec) decodeOne(p *commonpb.Payload, budget int64) (*commonpb.Payload, error) {
	md := p.GetMetadata()
	format := string(md[MetadataFormat])
	if format != FormatV1 && format != FormatV2 {
		if format == "" {
			return nil, errors.New("codec: encrypted payload of another codec (no encryption-format metadata)")
		}
		return nil, fmt.Errorf("codec: unknown encryption-format %q", truncate(format, 40))
	}
	keyID, wrapped := string(md[MetadataKeyID]), md[MetadataDataKey]
	if keyID == "" || len(wrapped) == 0 || len(wrapped) > maxWrappedKey {
		return nil, errors.New("codec: encrypted payload lacks a valid key id or data key")
	}
	compression := string(md[MetadataCompression])
	if compression != "" && compression != CompressionFlate {
		return nil, fmt.Errorf("codec: unknown encryption-compression %q", truncate(compression, 40))
	}
	if len(p.GetData()) < nonceSize+tagSize {
		return nil, fmt.Errorf("codec: encrypted payload too short: %w", ErrAuthentication)
	}
	limit := int64(c.opts.MaxPayloadSize)
	if budget >= 0 && budget < limit {
		limit = budget
	}
	if int64(len(p.GetData())) > limit+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: a %d-byte encrypted payload", ErrTooLarge, len(p.GetData()))
	}
	k, err := c.decodingKey(format, keyID, wrapped)
	if err != nil {
		return nil, err
	}
	data := p.GetData()
	body, err := k.aead.Open(nil, data[:nonceSize], data[nonceSize:], c.additionalData(md))
	if err != nil {
		return nil, fmt.Errorf("codec: payload under KMS key %s: %w", keyID, ErrAuthentication)
	}
	if compression == CompressionFlate {
		if body, err = inflate(body, limit); err != nil {
			return nil, err
		}
	}
	var inner commonpb.Payload
	if err := proto.Unmarshal(body, &inner); err != nil {
		return nil, errors.New("codec: decrypted payload is not a Temporal payload")
	}
	return &inner, nil
}

// additionalData is the AEAD additional data of a payload: the length-prefixed
// (4-byte big-endian) encoding of a label and the metadata that matters, and in
// v2 the namespace.
func (c *Codec) additionalData(md map[string][]byte) []byte {
	fields := [][]byte{[]byte("dpp temporal payload"), md[MetadataFormat], md[MetadataKeyID],
		md[MetadataDataKey], md[MetadataCompression], md[MetadataEncoding]}
	if string(md[MetadataFormat]) != FormatV1 {
		fields = append(fields, []byte(c.opts.Namespace))
	}
	// Every payload encoded or decoded builds one: size it once rather than
	// growing it field by field.
	n := 0
	for _, v := range fields {
		n += 4 + len(v)
	}
	b := make([]byte, 0, n)
	for _, v := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// encodingKey returns the current data key, generating a new one when it is too
// old or used too often. If KMS fails, an expired key keeps encoding for up to
// another MaxKeyAge/MaxKeyUses (asking KMS again every few seconds), so a short
// KMS outage does not stop workers that have a key.
func (c *Codec) encodingKey() (*dataKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	k := c.current
	fresh := k != nil && now.Sub(k.created) < c.opts.MaxKeyAge && k.uses < c.opts.MaxKeyUses
	if !fresh {
		usable := k != nil && now.Sub(k.created) < 2*c.opts.MaxKeyAge && k.uses < 2*c.opts.MaxKeyUses
		if usable && now.Sub(c.lastRefreshFail) < refreshRetry {
			k.uses++
			return k, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.KMSTimeout)
		next, err := c.generate(ctx)
		cancel()
		if err != nil {
			if usable {
				c.lastRefreshFail = now
				k.uses++
				return k, nil
			}
			return nil, err
		}
		c.current, k = next, next
	}
	k.uses++
	return k, nil
}

// generate asks KMS for a new data key and remembers it for decoding too.
func (c *Codec) generate(ctx context.Context) (*dataKey, error) {
	out, err := c.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(c.opts.KeyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: c.encryptionContext(FormatV2),
	})
	if err != nil {
		return nil, kmsError("GenerateDataKey", c.opts.KeyID, err)
	}
	c.generated.Add(1)
	defer clear(out.Plaintext)
	keyID := aws.ToString(out.KeyId)
	if keyID == "" {
		keyID = c.opts.KeyID
	}
	if len(out.Plaintext) != keySize || len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > maxWrappedKey {
		return nil, fmt.Errorf("codec: KMS GenerateDataKey under %s: unexpected %d-byte key, %d-byte blob",
			c.opts.KeyID, len(out.Plaintext), len(out.CiphertextBlob))
	}
	k, err := newDataKey(out.Plaintext, keyID, out.CiphertextBlob, c.opts.Now())
	if err != nil {
		return nil, err
	}
	c.allow.learn(keyID)
	c.cache.put(cacheKey(FormatV2, keyID, k.wrapped), k)
	return k, nil
}

// decodingKey returns the unwrapped data key, from the cache or from KMS Decrypt.
// Concurrent callers for the same key share one KMS call. A key outside the
// allow-list is refused before any of that.
func (c *Codec) decodingKey(format, keyID string, wrapped []byte) (*dataKey, error) {
	if err := c.allowed(keyID); err != nil {
		return nil, err
	}
	h := cacheKey(format, keyID, wrapped)
	e, owner := c.cache.acquire(h)
	if !owner {
		<-e.ready
		if e.err != nil {
			return nil, e.err
		}
		return e.key, nil
	}
	k, err := c.unwrap(format, keyID, wrapped)
	c.cache.complete(h, e, k, err)
	return k, err
}

// allowed checks keyID against the allow-list, resolving the configured aliases
// and key ids first if that has not been done yet.
func (c *Codec) allowed(keyID string) error {
	if c.allow.has(keyID) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.KMSTimeout)
	defer cancel()
	if err := c.allow.resolve(ctx, c.kms, false); err != nil {
		return err
	}
	if c.allow.has(keyID) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrKeyNotAllowed, truncate(keyID, 200))
}

func (c *Codec) unwrap(format, keyID string, wrapped []byte) (*dataKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.KMSTimeout)
	defer cancel()
	out, err := c.kms.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		KeyId:             aws.String(keyID),
		EncryptionContext: c.encryptionContext(format),
	})
	if err != nil {
		return nil, kmsError("Decrypt", keyID, err)
	}
	c.decrypted.Add(1)
	defer clear(out.Plaintext)
	if len(out.Plaintext) != keySize {
		return nil, fmt.Errorf("codec: KMS Decrypt under %s: unexpected %d-byte key", keyID, len(out.Plaintext))
	}
	return newDataKey(out.Plaintext, keyID, append([]byte(nil), wrapped...), c.opts.Now())
}

func newDataKey(plaintext []byte, keyID string, wrapped []byte, now time.Time) (*dataKey, error) {
	// The AES key schedule cannot be zeroed from outside crypto/aes; the caller
	// clears the plaintext copy it got from KMS.
	block, err := aes.NewCipher(plaintext)
	if err != nil {
		return nil, errors.New("codec: cannot create AES cipher")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, errors.New("codec: cannot create GCM")
	}
	return &dataKey{aead: aead, keyID: keyID, wrapped: wrapped, created: now}, nil
}

func cacheKey(format, keyID string, wrapped []byte) [32]byte {
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, uint32(len(format)))
	h.Write([]byte(format))
	_ = binary.Write(h, binary.BigEndian, uint32(len(keyID)))
	h.Write([]byte(keyID))
	h.Write(wrapped)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// KMSError is a failed KMS call of the codec.
type KMSError struct {
	Op    string // GenerateDataKey or Decrypt
	KeyID string
	Err   error
}

func (e *KMSError) Error() string {
	kind := "permanent"
	if vault.IsTransient(e.Err) {
		kind = "transient"
	}
	return fmt.Sprintf("codec: KMS %s under key %s failed (%s): %v", e.Op, e.KeyID, kind, e.Err)
}

func (e *KMSError) Unwrap() error { return e.Err }

func kmsError(op, keyID string, err error) error {
	return &KMSError{Op: op, KeyID: keyID, Err: err}
}

// IsTransient reports whether a codec error is a KMS failure that retrying may
// cure (throttling, timeouts, KMS unreachable).
func IsTransient(err error) bool {
	var ke *KMSError
	return errors.As(err, &ke) && vault.IsTransient(ke.Err)
}

func deflate(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// inflate decompresses b, refusing (with ErrTooLarge) output over limit bytes.
// It inflates twice: first counting into io.Discard, stopping just past the
// limit, then into a buffer of exactly the size counted. A deflate bomb then
// costs CPU bounded by the limit and no memory.
func inflate(b []byte, limit int64) ([]byte, error) {
	count := flate.NewReader(bytes.NewReader(b))
	n, err := io.Copy(io.Discard, io.LimitReader(count, limit+1))
	_ = count.Close()
	if err != nil {
		return nil, errors.New("codec: decrypted payload does not decompress")
	}
	if n > limit {
		return nil, fmt.Errorf("%w: the payload decompresses to more than %d bytes", ErrTooLarge, limit)
	}
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out := make([]byte, n)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, errors.New("codec: decrypted payload does not decompress")
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
