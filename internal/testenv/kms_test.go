package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestStartKMSSeedsKeyAndAlias(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := StartKMS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)

	client, err := k.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{k.KeyID, KMSKeyAlias} {
		out, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
			KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256,
		})
		if err != nil {
			t.Fatalf("GenerateDataKey(%s): %v", id, err)
		}
		if len(out.Plaintext) != 32 {
			t.Fatalf("GenerateDataKey(%s): %d-byte key", id, len(out.Plaintext))
		}
	}

	k.Stop()
	k.Stop() // idempotent
	if _, err := client.ListKeys(ctx, &kms.ListKeysInput{}, func(o *kms.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("ListKeys succeeded after Stop")
	}
}

func TestKMSForTestIsSharedUntilStopAll(t *testing.T) {
	if v := getenvForTest(EnvKMSEndpoint); v != "" {
		t.Logf("using external KMS %s", v)
	}
	a := KMSForTest(t)
	b := KMSForTest(t)
	if a != b {
		t.Fatal("KMSForTest started a second instance")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := a.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	StopKMS()
	c := KMSForTest(t)
	t.Cleanup(StopKMS)
	if c == a {
		t.Fatal("KMSForTest returned the stopped instance after StopKMS")
	}
	if _, err := mustClient(t, c).ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
}

func mustClient(t *testing.T, k *KMS) *kms.Client {
	t.Helper()
	c, err := k.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
