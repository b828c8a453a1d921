package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
)

// postCodec sends payloads to the worker's codec server and returns the answer.
func postCodec(t *testing.T, base, op string, ps ...*commonpb.Payload) (int, string) {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/codec/"+op, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+codecToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The codec server on the real stack (local-kms, production wiring): it cannot
// be made to decode gigabytes, to use a key or a namespace of someone else's
// choosing, to evict the worker's data keys, or to reveal KMS errors.
func TestCodecServerCannotBeTurnedAgainstTheWorker(t *testing.T) {
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) { env["DPP_CODEC_TOKEN"] = codecToken })
	srv := httptest.NewServer(s.app.HTTPHandler())
	defer srv.Close()
	k := testenv.KMSForTest(t)
	kc, err := k.Client(context.Background())
	s.must(err, "kms client")
	other := func(opts codec.Options) *codec.Codec {
		if opts.KeyID == "" {
			opts.KeyID = k.KeyID
		}
		c, err := codec.New(kc, opts)
		s.must(err, "codec")
		return c
	}
	encode := func(c *codec.Codec, p *commonpb.Payload) *commonpb.Payload {
		out, err := c.Encode([]*commonpb.Payload{p})
		s.must(err, "encode")
		return out[0]
	}
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"note"`)}
	leaks := []string{"arn:", "Exception", "codec:", k.KeyID}
	generic := func(what string, code int, body string, want int) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: status %d, want %d: %s", what, code, want, body)
		}
		for _, leak := range leaks {
			if strings.Contains(body, leak) {
				t.Fatalf("%s: answer reveals %q: %s", what, leak, body)
			}
		}
	}

	// Other processes' data keys decode through the server's own cache: the
	// worker's codec neither asks KMS for them nor drops its own.
	_, before := s.app.Codec.Stats()
	var others []*commonpb.Payload
	for range 5 {
		others = append(others, encode(other(codec.Options{}), plain))
	}
	if code, body := postCodec(t, srv.URL, "decode", others...); code != 200 {
		t.Fatalf("decode: %d %s", code, body)
	}
	if _, after := s.app.Codec.Stats(); after != before {
		t.Fatalf("the worker's codec unwrapped %d data keys for codec server requests", after-before)
	}

	// 3 payloads of 7 MiB each: each within the per-payload limit, together over
	// DPP_CODEC_MAX_DECODED (16 MiB).
	big := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")},
		Data: []byte(strings.Repeat("0123456789abcdef", 7<<16))}
	p := encode(s.app.Codec, big)
	code, body := postCodec(t, srv.URL, "decode", p, p, p)
	generic("over DPP_CODEC_MAX_DECODED", code, body, http.StatusRequestEntityTooLarge)
	if code, _ := postCodec(t, srv.URL, "decode", p, p); code != 200 {
		t.Fatalf("two 7 MiB payloads: %d", code)
	}

	// Another namespace's payload: KMS refuses its data key.
	code, body = postCodec(t, srv.URL, "decode", encode(other(codec.Options{Namespace: "elsewhere"}), plain))
	generic("another namespace", code, body, http.StatusBadRequest)

	// A key outside DPP_CODEC_KMS_KEY_ID, DPP_CODEC_PREVIOUS_KMS_KEY_IDS and DPP_KMS_KEY_ID.
	created, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("not allowed")})
	s.must(err, "create key")
	code, body = postCodec(t, srv.URL, "decode", encode(other(codec.Options{KeyID: aws.ToString(created.KeyMetadata.KeyId)}), plain))
	generic("a key outside the allow-list", code, body, http.StatusBadRequest)

	logs := s.logs.String()
	if !strings.Contains(logs, "not allowed") || !strings.Contains(logs, "Codec request failed") {
		t.Fatalf("the refusals' details are not logged")
	}
}
