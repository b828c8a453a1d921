package vault_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/internal/vault"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// fakeKMS wraps data keys with AES-GCM under a master key, binding the
// encryption context like KMS does. Err, if set, is returned by every call.
type fakeKMS struct {
	master cipher.AEAD
	Err    error
}

func newFakeKMS(t testing.TB) *fakeKMS {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return &fakeKMS{master: gcm}
}

const fakeARN = "arn:aws:kms:eu-west-2:111122223333:key/fake"

func ctxAAD(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d:%s=%d:%s;", len(k), k, len(ec[k]), ec[k])
	}
	return []byte(b.String())
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	if in.KeySpec != types.DataKeySpecAes256 {
		return nil, errors.New("fake: want AES_256")
	}
	pt := make([]byte, 32)
	_, _ = rand.Read(pt)
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	blob := f.master.Seal(nonce, nonce, pt, ctxAAD(in.EncryptionContext))
	return &kms.GenerateDataKeyOutput{Plaintext: pt, CiphertextBlob: blob, KeyId: aws.String(fakeARN)}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	b := in.CiphertextBlob
	if len(b) < 12 {
		return nil, &types.InvalidCiphertextException{Message: aws.String("short")}
	}
	pt, err := f.master.Open(nil, b[:12], b[12:], ctxAAD(in.EncryptionContext))
	if err != nil {
		return nil, &types.InvalidCiphertextException{Message: aws.String("bad")}
	}
	return &kms.DecryptOutput{Plaintext: pt, KeyId: aws.String(fakeARN)}, nil
}

var order1 = vault.Context{OrderID: "202-1234567-1234567", Purpose: "pii"}

func newKey(t testing.TB) (*vault.Vault, *vault.DataKey) {
	v, err := vault.New(newFakeKMS(t), "alias/test")
	require.NoError(t, err)
	k, err := v.NewDataKey(context.Background(), order1)
	require.NoError(t, err)
	return v, k
}

func TestNewRequiresKeyID(t *testing.T) {
	_, err := vault.New(newFakeKMS(t), "")
	require.ErrorContains(t, err, "KMS key id is required")
	_, err = vault.New(nil, "alias/x")
	require.ErrorContains(t, err, "KMS client is required")
}

func TestSealOpenRoundTrip(t *testing.T) {
	v, k := newKey(t)
	require.Equal(t, fakeARN, k.KMSKeyID)
	require.Equal(t, order1, k.Context)

	for _, pt := range [][]byte{[]byte("Jane Q. Buyer"), {}, bytes.Repeat([]byte{7}, 5000)} {
		ct, err := k.Seal("buyerName", pt)
		require.NoError(t, err)
		require.Len(t, ct, 12+len(pt)+16)
		got, err := k.Open("buyerName", ct)
		require.NoError(t, err)
		require.Equal(t, len(pt), len(got))
		require.True(t, bytes.Equal(pt, got))
	}

	// Same plaintext twice: different nonces, different ciphertexts.
	a, _ := k.Seal("f", []byte("x"))
	b, _ := k.Seal("f", []byte("x"))
	require.NotEqual(t, a, b)

	// A reopened key (from the wrapped copy) opens what the first one sealed.
	ct, err := k.Seal("shipAddress", []byte("1 High Street"))
	require.NoError(t, err)
	k2, err := v.OpenDataKey(context.Background(), order1, k.KMSKeyID, k.Wrapped)
	require.NoError(t, err)
	got, err := k2.Open("shipAddress", ct)
	require.NoError(t, err)
	require.Equal(t, "1 High Street", string(got))
}

func TestOpenRejectsMovedCiphertext(t *testing.T) {
	v, k := newKey(t)
	ct, err := k.Seal("buyerName", []byte("Jane Q. Buyer"))
	require.NoError(t, err)

	_, err = k.Open("buyerEmail", ct)
	require.ErrorIs(t, err, vault.ErrDecrypt, "wrong field")
	require.NotContains(t, err.Error(), "Jane")

	// The same key material under another order's context: the AAD differs.
	other := vault.Context{OrderID: "202-7654321-7654321", Purpose: "pii"}
	kOther, err := v.NewDataKey(context.Background(), other)
	require.NoError(t, err)
	_, err = kOther.Open("buyerName", ct)
	require.ErrorIs(t, err, vault.ErrDecrypt, "other order, other key")

	// Another purpose of the same order.
	kTax, err := v.NewDataKey(context.Background(), vault.Context{OrderID: order1.OrderID, Purpose: "tax-record"})
	require.NoError(t, err)
	_, err = kTax.Open("buyerName", ct)
	require.ErrorIs(t, err, vault.ErrDecrypt)
}

