package codec

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const secret = "SECRETMARKER42"

func jsonPayload(t testing.TB, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustNew(t testing.TB, k *fakeKMS, opts Options) *Codec {
	t.Helper()
	if opts.KeyID == "" {
		opts.KeyID = "key-a"
	}
	c, err := New(k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func encodeOne(t testing.TB, c *Codec, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func decodeOne(c *Codec, p *commonpb.Payload) (*commonpb.Payload, error) {
	out, err := c.Decode([]*commonpb.Payload{p})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func TestRoundTripHidesThePayloadAndNamesItsKey(t *testing.T) {
	k := newFakeKMS("key-a")
	c := mustNew(t, k, Options{})
	orig := jsonPayload(t, map[string]string{"reason": "HMRC enquiry " + secret})
	enc := encodeOne(t, c, orig)
	raw, _ := proto.Marshal(enc)
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("json/plain")) {
		t.Fatal("encoded payload holds plaintext data or metadata")
	}
	md := enc.GetMetadata()
	if string(md["encoding"]) != EncodingEncrypted || string(md[MetadataFormat]) != FormatV2 ||
		string(md[MetadataKeyID]) != arn("key-a") || len(md[MetadataDataKey]) == 0 || md[MetadataCompression] != nil {
		t.Fatalf("metadata %q", md)
	}
	dec, err := decodeOne(c, enc)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dec, orig) {
		t.Fatalf("round trip: got %v want %v", dec, orig)
	}
	// Each encoding has its own nonce.
	if bytes.Equal(encodeOne(t, c, orig).Data, enc.Data) {
		t.Fatal("two encodings of one payload are identical")
	}
}

func TestUnencryptedPayloadsPassThrough(t *testing.T) {
	c := mustNew(t, newFakeKMS("key-a"), Options{})
	p := jsonPayload(t, "plain")
	dec, err := decodeOne(c, p)
	if err != nil || dec != p {
		t.Fatalf("got %v, %v", dec, err)
	}
	if g, d := c.Stats(); g != 0 || d != 0 {
		t.Fatalf("KMS called for a plain payload: %d %d", g, d)
	}
}

func TestOneKMSCallPerDataKeyNotPerPayload(t *testing.T) {
	k := newFakeKMS("key-a")
	enc := mustNew(t, k, Options{})
	var payloads []*commonpb.Payload
	for i := range 500 {
		payloads = append(payloads, jsonPayload(t, fmt.Sprintf("value %d", i)))
	}
	encoded, err := enc.Encode(payloads)
	if err != nil {
		t.Fatal(err)
	}
	// The encoder decodes its own payloads without KMS.
	if _, err := enc.Decode(encoded); err != nil {
		t.Fatal(err)
	}
	if g, d := k.counts(); g != 1 || d != 0 {
		t.Fatalf("encoder: %d GenerateDataKey, %d Decrypt; want 1, 0", g, d)
	}
	// Another process (a fresh codec) unwraps the key once, even with many
	// goroutines decoding at the same moment.
	dec := mustNew(t, k, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := dec.Decode(encoded)
			if err == nil && !proto.Equal(out[7], payloads[7]) {
				err = errors.New("wrong payload")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, d := k.counts(); d != 1 {
		t.Fatalf("decoder: %d Decrypt calls for one data key, want 1", d)
	}
}

func TestDataKeysRotateByUseAndAge(t *testing.T) {
	k := newFakeKMS("key-a")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := mustNew(t, k, Options{MaxKeyUses: 3, MaxKeyAge: time.Hour, Now: func() time.Time { return now }})
	var encoded []*commonpb.Payload
	for range 7 {
		encoded = append(encoded, encodeOne(t, c, jsonPayload(t, "x")))
	}
	if g, _ := k.counts(); g != 3 {
		t.Fatalf("7 payloads at 3 per key: %d keys generated, want 3", g)
	}
	now = now.Add(61 * time.Minute)
	encoded = append(encoded, encodeOne(t, c, jsonPayload(t, "x")))
	if g, _ := k.counts(); g != 4 {
		t.Fatalf("after an hour: %d keys generated, want 4", g)
	}
	keys := map[string]bool{}
	for _, p := range encoded {
		keys[string(p.Metadata[MetadataDataKey])] = true
	}
	if len(keys) != 4 {
		t.Fatalf("%d distinct data keys, want 4", len(keys))
	}
	fresh := mustNew(t, k, Options{})
	if _, err := fresh.Decode(encoded); err != nil {
		t.Fatal(err)
	}
	if _, d := k.counts(); d != 4 {
		t.Fatalf("%d Decrypt calls for 4 data keys", d)
	}
}

func TestEncodingKeyOutlivesAShortKMSOutage(t *testing.T) {
	k := newFakeKMS("key-a")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := mustNew(t, k, Options{MaxKeyAge: time.Hour, Now: func() time.Time { return now }})
	encodeOne(t, c, jsonPayload(t, "x"))
	k.setDown(true)
	now = now.Add(90 * time.Minute) // expired, within the grace period
	encodeOne(t, c, jsonPayload(t, "x"))
	now = now.Add(31 * time.Minute) // past twice the maximum age: no key left
	if _, err := c.Encode([]*commonpb.Payload{jsonPayload(t, "x")}); err == nil || !IsTransient(err) {
		t.Fatalf("want a transient KMS error, got %v", err)
	}
	k.setDown(false)
	encodeOne(t, c, jsonPayload(t, "x"))
}

func TestMetadataAndCiphertextCannotBeSwappedOrTampered(t *testing.T) {
	k := newFakeKMS("key-a", "key-b")
	a := mustNew(t, k, Options{})
	b := mustNew(t, k, Options{KeyID: "key-b"})
	big := jsonPayload(t, strings.Repeat("compressible ", 500))
	pa, pb := encodeOne(t, a, jsonPayload(t, secret)), encodeOne(t, b, jsonPayload(t, "other"))
	pbig := encodeOne(t, a, big)
	clone := func(p *commonpb.Payload) *commonpb.Payload { return proto.Clone(p).(*commonpb.Payload) }
	cases := map[string]func() *commonpb.Payload{
		"key id of another key": func() *commonpb.Payload {
			p := clone(pa)
			p.Metadata[MetadataKeyID] = pb.Metadata[MetadataKeyID]
			return p
		},
		"data key of another payload": func() *commonpb.Payload {
			p := clone(pa)
			p.Metadata[MetadataDataKey], p.Metadata[MetadataKeyID] = pb.Metadata[MetadataDataKey], pb.Metadata[MetadataKeyID]
			return p
		},
		"compression flag added": func() *commonpb.Payload {
			p := clone(pa)
			p.Metadata[MetadataCompression] = []byte(CompressionFlate)
			return p
		},
		"compression flag removed": func() *commonpb.Payload {
			p := clone(pbig)
			delete(p.Metadata, MetadataCompression)
			return p
		},
		"unknown compression": func() *commonpb.Payload {
			p := clone(pa)
			p.Metadata[MetadataCompression] = []byte("zstd")
			return p
		},
		"flipped bit": func() *commonpb.Payload {
			p := clone(pa)
			p.Data[len(p.Data)-1] ^= 1
			return p
		},
		"truncated": func() *commonpb.Payload {
			p := clone(pa)
			p.Data = p.Data[:10]
			return p
		},
		"other format": func() *commonpb.Payload {
			p := clone(pa)
			p.Metadata[MetadataFormat] = []byte("dpp-codec-v0")
			return p
		},
		"another codec's payload": func() *commonpb.Payload {
			p := clone(pa)
			delete(p.Metadata, MetadataFormat)
			return p
		},
		"no data key": func() *commonpb.Payload {
			p := clone(pa)
			delete(p.Metadata, MetadataDataKey)
			return p
		},
	}
	// The decoder may use both keys, so what refuses the changes is the AEAD.
	both := Options{PreviousKeyIDs: []string{"key-b"}}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeOne(mustNew(t, k, both), mk())
			if err == nil {
				t.Fatal("decoded")
			}
			var wtf *converter.WorkflowTaskFailureError
			if !errors.As(err, &wtf) {
				t.Fatalf("not a workflow task failure: %T %v", err, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals the payload: %v", err)
			}
		})
	}
	// Untouched, all of them decode.
	for _, p := range []*commonpb.Payload{pa, pb, pbig} {
		if _, err := decodeOne(mustNew(t, k, both), p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLargePayloadsAreCompressedWhenItHelps(t *testing.T) {
	c := mustNew(t, newFakeKMS("key-a"), Options{})
	text := jsonPayload(t, strings.Repeat("Riverside Park, Leeds ", 400))
	noise := make([]byte, 8000)
	_, _ = rand.Read(noise)
	random := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: noise}
	small := jsonPayload(t, "short")
	for name, tc := range map[string]struct {
		p        *commonpb.Payload
		compress bool
	}{"repetitive": {text, true}, "random": {random, false}, "small": {small, false}} {
		enc := encodeOne(t, c, tc.p)
		if got := enc.Metadata[MetadataCompression] != nil; got != tc.compress {
			t.Errorf("%s: compressed=%v, want %v", name, got, tc.compress)
		}
		if tc.compress && len(enc.Data) >= len(tc.p.Data)/4 {
			t.Errorf("%s: %d bytes encoded from %d", name, len(enc.Data), len(tc.p.Data))
		}
		dec, err := decodeOne(c, enc)
		if err != nil || !proto.Equal(dec, tc.p) {
			t.Errorf("%s: round trip failed: %v", name, err)
		}
	}
}

func TestKMSOutageIsARetryableWorkflowTaskFailure(t *testing.T) {
	k := newFakeKMS("key-a")
	enc := encodeOne(t, mustNew(t, k, Options{}), jsonPayload(t, secret))
	k.setDown(true)
	dec := mustNew(t, k, Options{KMSTimeout: time.Second})
	_, err := decodeOne(dec, enc)
	var wtf *converter.WorkflowTaskFailureError
	if !errors.As(err, &wtf) || !IsTransient(err) || strings.Contains(err.Error(), secret) {
		t.Fatalf("want a transient workflow task failure, got %T %v", err, err)
	}
	if !strings.Contains(err.Error(), "key-a") {
		t.Fatalf("error does not name the key: %v", err)
	}
	// A failed unwrap is not cached: when KMS is back, the same codec decodes.
	k.setDown(false)
	if _, err := decodeOne(dec, enc); err != nil {
		t.Fatal(err)
	}
	// A key KMS does not know is permanent, and still fails only the task.
	unknown := proto.Clone(enc).(*commonpb.Payload)
	unknown.Metadata[MetadataKeyID] = []byte(arn("key-gone"))
	_, err = decodeOne(mustNew(t, k, Options{}), unknown)
	if !errors.As(err, &wtf) || IsTransient(err) {
		t.Fatalf("want a permanent workflow task failure, got %v", err)
	}
}

func TestDecodingKeyCacheIsBounded(t *testing.T) {
	k := newFakeKMS("key-a")
	var encoded []*commonpb.Payload
	for range 3 {
		encoded = append(encoded, encodeOne(t, mustNew(t, k, Options{}), jsonPayload(t, "x")))
	}
	c := mustNew(t, k, Options{CacheSize: 2})
	for _, p := range append(encoded, encoded...) {
		if _, err := decodeOne(c, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.cache.len(); n != 2 {
		t.Fatalf("cache holds %d keys, want 2", n)
	}
	// 3 keys through a 2-key LRU, twice in the same order: every lookup misses.
	if _, d := k.counts(); d != 6 {
		t.Fatalf("%d Decrypt calls, want 6", d)
	}
}

func TestFailureMessagesAndStackTracesAreEncoded(t *testing.T) {
	k := newFakeKMS("key-a")
	c := mustNew(t, k, Options{})
	dc, fc := c.Converters()
	p, err := dc.ToPayload(map[string]string{"note": secret})
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncrypted(p) {
		t.Fatal("data converter does not encrypt")
	}
	cause := temporal.NewApplicationError("cannot seal "+secret, "Test", nil)
	f := fc.ErrorToFailure(fmt.Errorf("activity failed for %s: %w", secret, cause))
	raw, _ := proto.Marshal(f)
	if bytes.Contains(raw, []byte(secret)) || f.GetMessage() != "Encoded failure" || f.GetCause().GetMessage() != "Encoded failure" {
		t.Fatalf("failure not encoded: %v", f)
	}
	// Another process with the same KMS key reads it back.
	_, fc2 := mustNew(t, k, Options{}).Converters()
	back := fc2.FailureToError(f)
	if !strings.Contains(back.Error(), "activity failed for "+secret) || !strings.Contains(back.Error(), "cannot seal "+secret) {
		t.Fatalf("decoded failure: %v", back)
	}
}
