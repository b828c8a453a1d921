package codec

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
)

// DefaultMaxBody is the default cap of a codec request body.
const DefaultMaxBody = 4 << 20

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
	codec     *Codec
	opts      ServerOptions
	tokenHash [32]byte
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
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	opts.CORSOrigin = strings.TrimSuffix(opts.CORSOrigin, "/")
	s := &Server{codec: c, opts: opts}
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
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		if origin == "" {
			http.Error(w, "CORS preflight without Origin", http.StatusBadRequest)
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
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r, origin) {
		log.Warn("Codec request without a valid token refused")
		w.Header().Set("WWW-Authenticate", `Bearer realm="dpp-codec"`)
		http.Error(w, "a valid bearer token is required (DPP_CODEC_TOKEN)", http.StatusUnauthorized)
		return
	}
	if op == "encode" && s.opts.DisableEncode {
		http.Error(w, "encoding is disabled on this worker (DPP_CODEC_ENCODE=false)", http.StatusForbidden)
		return
	}
	// The Web UI always names the namespace; the temporal CLI sends an empty
	// X-Namespace unless --namespace is given, so only a different one is refused.
	ns := r.Header.Get("X-Namespace")
	if ns != "" && s.opts.Namespace != "" && ns != s.opts.Namespace {
		http.Error(w, "this codec serves namespace "+s.opts.Namespace, http.StatusForbidden)
		return
	}
	if r.ContentLength > s.opts.MaxBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(body, &in); err != nil {
		http.Error(w, `malformed JSON: want {"payloads": [{"metadata": {...}, "data": "<base64>"}]}`, http.StatusBadRequest)
		return
	}
	for _, p := range in.Payloads {
		if p == nil {
			http.Error(w, "null payload", http.StatusBadRequest)
			return
		}
	}
	var out []*commonpb.Payload
	if op == "encode" {
		out, err = s.codec.Encode(in.Payloads)
	} else {
		out, err = s.codec.Decode(in.Payloads)
	}
	if err != nil {
		status := http.StatusBadRequest
		if IsTransient(err) {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
		log.Warn("Codec request failed", zap.Int("payloads", len(in.Payloads)), zap.Error(err))
		http.Error(w, err.Error(), status)
		return
	}
	resp, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		http.Error(w, "cannot encode the response", http.StatusInternalServerError)
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
