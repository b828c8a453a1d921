package codec

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
	commonpb "go.temporal.io/api/common/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/plusranger/dpp/internal/config"
)

// codecFor builds the codec the way the worker does (ForConfig) from a minimal
// configuration plus kv.
func codecFor(t testing.TB, k *fakeKMS, kv map[string]string) *Codec {
	t.Helper()
	env := map[string]string{"DPP_KMS_KEY_ID": "key-a", "DPP_SELLER_NAME": "Plusranger Ltd",
		"DPP_SELLER_ADDRESS": "1 High Street|London", "DPP_SELLER_VAT_NUMBER": "GB123456789"}
	maps.Copy(env, kv)
	cfg, err := config.Load(func(name string) string { return env[name] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := ForConfig(t.Context(), cfg, k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bomb returns a valid encrypted payload under c's key whose plaintext is a
// Temporal payload of n zero bytes, deflated: a few KiB that inflate to n bytes.
func bomb(t testing.TB, c *Codec, n int64) *commonpb.Payload {
	t.Helper()
	head, err := proto.Marshal(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}})
	if err != nil {
		t.Fatal(err)
	}
	head = protowire.AppendTag(head, 2, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(n))
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = w.Write(head)
	if _, err := io.CopyN(w, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return sealForTest(t, c, z.Bytes(), CompressionFlate)
}

// allocated runs f and returns the bytes it allocated on the heap (all
// goroutines; the test runs nothing else meanwhile).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestCodecServerAnswers413ToADecompressionBomb(t *testing.T) {
	k := newFakeKMS("key-a")
	c := mustNew(t, k, Options{})
	const each = 65 << 20 // a little over what one payload may inflate to
	p := bomb(t, c, each)
	ps := make([]*commonpb.Payload, 40)
	for i := range ps {
		ps[i] = p
	}
	body := payloadsJSON(t, ps...) // under 4 MiB, inflating to 2.5 GiB
	if len(body) > DefaultMaxBody {
		t.Fatalf("bomb request is %d bytes, over the default body cap", len(body))
	}
	s := NewServer(c, ServerOptions{Token: testToken})
	var w interface {
		Result() *http.Response
	}
	alloc := allocated(func() { w = req{path: "/codec/decode", body: body, headers: auth()}.do(s) })
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", res.StatusCode, b)
	}
	if inflated := uint64(len(ps)) * each; alloc > 32<<20 {
		t.Fatalf("serving the bomb allocated %d MiB (it inflates to %d MiB): decoding is not bounded", alloc>>20, inflated>>20)
	}
	t.Logf("a %d KiB request inflating to %d MiB allocated %d MiB", len(body)>>10, (uint64(len(ps))*each)>>20, alloc>>20)
}

func TestCodecServerCapsTheDecodedBytesOfARequest(t *testing.T) {
	k := newFakeKMS("key-a")
	c := mustNew(t, k, Options{})
	// Each payload is within the per-payload limit; together they are not.
	const each = 6 << 20
	p := bomb(t, c, each)
	ps := make([]*commonpb.Payload, 8)
	for i := range ps {
		ps[i] = p
	}
	s := NewServer(c, ServerOptions{Token: testToken})
	alloc := allocated(func() {
		w := req{path: "/codec/decode", body: payloadsJSON(t, ps...), headers: auth()}.do(s)
		if w.Code != http.StatusRequestEntityTooLarge || strings.Contains(w.Body.String(), "codec:") {
			t.Errorf("status %d, want 413 with a generic body: %.200s", w.Code, w.Body)
		}
	})
	if alloc > 64<<20 {
		t.Fatalf("allocated %d MiB for a request refused at the default cap", alloc>>20)
	}
	// One such payload alone is fine.
	if w := (req{path: "/codec/decode", body: payloadsJSON(t, p), headers: auth()}).do(s); w.Code != 200 {
		t.Fatalf("one %d MiB payload: status %d", each>>20, w.Code)
	}
}

func TestOnePayloadInflatesToAtMostItsLimit(t *testing.T) {
	k := newFakeKMS("key-a")
	c := mustNew(t, k, Options{})
	// A legitimately large payload (a long failure trace, say) still round-trips.
	big := make([]byte, 7<<20)
	for i := range big {
		big[i] = "abcdefgh"[i%8]
	}
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: big}
	if out, err := decodeOne(c, encodeOne(t, c, plain)); err != nil || !proto.Equal(out, plain) {
		t.Fatalf("7 MiB payload does not round-trip: %v", err)
	}
	// 9 MiB does not decode: it inflates past the per-payload limit.
	if _, err := decodeOne(c, bomb(t, c, 9<<20)); err == nil {
		t.Fatal("a payload inflating to 9 MiB decoded")
	}
	// And the encoder refuses to write what no decoder would read back.
	plain.Data = make([]byte, 9<<20)
	if _, err := c.Encode([]*commonpb.Payload{plain}); err == nil {
		t.Fatal("a 9 MiB payload was encoded")
	}
}

