package codec

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// fakeKMS is an in-memory KMS for unit tests: it wraps data keys with AES-GCM
// under per-key master keys, binds the encryption context, counts calls and can
// be taken down.
type fakeKMS struct {
	mu       sync.Mutex
	masters  map[string][]byte // ARN -> master key
	down     bool
	failWith error // when set, every call fails with it
	generate int
	decrypt  int
	describe int
	// lastContext is the encryption context of the last GenerateDataKey.
	lastContext map[string]string
}

func newFakeKMS(keys ...string) *fakeKMS {
	f := &fakeKMS{masters: map[string][]byte{}}
	for _, k := range keys {
		m := make([]byte, 32)
		_, _ = rand.Read(m)
		f.masters[arn(k)] = m
	}
	return f
}

func arn(k string) string { return "arn:aws:kms:eu-west-2:111122223333:key/" + k }

func (f *fakeKMS) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeKMS) setFailure(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWith = err
}

func (f *fakeKMS) failure() error {
	if f.failWith != nil {
		return f.failWith
	}
	if f.down {
		return errUnavailable
	}
	return nil
}

// DescribeKey resolves a key id, ARN or "alias/<key>" to the key's ARN.
func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failure(); err != nil {
		return nil, err
	}
	f.describe++
	keyARN, _, err := f.resolve(strings.TrimPrefix(aws.ToString(in.KeyId), "alias/"))
	if err != nil {
		return nil, err
	}
	return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{Arn: aws.String(keyARN), KeyId: aws.String(keyARN[strings.LastIndex(keyARN, "/")+1:])}}, nil
}

func (f *fakeKMS) describes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.describe
}

func (f *fakeKMS) counts() (generate, decrypt int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.generate, f.decrypt
}

var errUnavailable = &smithy.GenericAPIError{Code: "ServiceUnavailableException", Message: "fake KMS is down"}

func contextAAD(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		b = append(b, k+"="+ec[k]+";"...)
	}
	return b
}

func (f *fakeKMS) resolve(id string) (string, []byte, error) {
	for _, cand := range []string{id, arn(id)} {
		if m, ok := f.masters[cand]; ok {
			return cand, m, nil
		}
	}
	return "", nil, &smithy.GenericAPIError{Code: "NotFoundException", Message: "key not found"}
}

func gcm(key []byte) cipher.AEAD {
	b, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(b)
	return a
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failure(); err != nil {
		return nil, err
	}
	keyARN, master, err := f.resolve(aws.ToString(in.KeyId))
	if err != nil {
		return nil, err
	}
	f.generate++
	f.lastContext = in.EncryptionContext
	pt := make([]byte, 32)
	_, _ = rand.Read(pt)
	blob := binary.BigEndian.AppendUint16(nil, uint16(len(keyARN)))
	blob = append(blob, keyARN...)
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	blob = append(blob, nonce...)
	blob = gcm(master).Seal(blob, nonce, pt, contextAAD(in.EncryptionContext))
	return &kms.GenerateDataKeyOutput{KeyId: aws.String(keyARN), Plaintext: pt, CiphertextBlob: blob}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failure(); err != nil {
		return nil, err
	}
	blob := in.CiphertextBlob
	invalid := &smithy.GenericAPIError{Code: "InvalidCiphertextException", Message: "invalid ciphertext"}
	if len(blob) < 2 {
		return nil, invalid
	}
	n := int(binary.BigEndian.Uint16(blob))
	if len(blob) < 2+n+12+16 {
		return nil, invalid
	}
	keyARN := string(blob[2 : 2+n])
	if in.KeyId != nil {
		want, _, err := f.resolve(*in.KeyId)
		if err != nil {
			return nil, err
		}
		if want != keyARN {
			return nil, &smithy.GenericAPIError{Code: "IncorrectKeyException", Message: fmt.Sprintf("blob is not under %s", want)}
		}
	}
	master, ok := f.masters[keyARN]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NotFoundException", Message: "key not found"}
	}
	rest := blob[2+n:]
	pt, err := gcm(master).Open(nil, rest[:12], rest[12:], contextAAD(in.EncryptionContext))
	if err != nil {
		return nil, invalid
	}
	f.decrypt++
	return &kms.DecryptOutput{KeyId: aws.String(keyARN), Plaintext: pt}, nil
}
