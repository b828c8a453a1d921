package vault

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// echoKMS "wraps" a key by prefixing it: enough to count calls.
type echoKMS struct{ generated, decrypted int }

func (e *echoKMS) GenerateDataKey(_ context.Context, _ *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	e.generated++
	pt := make([]byte, keySize)
	_, _ = rand.Read(pt)
	return &kms.GenerateDataKeyOutput{Plaintext: pt, CiphertextBlob: append([]byte("w:"), pt...), KeyId: aws.String("k")}, nil
}

func (e *echoKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	e.decrypted++
	return &kms.DecryptOutput{Plaintext: append([]byte(nil), in.CiphertextBlob[2:]...), KeyId: aws.String("k")}, nil
}

func TestKeyCacheSavesTheDecryptOfTheNextStep(t *testing.T) {
	ctx := context.Background()
	fake := &echoKMS{}
	v, _ := New(fake, "k", WithKeyCache(time.Minute, 2))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v.cache.now = func() time.Time { return now }
	c := Context{OrderID: "205-1234567-7654321", Purpose: "pii"}

	k, err := v.NewDataKey(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := k.Seal("buyer.name", []byte("Ann"))
	wrapped := k.Wrapped
	k.Destroy()

	k2, err := v.OpenDataKey(ctx, c, "k", wrapped)
	if err != nil || fake.decrypted != 0 {
		t.Fatalf("cached open: err=%v decrypts=%d", err, fake.decrypted)
	}
	if pt, err := k2.Open("buyer.name", ct); err != nil || string(pt) != "Ann" {
		t.Fatalf("open from cached key: %q %v", pt, err)
	}
	k2.Destroy() // the caller's copy only
	if _, err := v.OpenDataKey(ctx, c, "k", wrapped); err != nil || fake.decrypted != 0 {
		t.Fatalf("destroying a copy must not spoil the cache: err=%v decrypts=%d", err, fake.decrypted)
	}
	if _, err := v.OpenDataKey(ctx, Context{OrderID: c.OrderID, Purpose: "tax-record"}, "k", wrapped); err != nil || fake.decrypted != 1 {
		t.Fatalf("another purpose must not hit the cache: decrypts=%d", fake.decrypted)
	}

	now = now.Add(time.Minute)
	if _, err := v.OpenDataKey(ctx, c, "k", wrapped); err != nil || fake.decrypted != 2 {
		t.Fatalf("expired entry must call KMS: decrypts=%d", fake.decrypted)
	}
	v.Forget(c)
	if _, err := v.OpenDataKey(ctx, c, "k", wrapped); err != nil || fake.decrypted != 3 {
		t.Fatalf("forgotten key must call KMS: decrypts=%d", fake.decrypted)
	}
	for i := 0; i < 5; i++ {
		if _, err := v.NewDataKey(ctx, Context{OrderID: "o", Purpose: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.cache.entries); n > 2 {
		t.Fatalf("cache holds %d keys, limit 2", n)
	}
}

func TestNoCacheByDefault(t *testing.T) {
	fake := &echoKMS{}
	v, _ := New(fake, "k")
	c := Context{OrderID: "o", Purpose: "pii"}
	k, _ := v.NewDataKey(context.Background(), c)
	if _, err := v.OpenDataKey(context.Background(), c, "k", k.Wrapped); err != nil || fake.decrypted != 1 {
		t.Fatalf("decrypts=%d", fake.decrypted)
	}
}
