package app

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/slackapp"
)

// Public listener paths (DPP_PUBLIC_ADDR); the domains' ingest paths are
// theirs (IncidentsPath, LoginEventsPath).
const (
	SlackInteractionsPath = "/slack/interactions"
	SlackCommandsPath     = "/slack/commands"
	IncidentsPath         = "/incidents"
	LoginEventsPath       = "/access/login-events"
	// MaxIngestBody bounds an ingest request's body.
	MaxIngestBody = 1 << 20
)

// Public is what the public listener serves: Slack's requests through Router
// and the ingest routes monitoring systems post to with DPP_INGEST_TOKEN.
// Domains register on it before the listener starts (publicMounts).
type Public struct {
	// Router takes the domains' Slack handlers (OnAction, OnView, OnCommand).
	// Without SLACK_SIGNING_SECRET it answers 503 to every request.
	Router *slackapp.Router

	log   *zap.Logger
	token [sha256.Size]byte
	empty bool
	mux   *http.ServeMux

	mu     sync.Mutex
	ingest []string
}

func newPublic(signingSecret, ingestToken string, log *zap.Logger) *Public {
	p := &Public{Router: slackapp.NewRouter(signingSecret, log.Named("slack")), log: log,
		token: sha256.Sum256([]byte(ingestToken)), empty: ingestToken == "", mux: http.NewServeMux()}
	p.mux.Handle("POST "+SlackInteractionsPath, p.Router.Interactions())
	p.mux.Handle("POST "+SlackCommandsPath, p.Router.Commands())
	return p
}

// Public returns the public listener's routes, built with every domain's
// registrations on first use.
func (a *App) Public() *Public {
	a.publicOnce.Do(func() {
		a.public = newPublic(a.Config.SlackSigningSecret, a.Config.IngestToken, a.Log.Named("public"))
		for _, mount := range a.publicMounts() {
			mount(a.public)
		}
	})
	return a.public
}

// publicMounts are the domains' registrations on the public listener: Slack
// handlers on p.Router, ingest routes with p.Ingest. Each domain adds its own.
func (a *App) publicMounts() []func(p *Public) {
	return []func(p *Public){a.mountIncidents, a.mountAccess}
}

// Ingest serves POST path with h, for callers that present DPP_INGEST_TOKEN as
// a bearer token (compared in constant time); others get 401 and h never runs.
// Bodies are limited to MaxIngestBody. Registering a path twice panics.
func (p *Public) Ingest(path string, h http.Handler) {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "/slack/") {
		panic("app: ingest path " + path + " must start with / and stay out of /slack/")
	}
	p.mu.Lock()
	p.ingest = append(p.ingest, path)
	p.mu.Unlock()
	p.mux.Handle("POST "+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.authorized(r) {
			p.log.Warn("Ingest request refused: missing or wrong bearer token", zap.String("path", path))
			w.Header().Set("WWW-Authenticate", `Bearer realm="dpp-ingest"`)
			http.Error(w, "a valid bearer token (DPP_INGEST_TOKEN) is required", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxIngestBody)
		h.ServeHTTP(w, r)
	}))
}

// IngestPaths lists the registered ingest routes.
func (p *Public) IngestPaths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ingest...)
}

func (p *Public) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if p.empty || !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Hashing first makes the comparison independent of the token's length.
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], p.token[:]) == 1
}

// Handler serves the public listener's routes; anything else is 404.
func (p *Public) Handler() http.Handler { return p.mux }

// PublicServer is the public listener's server on DPP_PUBLIC_ADDR, with the
// same timeouts as the operator listener.
func (a *App) PublicServer() *http.Server {
	return NewHTTPServer(a.Config.PublicAddr, a.Public().Handler())
}