func TestOpenDataKeyWrongContextFails(t *testing.T) {
	// Unwrapping a wrapped key under another context must fail at KMS.
	v, k := newKey(t)
	_, err := v.OpenDataKey(context.Background(), vault.Context{OrderID: "202-0000000-0000000", Purpose: "pii"}, k.KMSKeyID, k.Wrapped)
	require.Error(t, err)
	require.False(t, vault.IsTransient(err))
	var ice *types.InvalidCiphertextException
	require.ErrorAs(t, err, &ice)
}

func TestOpenRejectsTampering(t *testing.T) {
	_, k := newKey(t)
	ct, err := k.Seal("buyerName", []byte("Jane Q. Buyer"))
	require.NoError(t, err)
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		_, err := k.Open("buyerName", bad)
		require.ErrorIs(t, err, vault.ErrDecrypt, "flipped byte %d", i)
	}
	_, err = k.Open("buyerName", ct[:len(ct)-1])
	require.ErrorIs(t, err, vault.ErrDecrypt, "truncated")
	_, err = k.Open("buyerName", ct[:10])
	require.ErrorIs(t, err, vault.ErrDecrypt, "too short")
	_, err = k.Open("buyerName", append(bytes.Clone(ct), 0))
	require.ErrorIs(t, err, vault.ErrDecrypt, "extended")
}

func TestDestroy(t *testing.T) {
	_, k := newKey(t)
	ct, err := k.Seal("f", []byte("secret"))
	require.NoError(t, err)
	k.Destroy()
	k.Destroy()
	_, err = k.Seal("f", []byte("x"))
	require.ErrorIs(t, err, vault.ErrDestroyed)
	_, err = k.Open("f", ct)
	require.ErrorIs(t, err, vault.ErrDestroyed)
}

func TestContextAndFieldRequired(t *testing.T) {
	v, k := newKey(t)
	_, err := v.NewDataKey(context.Background(), vault.Context{OrderID: "x"})
	require.ErrorContains(t, err, "context needs both OrderID and Purpose")
	_, err = k.Seal("", []byte("x"))
	require.ErrorContains(t, err, "field name is required")
}

type statusErr struct{ code int }

func (e statusErr) Error() string       { return fmt.Sprintf("http %d", e.code) }
func (e statusErr) HTTPStatusCode() int { return e.code }

func TestIsTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, true},
		{&types.KMSInternalException{}, true},
		{&types.DependencyTimeoutException{}, true},
		{&types.KeyUnavailableException{}, true},
		{statusErr{503}, true},
		{statusErr{429}, true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{context.DeadlineExceeded, true},
		{&types.InvalidCiphertextException{}, false},
		{&smithy.GenericAPIError{Code: "AccessDeniedException"}, false},
		{&types.NotFoundException{}, false},
		{&types.DisabledException{}, false},
		{&types.KMSInvalidStateException{}, false},
		{statusErr{400}, false},
		{context.Canceled, false},
		{vault.ErrDecrypt, false},
		{nil, false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, vault.IsTransient(c.err), "%T %v", c.err, c.err)
	}
}

func TestKMSErrorsNameOperationAndTransience(t *testing.T) {
	f := newFakeKMS(t)
	v, err := vault.New(f, "alias/test")
	require.NoError(t, err)

	f.Err = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}
	_, err = v.NewDataKey(context.Background(), order1)
	require.Error(t, err)
	require.True(t, vault.IsTransient(err))
	require.Contains(t, err.Error(), "GenerateDataKey")
	require.Contains(t, err.Error(), "transient")

	f.Err = &types.InvalidCiphertextException{Message: aws.String("nope")}
	_, err = v.OpenDataKey(context.Background(), order1, fakeARN, []byte("blob"))
	require.Error(t, err)
	require.False(t, vault.IsTransient(err))
	require.Contains(t, err.Error(), "Decrypt")
	require.Contains(t, err.Error(), "permanent")
	var ke *vault.KMSError
	require.ErrorAs(t, err, &ke)
	require.Equal(t, "Decrypt", ke.Op)
}