func TestNamespaceIsBoundIntoTheKMSEncryptionContext(t *testing.T) {
	k := newFakeKMS("key-a")
	teamA := codecFor(t, k, map[string]string{"TEMPORAL_NAMESPACE": "team-a"})
	plain := jsonPayload(t, map[string]string{"note": secret})
	enc := encodeOne(t, teamA, plain)
	if ns := k.lastContext["namespace"]; ns != "team-a" {
		t.Fatalf("encryption context %v lacks the namespace", k.lastContext)
	}
	if out, err := decodeOne(codecFor(t, k, map[string]string{"TEMPORAL_NAMESPACE": "team-a"}), enc); err != nil || !proto.Equal(out, plain) {
		t.Fatalf("same namespace: %v", err)
	}
	teamB := codecFor(t, k, map[string]string{"TEMPORAL_NAMESPACE": "team-b"})
	if _, err := decodeOne(teamB, enc); err == nil {
		t.Fatal("a payload of namespace team-a decoded in team-b")
	}
	// Relabelling it as the old format (no namespace in the context) does not help.
	old := proto.Clone(enc).(*commonpb.Payload)
	old.Metadata[MetadataFormat] = []byte("dpp-codec-v1")
	if _, err := decodeOne(teamB, old); err == nil {
		t.Fatal("a payload of namespace team-a relabelled as v1 decoded in team-b")
	}
}

func TestDecryptsOnlyUnderAllowedKeys(t *testing.T) {
	k := newFakeKMS("key-a", "key-b", "key-c")
	plain := jsonPayload(t, "x")
	underB := encodeOne(t, codecFor(t, k, map[string]string{"DPP_KMS_KEY_ID": "key-b"}), plain)
	underC := encodeOne(t, codecFor(t, k, map[string]string{"DPP_KMS_KEY_ID": "key-c"}), plain)
	forged := proto.Clone(underB).(*commonpb.Payload)
	forged.Metadata[MetadataKeyID] = []byte("arn:aws:kms:us-east-1:999999999999:key/attacker")
	c := codecFor(t, k, map[string]string{"DPP_CODEC_KMS_KEY_ID": "key-a", "DPP_KMS_KEY_ID": "key-a",
		"DPP_CODEC_PREVIOUS_KMS_KEY_IDS": "alias/key-c"})
	_, before := k.counts()
	for _, p := range []*commonpb.Payload{underB, forged, underB, forged} {
		if _, err := decodeOne(c, p); err == nil {
			t.Fatalf("payload under %s decoded", KeyIDOf(p))
		}
	}
	if _, after := k.counts(); after != before {
		t.Fatalf("%d KMS Decrypt calls for keys outside the allow-list, want none", after-before)
	}
	if out, err := decodeOne(c, underC); err != nil || !proto.Equal(out, plain) {
		t.Fatalf("payload under a previous key: %v", err)
	}
	if n := k.describes(); n > 3 {
		t.Fatalf("%d DescribeKey calls: the allow-list is resolved more than once", n)
	}
}

func TestCodecServerHasItsOwnDataKeyCache(t *testing.T) {
	k := newFakeKMS("key-a")
	worker := mustNew(t, k, Options{CacheSize: 4})
	plain := jsonPayload(t, "order")
	mine := encodeOne(t, mustNew(t, k, Options{}), plain) // another process's data key
	if _, err := decodeOne(worker, mine); err != nil {
		t.Fatal(err)
	}
	s := NewServer(worker, ServerOptions{Token: testToken, MaxBody: 4 << 20})
	var junk []*commonpb.Payload
	for range 16 {
		junk = append(junk, encodeOne(t, mustNew(t, k, Options{}), jsonPayload(t, "junk")))
	}
	if w := (req{path: "/codec/decode", body: payloadsJSON(t, junk...), headers: auth()}).do(s); w.Code != 200 {
		t.Fatalf("junk decode: %d %s", w.Code, w.Body)
	}
	_, before := k.counts()
	if _, err := decodeOne(worker, mine); err != nil {
		t.Fatal(err)
	}
	if _, after := k.counts(); after != before {
		t.Fatal("codec server requests evicted the worker's data key: it asked KMS again")
	}
}

