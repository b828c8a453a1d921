package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	testToken  = "0123456789abcdef-test-token"
	testOrigin = "http://127.0.0.1:8233"
	testNS     = "default"
)

func testServer(t testing.TB, k *fakeKMS, tweak func(*ServerOptions)) *Server {
	t.Helper()
	opts := ServerOptions{Namespace: testNS, Token: testToken, CORSOrigin: testOrigin, MaxBody: 64 << 10}
	if tweak != nil {
		tweak(&opts)
	}
	return NewServer(mustNew(t, k, Options{}), opts)
}

type req struct {
	method, path, body string
	headers            map[string]string
}

func (r req) do(h http.Handler) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodPost
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	hr.Header.Set("Content-Type", "application/json")
	for k, v := range r.headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

func auth(extra ...string) map[string]string {
	m := map[string]string{"Authorization": "Bearer " + testToken, "X-Namespace": testNS}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func payloadsJSON(t testing.TB, ps ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCodecServerEncodesAndDecodesForTheWebUIAndCLI(t *testing.T) {
	k := newFakeKMS("key-a")
	s := testServer(t, k, nil)
	plain := jsonPayload(t, map[string]string{"reason": secret})
	w := req{path: "/codec/encode", body: payloadsJSON(t, plain), headers: auth()}.do(s)
	if w.Code != 200 || strings.Contains(w.Body.String(), base64.StdEncoding.EncodeToString([]byte(`{"reason"`))) {
		t.Fatalf("encode: %d %s", w.Code, w.Body)
	}
	var enc commonpb.Payloads
	if err := protojson.Unmarshal(w.Body.Bytes(), &enc); err != nil || len(enc.Payloads) != 1 || !IsEncrypted(enc.Payloads[0]) {
		t.Fatalf("encode answer %s: %v", w.Body, err)
	}
	// The contract's shape: {"payloads": [{"metadata": {...base64...}, "data": "base64"}]}.
	var shape struct {
		Payloads []struct {
			Metadata map[string]string `json:"metadata"`
			Data     string            `json:"data"`
		} `json:"payloads"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &shape); err != nil || len(shape.Payloads) != 1 {
		t.Fatalf("answer shape: %v %s", err, w.Body)
	}
	if enc, _ := base64.StdEncoding.DecodeString(shape.Payloads[0].Metadata["encoding"]); string(enc) != EncodingEncrypted {
		t.Fatalf("metadata.encoding %q", shape.Payloads[0].Metadata["encoding"])
	}
	w = req{path: "/codec/decode", body: w.Body.String(), headers: auth("Origin", testOrigin)}.do(s)
	if w.Code != 200 || !strings.Contains(w.Body.String(), base64.StdEncoding.EncodeToString(plain.Data)) {
		t.Fatalf("decode: %d %s", w.Code, w.Body)
	}
	for h, want := range map[string]string{"Access-Control-Allow-Origin": testOrigin, "Access-Control-Allow-Credentials": "true",
		"Cache-Control": "no-store", "Content-Type": "application/json"} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}

	// The SDK's remote codec (what the temporal CLI's --codec-endpoint uses) works
	// against it, both ways.
	srv := httptest.NewServer(s)
	defer srv.Close()
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL + "/codec",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+testToken)
			r.Header.Set("X-Namespace", testNS)
			return nil
		},
	})
	remoteEnc, err := remote.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	local, err := decodeOne(mustNew(t, k, Options{}), remoteEnc[0])
	if err != nil || !proto.Equal(local, plain) {
		t.Fatalf("remote encode, local decode: %v", err)
	}
	remoteDec, err := remote.Decode([]*commonpb.Payload{encodeOne(t, mustNew(t, k, Options{}), plain)})
	if err != nil || !proto.Equal(remoteDec[0], plain) {
		t.Fatalf("local encode, remote decode: %v", err)
	}
}

func TestCodecServerRefusals(t *testing.T) {
	k := newFakeKMS("key-a")
	good := payloadsJSON(t, jsonPayload(t, "x"))
	huge := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"` + strings.Repeat("A", 70<<10) + `"}]}`
	for _, tc := range []struct {
		name       string
		tweak      func(*ServerOptions)
		req        req
		status     int
		corsGrant  bool
		wantHeader map[string]string
	}{
		{name: "no token", req: req{path: "/codec/decode", body: good, headers: map[string]string{"X-Namespace": testNS}}, status: 401,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="dpp-codec"`}},
		{name: "wrong token", req: req{path: "/codec/decode", body: good, headers: auth("Authorization", "Bearer "+testToken+"x")}, status: 401},
		{name: "token prefix", req: req{path: "/codec/decode", body: good, headers: auth("Authorization", "Bearer "+testToken[:10])}, status: 401},
		{name: "basic scheme", req: req{path: "/codec/decode", body: good, headers: auth("Authorization", "Basic "+testToken)}, status: 401},
		{name: "token unset refuses all", tweak: func(o *ServerOptions) { o.Token = "" },
			req: req{path: "/codec/decode", body: good, headers: auth("Authorization", "Bearer ")}, status: 401},
		{name: "token unset refuses the UI too", tweak: func(o *ServerOptions) { o.Token = "" },
			req: req{path: "/codec/decode", body: good, headers: map[string]string{"X-Namespace": testNS, "Origin": testOrigin}}, status: 401, corsGrant: true},
		{name: "dev UI without token when allowed", tweak: func(o *ServerOptions) { o.Token = ""; o.AllowUIWithoutToken = true },
			req: req{path: "/codec/decode", body: good, headers: map[string]string{"X-Namespace": testNS, "Origin": testOrigin}}, status: 200, corsGrant: true},
		{name: "allowed UI but no origin", tweak: func(o *ServerOptions) { o.AllowUIWithoutToken = true },
			req: req{path: "/codec/decode", body: good, headers: map[string]string{"X-Namespace": testNS}}, status: 401},
		{name: "allowed UI with a wrong token", tweak: func(o *ServerOptions) { o.AllowUIWithoutToken = true },
			req: req{path: "/codec/decode", body: good, headers: auth("Origin", testOrigin, "Authorization", "Bearer nope-nope-nope-nope")}, status: 401, corsGrant: true},
		{name: "wrong origin", req: req{path: "/codec/decode", body: good, headers: auth("Origin", "https://evil.example")}, status: 403},
		{name: "origin that only starts alike", req: req{path: "/codec/decode", body: good, headers: auth("Origin", testOrigin+".evil.example")}, status: 403},
		{name: "preflight", req: req{method: "OPTIONS", path: "/codec/decode", headers: map[string]string{"Origin": testOrigin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}},
			status: 204, corsGrant: true, wantHeader: map[string]string{"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
				"Access-Control-Allow-Methods": "POST, OPTIONS"}},
		{name: "private network preflight", req: req{method: "OPTIONS", path: "/codec/decode", headers: map[string]string{"Origin": testOrigin,
			"Access-Control-Request-Private-Network": "true"}}, status: 204, corsGrant: true,
			wantHeader: map[string]string{"Access-Control-Allow-Private-Network": "true"}},
		{name: "preflight from a wrong origin", req: req{method: "OPTIONS", path: "/codec/decode", headers: map[string]string{"Origin": "https://evil.example"}}, status: 403},
		{name: "oversize body", req: req{path: "/codec/decode", body: huge, headers: auth()}, status: 413},
		{name: "malformed JSON", req: req{path: "/codec/decode", body: `{"payloads": [`, headers: auth()}, status: 400},
		{name: "not base64", req: req{path: "/codec/decode", body: `{"payloads":[{"data":"%%%"}]}`, headers: auth()}, status: 400},
		{name: "unknown field", req: req{path: "/codec/decode", body: `{"payload":[]}`, headers: auth()}, status: 400},
		{name: "null payload", req: req{path: "/codec/encode", body: `{"payloads":[null]}`, headers: auth()}, status: 400},
		{name: "not JSON", req: req{path: "/codec/decode", body: "payloads=1", headers: auth()}, status: 400},
		{name: "empty body", req: req{path: "/codec/decode", headers: auth()}, status: 400},
		{name: "undecryptable payload", req: req{path: "/codec/decode", headers: auth(),
			body: `{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA=="},"data":"AAAA"}]}`}, status: 400},
		{name: "no namespace (the CLI without --namespace)", req: req{path: "/codec/decode", body: good, headers: auth("X-Namespace", "")}, status: 200},
		{name: "other namespace", req: req{path: "/codec/decode", body: good, headers: auth("X-Namespace", "prod")}, status: 403},
		{name: "encode disabled", tweak: func(o *ServerOptions) { o.DisableEncode = true },
			req: req{path: "/codec/encode", body: good, headers: auth()}, status: 403},
		{name: "decode when encode disabled", tweak: func(o *ServerOptions) { o.DisableEncode = true },
			req: req{path: "/codec/decode", body: good, headers: auth()}, status: 200},
		{name: "GET", req: req{method: "GET", path: "/codec/decode", headers: auth()}, status: 405},
		{name: "unknown path", req: req{path: "/codec/rotate", body: good, headers: auth()}, status: 404},
		{name: "prefix only", req: req{path: "/codec/", body: good, headers: auth()}, status: 404},
		{name: "empty payload list", req: req{path: "/codec/decode", body: `{}`, headers: auth()}, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.req.do(testServer(t, k, tc.tweak))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); (got != "") != tc.corsGrant || (got != "" && got != testOrigin) {
				t.Fatalf("Access-Control-Allow-Origin %q (grant wanted: %v)", got, tc.corsGrant)
			}
			for h, want := range tc.wantHeader {
				if got := w.Header().Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if w.Code >= 400 && strings.Contains(w.Body.String(), testToken) {
				t.Fatal("error reveals the token")
			}
		})
	}
}

func TestCodecServerOversizeBodyWithoutContentLength(t *testing.T) {
	s := testServer(t, newFakeKMS("key-a"), nil)
	r := httptest.NewRequest(http.MethodPost, "/codec/decode", io.MultiReader(strings.NewReader(`{"payloads":[{"data":"`),
		bytes.NewReader(bytes.Repeat([]byte("A"), 100<<10)), strings.NewReader(`"}]}`)))
	r.ContentLength = -1
	for k, v := range auth() {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", w.Code)
	}
}

func TestCodecServerAnswers503WhileKMSIsDown(t *testing.T) {
	k := newFakeKMS("key-a")
	body := payloadsJSON(t, encodeOne(t, mustNew(t, k, Options{}), jsonPayload(t, "x")))
	s := testServer(t, k, nil)
	k.setDown(true)
	if w := (req{path: "/codec/decode", body: body, headers: auth()}).do(s); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	k.setDown(false)
	if w := (req{path: "/codec/decode", body: body, headers: auth()}).do(s); w.Code != 200 {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
}

// FuzzCodecServer feeds arbitrary bodies, paths and headers to the handler: it
// must answer every one with a status, never panic. `go test` runs the seeds;
// `go test -fuzz FuzzCodecServer ./internal/codec` explores further.
func FuzzCodecServer(f *testing.F) {
	k := newFakeKMS("key-a")
	c := mustNew(f, k, Options{})
	enc := encodeOne(f, c, jsonPayload(f, "seed"))
	good, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{enc}})
	for _, seed := range []struct {
		path, body, auth, origin string
	}{
		{"/codec/decode", string(good), "Bearer " + testToken, ""},
		{"/codec/encode", `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"Ingi"}]}`, "Bearer " + testToken, testOrigin},
		{"/codec/decode", `{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","encryption-format":"ZHBwLWNvZGVjLXYx","encryption-key-id":"eA==","encryption-data-key":"eA=="},"data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`, "Bearer " + testToken, ""},
		{"/codec/decode", `{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","encryption-format":"ZHBwLWNvZGVjLXYx","encryption-compression":"ZGVmbGF0ZQ=="}}]}`, "Bearer " + testToken, ""},
		{"/codec/decode", `{"payloads":[{}, null, 1]}`, "Bearer " + testToken, ""},
		{"/codec/decode", "\x00\xff{", "", testOrigin},
		{"/codec/../codec/decode", "[]", "Bearer", "null"},
		{"/codec/decode", `{"payloads":[{"externalPayloads":[{"sizeBytes":"-1"}]}]}`, "bearer " + testToken, ""},
	} {
		f.Add(seed.path, seed.body, seed.auth, seed.origin)
	}
	s := NewServer(c, ServerOptions{Namespace: testNS, Token: testToken, CORSOrigin: testOrigin, MaxBody: 64 << 10})
	f.Fuzz(func(t *testing.T, path, body, authz, origin string) {
		r := httptest.NewRequest(http.MethodPost, "http://worker/codec/decode", strings.NewReader(body))
		r.URL.Path = path // any path, even one no client could send
		r.Header.Set("X-Namespace", testNS)
		if validHeader(authz) {
			r.Header.Set("Authorization", authz)
		}
		if validHeader(origin) {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code < 200 || w.Code > 599 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code == 200 && w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("200 without JSON")
		}
	})
}

func validHeader(v string) bool {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return v != ""
}