// --- against the real KMS emulator ---

func realVault(t *testing.T) (*vault.Vault, *kms.Client) {
	t.Helper()
	k := testenv.KMSForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := k.Client(ctx)
	require.NoError(t, err)
	v, err := vault.New(client, k.KeyID)
	require.NoError(t, err)
	return v, client
}

func TestRealKMSRoundTrip(t *testing.T) {
	v, _ := realVault(t)
	ctx := context.Background()
	k, err := v.NewDataKey(ctx, order1)
	require.NoError(t, err)
	require.NotEmpty(t, k.Wrapped)
	require.Contains(t, k.KMSKeyID, testenv.KMSKeyID)
	ct, err := k.Seal("buyerName", []byte("Jane Q. Buyer"))
	require.NoError(t, err)
	k.Destroy()

	k2, err := v.OpenDataKey(ctx, order1, k.KMSKeyID, k.Wrapped)
	require.NoError(t, err)
	defer k2.Destroy()
	got, err := k2.Open("buyerName", ct)
	require.NoError(t, err)
	require.Equal(t, "Jane Q. Buyer", string(got))

	// Also through the alias.
	va, err := vault.New(mustClient(t), testenv.KMSKeyAlias)
	require.NoError(t, err)
	ka, err := va.NewDataKey(ctx, order1)
	require.NoError(t, err)
	ka.Destroy()
}

func mustClient(t *testing.T) *kms.Client {
	c, err := testenv.KMSForTest(t).Client(context.Background())
	require.NoError(t, err)
	return c
}

func TestRealKMSWrongContextFails(t *testing.T) {
	v, _ := realVault(t)
	ctx := context.Background()
	k, err := v.NewDataKey(ctx, order1)
	require.NoError(t, err)
	k.Destroy()

	for _, wrong := range []vault.Context{
		{OrderID: "202-9999999-9999999", Purpose: "pii"},
		{OrderID: order1.OrderID, Purpose: "tax-record"},
	} {
		_, err = v.OpenDataKey(ctx, wrong, k.KMSKeyID, k.Wrapped)
		require.Error(t, err, "context %+v", wrong)
		var ice *types.InvalidCiphertextException
		require.ErrorAs(t, err, &ice, "context %+v: %v", wrong, err)
		require.False(t, vault.IsTransient(err))
		require.Contains(t, err.Error(), "Decrypt")
	}
}

func TestRealKMSUnreachableIsTransient(t *testing.T) {
	k := &testenv.KMS{Endpoint: "http://127.0.0.1:1", KeyID: testenv.KMSKeyID}
	client, err := k.Client(context.Background())
	require.NoError(t, err)
	v, err := vault.New(client, k.KeyID)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = v.NewDataKey(ctx, order1)
	require.Error(t, err)
	require.True(t, vault.IsTransient(err), "%v", err)
}

// --- benchmarks: the envelope's per-field cost against raw AES-GCM ---

type benchField struct {
	name string
	pt   []byte
}

// An order's PII: 10 fields of 40 bytes.
var benchFields = func() []benchField {
	names := []string{"buyerName", "buyerEmail", "buyerPhone", "shipName", "shipLine1",
		"shipLine2", "shipCity", "shipCounty", "shipPostcode", "shipCountry"}
	fs := make([]benchField, len(names))
	for i, n := range names {
		fs[i] = benchField{n, bytes.Repeat([]byte{byte('a' + i)}, 40)}
	}
	return fs
}()

func BenchmarkSealOpenOrder(b *testing.B) {
	_, k := newKey(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range benchFields {
			ct, err := k.Seal(f.name, f.pt)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.Open(f.name, ct); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkRawAESGCM(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range benchFields {
			nonce := make([]byte, 12, 12+len(f.pt)+16)
			_, _ = rand.Read(nonce)
			ct := gcm.Seal(nonce, nonce, f.pt, []byte(f.name))
			if _, err := gcm.Open(nil, ct[:12], ct[12:], []byte(f.name)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
