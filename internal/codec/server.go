package codec

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
)

// Defaults of ServerOptions.
const (
	// DefaultMaxBody is the default cap of a codec request body.
	DefaultMaxBody = 4 << 20
	// DefaultMaxDecoded is the default cap of the bytes one request decodes to.
	DefaultMaxDecoded = 16 << 20
	// DefaultMaxConcurrent is how many codec requests are served at once by
	// default; more wait (up to DefaultQueueWait, then 503). With the caps above
	// it bounds what the codec server holds in memory to a few tens of MiB.
	DefaultMaxConcurrent = 2
	DefaultQueueWait     = 10 * time.Second
)

// ServerOptions configure the codec endpoints.
type ServerOptions struct {
	// Prefix is where the endpoints are mounted: Prefix+"/encode" and
	// Prefix+"/decode" (default "/codec").
	Prefix string
	// Namespace is the Temporal namespace this codec serves; a request whose
	// X-Namespace header names another is refused (403). An empty or missing
	// header is accepted (the temporal CLI sends one without --namespace).
	Namespace string
	// Token is the bearer token every request must carry. Empty refuses every
	// request (401), unless AllowUIWithoutToken lets the Web UI in.
	Token string
	// CORSOrigin is the one browser origin (the Web UI) granted CORS.
	CORSOrigin string
	// MaxBody caps request bodies (default 4 MiB); larger ones get 413.
	MaxBody int64
	// MaxDecoded caps the bytes the payloads of one request decode to (default
	// 16 MiB); a request over it gets 413, and decoding stops there.
	MaxDecoded int64
	// MaxConcurrent bounds the requests decoded or encoded at once (default 2).
	MaxConcurrent int
	// CacheSize bounds the data keys the server keeps unwrapped, in a cache of
	// its own (default: the codec's cache size), so requests to the server never
	// evict the keys the worker decodes with.
	CacheSize int
	// DisableEncode makes /encode answer 403.
	DisableEncode bool
	// AllowUIWithoutToken accepts requests without an Authorization header when
	// their Origin is CORSOrigin. For development only: the Origin header proves
	// nothing to a non-browser client, so this opens decoding to every program
	// that can reach the address. Requests that carry a wrong token are still refused.
	AllowUIWithoutToken bool
	// Log records refusals and who decoded what (never payload contents).
	Log *zap.Logger
}

// Server serves Temporal's codec server contract: POST {"payloads": [...]} (the
// JSON form of temporal.api.common.v1.Payloads, bytes in base64) to /encode or
// /decode, with an X-Namespace header, answered in the same form.
type Server struct {
	codec     *Codec // with a data-key cache of its own
	opts      ServerOptions
	tokenHash [32]byte
	slots     chan struct{}
}

// NewServer returns the codec endpoints for c.
func NewServer(c *Codec, opts ServerOptions) *Server {
	if opts.Prefix == "" {
		opts.Prefix = "/codec"
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxDecoded <= 0 {
		opts.MaxDecoded = DefaultMaxDecoded
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	opts.CORSOrigin = strings.TrimSuffix(opts.CORSOrigin, "/")
	s := &Server{codec: c.withOwnCache(opts.CacheSize), opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
	if opts.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(opts.Token))
	}
	return s
}

const allowHeaders = "Authorization, Content-Type, X-Namespace"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.URL.Path, s.opts.Prefix+"/")
	if !ok || (op != "encode" && op != "decode") {
		http.NotFound(w, r)
		return
	}
	log := s.opts.Log.With(zap.String("op", op), zap.String("remote", r.RemoteAddr), zap.String("origin", r.Header.Get("Origin")))
	origin := r.Header.Get("Origin")
	if origin != "" {
		if origin != s.opts.CORSOrigin || s.opts.CORSOrigin == "" {
			// No CORS grant: a browser page of another origin can neither read
			// an answer nor, for anything but a simple request, send one.
			log.Warn("Codec request from a foreign origin refused")
			fail(w, http.StatusForbidden, "origin not allowed")
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		if origin == "" {
			fail(w, http.StatusBadRequest, "CORS preflight without Origin")
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", allowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
			// Chrome's Private Network Access: a public Web UI calling a codec on
			// a private address asks this first.
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !s.authorized(r, origin) {
		log.Warn("Codec request without a valid token refused")
		w.Header().Set("WWW-Authenticate", `Bearer realm="dpp-codec"`)
		fail(w, http.StatusUnauthorized, "a valid bearer token is required (DPP_CODEC_TOKEN)")
		return
	}
	if op == "encode" && s.opts.DisableEncode {
		fail(w, http.StatusForbidden, "encoding is disabled on this worker (DPP_CODEC_ENCODE=false)")
		return
	}
	// The Web UI always names the namespace; the temporal CLI sends an empty
	// X-Namespace unless --namespace is given, so only a different one is refused.
	ns := r.Header.Get("X-Namespace")
	if ns != "" && s.opts.Namespace != "" && ns != s.opts.Namespace {
		fail(w, http.StatusForbidden, "this codec serves another namespace")
		return
	}
	if r.ContentLength > s.opts.MaxBody {
		fail(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	// A bounded number of requests hold bodies and decoded payloads at once.
	wait := time.NewTimer(DefaultQueueWait)
	defer wait.Stop()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-wait.C:
		log.Warn("Codec request refused: the codec server is busy")
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "busy; retry later")
		return
	case <-r.Context().Done():
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		fail(w, http.StatusBadRequest, "cannot read request body")
		return
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(body, &in); err != nil {
		fail(w, http.StatusBadRequest, `malformed JSON: want {"payloads": [{"metadata": {...}, "data": "<base64>"}]}`)
		return
	}
	body = nil
	for _, p := range in.Payloads {
		if p == nil {
			fail(w, http.StatusBadRequest, "null payload")
			return
		}
	}
	var out []*commonpb.Payload
	if op == "encode" {
		out, err = s.codec.Encode(in.Payloads)
	} else {
		out, err = s.codec.decodeWithin(in.Payloads, s.opts.MaxDecoded)
	}
	if err != nil {
		// The details (AWS error text, key ARNs) go to the log only; the answer
		// says what kind of failure it was and nothing more.
		log.Warn("Codec request failed", zap.Int("payloads", len(in.Payloads)), zap.Error(err))
		switch {
		case errors.Is(err, ErrTooLarge):
			fail(w, http.StatusRequestEntityTooLarge, "payloads decode to more than this server allows")
		case IsTransient(err):
			w.Header().Set("Retry-After", "5")
			fail(w, http.StatusServiceUnavailable, "key service unavailable; retry later")
		default:
			fail(w, http.StatusBadRequest, "payload cannot be "+op+"d")
		}
		return
	}
	resp, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot encode the response")
		return
	}
	log.Info("Codec request served", zap.String("namespace", ns), zap.Int("payloads", len(out)))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	// Decoded payloads may hold personal data: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
}

// fail answers {"error": msg}. Messages are fixed texts: never an error's text,
// a key ARN or anything from a payload.
func fail(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// authorized checks the bearer token in constant time (the comparison of two
// SHA-256 digests does not depend on where the token differs, or on its length).
func (s *Server) authorized(r *http.Request, origin string) bool {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return s.opts.AllowUIWithoutToken && origin != "" && origin == s.opts.CORSOrigin
	}
	if s.opts.Token == "" {
		return false
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}
