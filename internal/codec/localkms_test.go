package codec

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// localKMS returns a client of the shared local-kms and the ARNs of its seeded
// key and of a second key created for this test.
func localKMS(t *testing.T) (*kms.Client, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := testenv.KMSForTest(t)
	client, err := k.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.KeyID)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("codec rotation test key")})
	if err != nil {
		t.Fatal(err)
	}
	return client, aws.ToString(a.KeyMetadata.Arn), aws.ToString(b.KeyMetadata.Arn)
}

func TestRotationOnLocalKMSOldPayloadsKeepDecoding(t *testing.T) {
	client, keyA, keyB := localKMS(t)
	before, err := New(client, Options{KeyID: testenv.KMSKeyAlias}) // an alias: payloads name the key's ARN
	if err != nil {
		t.Fatal(err)
	}
	plain := jsonPayload(t, map[string]string{"note": secret})
	underA := encodeOne(t, before, plain)
	if KeyIDOf(underA) != keyA {
		t.Fatalf("payload names %q, want the ARN %q", KeyIDOf(underA), keyA)
	}
	// Configuration now names key B for encoding (DPP_CODEC_KMS_KEY_ID), and key
	// A, by its alias, as a previous one (DPP_CODEC_PREVIOUS_KMS_KEY_IDS).
	after, err := New(client, Options{KeyID: keyB, PreviousKeyIDs: []string{testenv.KMSKeyAlias}})
	if err != nil {
		t.Fatal(err)
	}
	underB := encodeOne(t, after, plain)
	if KeyIDOf(underB) != keyB {
		t.Fatalf("new payloads name %q, want %q", KeyIDOf(underB), keyB)
	}
	out, err := after.Decode([]*commonpb.Payload{underA, underB})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range out {
		if !proto.Equal(p, plain) {
			t.Fatalf("decoded %v", p)
		}
	}
	// A key KMS does not have fails decoding as a workflow task failure.
	gone := proto.Clone(underA).(*commonpb.Payload)
	gone.Metadata[MetadataKeyID] = []byte("arn:aws:kms:eu-west-2:111122223333:key/00000000-0000-4000-8000-000000000000")
	_, err = after.Decode([]*commonpb.Payload{gone})
	var wtf *converter.WorkflowTaskFailureError
	if !errors.As(err, &wtf) {
		t.Fatalf("want a workflow task failure, got %v", err)
	}
}

// On the real KMS emulator: a payload of another namespace does not decode, and
// a payload under a key outside the allow-list is refused before any KMS call.
func TestNamespaceAndKeyAllowListOnLocalKMS(t *testing.T) {
	client, keyA, keyB := localKMS(t)
	teamA, err := New(client, Options{KeyID: testenv.KMSKeyAlias, Namespace: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := teamA.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	plain := jsonPayload(t, map[string]string{"note": secret})
	enc := encodeOne(t, teamA, plain)
	if string(enc.Metadata[MetadataFormat]) != FormatV2 || KeyIDOf(enc) != keyA {
		t.Fatalf("metadata %q", enc.Metadata)
	}
	sameNS, _ := New(client, Options{KeyID: keyA, Namespace: "team-a"})
	if out, err := decodeOne(sameNS, enc); err != nil || !proto.Equal(out, plain) {
		t.Fatalf("same namespace: %v", err)
	}
	teamB, _ := New(client, Options{KeyID: keyA, Namespace: "team-b"})
	_, err = decodeOne(teamB, enc)
	var ke *KMSError
	if !errors.As(err, &ke) || ke.Op != "Decrypt" {
		t.Fatalf("another namespace: want KMS to refuse the data key, got %v", err)
	}
	// A codec rotated to key B without naming A as a previous key refuses A's payloads.
	onlyB, _ := New(client, Options{KeyID: keyB, Namespace: "team-a"})
	if err := onlyB.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeOne(onlyB, enc); !errors.Is(err, ErrKeyNotAllowed) {
		t.Fatalf("want ErrKeyNotAllowed, got %v", err)
	}
	if _, decrypted := onlyB.Stats(); decrypted != 0 {
		t.Fatalf("%d KMS Decrypt calls for a key outside the allow-list", decrypted)
	}
}

// On the real KMS emulator: a valid payload that inflates past the per-payload
// limit stops inflating there.
func TestDeflateBombOnLocalKMS(t *testing.T) {
	client, _, _ := localKMS(t)
	c, err := New(client, Options{KeyID: testenv.KMSKeyAlias})
	if err != nil {
		t.Fatal(err)
	}
	p := bomb(t, c, 256<<20)
	var out []*commonpb.Payload
	alloc := allocated(func() { out, err = c.Decode([]*commonpb.Payload{p}) })
	if !errors.Is(err, ErrTooLarge) || out != nil {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if alloc > 1<<20 { // it inflates into io.Discard until the limit
		t.Fatalf("decoding a payload that inflates to 256 MiB allocated %d MiB", alloc>>20)
	}
}
