package codec

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
)

// fakeKMS is an in-memory KMS for unit tests: it wraps data keys with AES-GCM
// under per-key master keys, binds the encryption context, counts calls and can
// be taken down.
type fakeKMS struct {
	mu       sync.Mutex
	masters  map[string][]byte // ARN -> master key
	down     bool
	generate int
	decrypt  int
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
	if f.down {
		return nil, errUnavailable
	}
	keyARN, master, err := f.resolve(aws.ToString(in.KeyId))
	if err != nil {
		return nil, err
	}
	f.generate++
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
	if f.down {
		return nil, errUnavailable
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