func TestCodecServerErrorBodiesAreGeneric(t *testing.T) {
	k := newFakeKMS("key-a")
	core, logs := observer.New(zap.InfoLevel)
	s := testServer(t, k, func(o *ServerOptions) { o.Log = zap.New(core) })
	// The worker resolved its keys at start; KMS then fails to unwrap a new data key.
	if w := (req{path: "/codec/decode", body: payloadsJSON(t, encodeOne(t, mustNew(t, k, Options{}), jsonPayload(t, "x"))),
		headers: auth()}).do(s); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	leaks := []string{"arn:", "assumed-role", "dpp-worker-role", "111122223333", "AccessDenied", "Throttling", "key-a", "codec:"}
	for _, tc := range []struct {
		err    error
		status int
	}{
		{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::111122223333:assumed-role/dpp-worker-role/i-0abc " +
			"is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-2:111122223333:key/key-a"}, 400},
		{&smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded for arn:aws:kms:eu-west-2:111122223333:key/key-a"}, 503},
	} {
		body := payloadsJSON(t, encodeOne(t, mustNew(t, k, Options{}), jsonPayload(t, secret)))
		k.setFailure(tc.err)
		w := req{path: "/codec/decode", body: body, headers: auth()}.do(s)
		if w.Code != tc.status {
			t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
		}
		for _, leak := range leaks {
			if strings.Contains(w.Body.String(), leak) {
				t.Fatalf("error body reveals %q: %s", leak, w.Body)
			}
		}
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("error body is not {\"error\": ...}: %s", w.Body)
		}
		k.setFailure(nil)
	}
	// The details go to the log (never the payloads).
	var logged strings.Builder
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		logged.WriteString(e.Message + " " + string(b) + "\n")
	}
	if !strings.Contains(logged.String(), "AccessDeniedException") || strings.Contains(logged.String(), secret) {
		t.Fatalf("log:\n%s", logged.String())
	}
	// Malformed requests too: nothing of the codec's internals.
	k.setFailure(nil)
	garbage := `{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","encryption-format":"ZHBwLWNvZGVjLXYx",` +
		`"encryption-key-id":"YXJuOmF3czprbXM6ZXUtd2VzdC0yOjExMTEyMjIyMzMzMzprZXkva2V5LWE=","encryption-data-key":"eA=="},"data":"` +
		strings.Repeat("A", 64) + `"}]}`
	w := req{path: "/codec/decode", body: garbage, headers: auth()}.do(s)
	for _, leak := range leaks {
		if w.Code != 400 || strings.Contains(w.Body.String(), leak) {
			t.Fatalf("status %d, body reveals %q: %s", w.Code, leak, w.Body)
		}
	}
}

// v1 payloads (written before the namespace was bound: saved histories, open
// workflows) keep decoding.
func TestV1PayloadsKeepDecoding(t *testing.T) {
	k := newFakeKMS("key-a")
	c := codecFor(t, k, map[string]string{"TEMPORAL_NAMESPACE": "team-a"})
	out, err := k.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{KeyId: aws.String("key-a"),
		EncryptionContext: map[string]string{"purpose": "temporal-payload"}})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := newDataKey(out.Plaintext, aws.ToString(out.KeyId), out.CiphertextBlob, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plain := jsonPayload(t, map[string]string{"note": "v1"})
	body, _ := proto.Marshal(plain)
	md := map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataFormat: []byte(FormatV1),
		MetadataKeyID: []byte(dk.keyID), MetadataDataKey: dk.wrapped}
	nonce := make([]byte, nonceSize)
	v1 := &commonpb.Payload{Metadata: md, Data: dk.aead.Seal(nonce, nonce, body, c.additionalData(md))}
	if got, err := decodeOne(c, v1); err != nil || !proto.Equal(got, plain) {
		t.Fatalf("v1 payload: %v", err)
	}
	// Relabelled as v2, the same payload fails: its data key has no namespace.
	v2 := proto.Clone(v1).(*commonpb.Payload)
	v2.Metadata[MetadataFormat] = []byte(FormatV2)
	if _, err := decodeOne(c, v2); err == nil {
		t.Fatal("a v1 payload relabelled as v2 decoded")
	}
}
