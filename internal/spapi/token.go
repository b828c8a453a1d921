package spapi

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// tokenRefreshMargin is how long before its expiry a cached access token is
// replaced (halved for tokens that live less than two margins).
const tokenRefreshMargin = time.Minute

// NotificationsScope is the scope of the grantless token that Amazon requires
// for the Notifications API's destination operations: a destination belongs to
// the application, not to a seller, so no seller's refresh token may create it.
const NotificationsScope = "sellingpartnerapi::notifications"

// tokenSource exchanges LWA credentials for access tokens and caches one until
// shortly before it expires: the seller's (grant refresh_token) or a grantless
// one (grant client_credentials with a scope), each in a source of its own so
// neither evicts the other. lock is a one-slot semaphore (a mutex whose
// waiters honour their context): it guards token and expiry and is held during
// a refresh, so only one refresh runs at a time and the callers that queued
// behind it reuse its result.
type tokenSource struct {
	url                    string
	grant                  url.Values // the form minus the client's id and secret
	kind                   string     // "seller" or the grantless scope, for logs
	clientID, clientSecret string
	http                   *http.Client
	now                    func() time.Time
	log                    *zap.Logger

	lock   chan struct{}
	token  string
	expiry time.Time // when to stop using token (already minus the margin)
}

// newTokenSource gives the seller's tokens, from the refresh token.
func newTokenSource(cfg Config) *tokenSource {
	return newSource(cfg, "seller", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cfg.RefreshToken}})
}

// newGrantlessTokenSource gives the application's tokens for scope.
func newGrantlessTokenSource(cfg Config, scope string) *tokenSource {
	return newSource(cfg, scope, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
}

func newSource(cfg Config, kind string, grant url.Values) *tokenSource {
	return &tokenSource{
		url:          cfg.TokenURL,
		grant:        grant,
		kind:         kind,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		http:         cfg.HTTPClient,
		now:          cfg.Now,
		log:          cfg.Logger,
		lock:         make(chan struct{}, 1),
	}
}

// get returns a valid access token, refreshing it if needed.
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	select {
	case ts.lock <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-ts.lock }()

	if ts.token != "" && ts.now().Before(ts.expiry) {
		return ts.token, nil
	}
	tok, ttl, err := ts.fetch(ctx)
	if err != nil {
		return "", err
	}
	margin := tokenRefreshMargin
	if ttl < 2*margin {
		margin = ttl / 2
	}
	ts.token, ts.expiry = tok, ts.now().Add(ttl-margin)
	ts.log.Debug("spapi: LWA access token refreshed", zap.String("token", ts.kind), zap.Duration("expiresIn", ttl))
	return tok, nil
}

// invalidate drops the cached token if it is still tok (a 403 said it is no
// longer accepted), so the next get refreshes it.
func (ts *tokenSource) invalidate(tok string) {
	ts.lock <- struct{}{}
	if ts.token == tok {
		ts.token, ts.expiry = "", time.Time{}
	}
	<-ts.lock
}

type lwaResponse struct {
	AccessToken      string  `json:"access_token"`
	ExpiresIn        float64 `json:"expires_in"`
	Error            string  `json:"error"`
	ErrorDescription string  `json:"error_description"`
}

func (ts *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"client_id": {ts.clientID}, "client_secret": {ts.clientSecret}}
	maps.Copy(form, ts.grant)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &TransportError{Operation: OpLWAToken, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := ts.http.Do(req)
	if err != nil {
		return "", 0, &TransportError{Operation: OpLWAToken, Err: err}
	}
	body, err := readBody(resp)
	if err != nil {
		return "", 0, &TransportError{Operation: OpLWAToken, Err: err}
	}
	rid := requestID(resp.Header)
	ts.log.Debug("spapi: response", zap.String("operation", OpLWAToken),
		zap.Int("status", resp.StatusCode), zap.String("requestId", rid))

	var r lwaResponse
	jsonErr := json.Unmarshal(body, &r)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Operation: OpLWAToken, StatusCode: resp.StatusCode, RequestID: rid}
		if jsonErr == nil {
			e.Code, e.Message = r.Error, capMessage(r.ErrorDescription)
		}
		return "", 0, e
	}
	if jsonErr != nil {
		return "", 0, &ResponseError{Operation: OpLWAToken, RequestID: rid, Problem: describeDecodeError(jsonErr)}
	}
	if r.AccessToken == "" {
		return "", 0, &ResponseError{Operation: OpLWAToken, RequestID: rid, Problem: "access_token: missing"}
	}
	if !(r.ExpiresIn > 0) {
		return "", 0, &ResponseError{Operation: OpLWAToken, RequestID: rid, Problem: "expires_in: missing or not positive"}
	}
	const maxTTL = 24 * time.Hour
	ttl := maxTTL
	if r.ExpiresIn < maxTTL.Seconds() {
		ttl = time.Duration(r.ExpiresIn * float64(time.Second))
	}
	return r.AccessToken, ttl, nil
}

// ErrNoCredentials is CheckToken's answer for a client without LWA credentials
// (our sandbox, which needs no token).
var ErrNoCredentials = errors.New("no LWA credentials configured (LWA_CLIENT_ID empty): the client talks to a sandbox without tokens")

// CheckToken exchanges the refresh token for an access token now, so a
// diagnosis can tell bad credentials (an *Error with Operation OpLWAToken: code
// invalid_client for the client id or secret, invalid_grant for the refresh
// token) from a missing role. It returns how long the token is valid.
func (c *Client) CheckToken(ctx context.Context) (time.Duration, error) {
	if c.tokens == nil {
		return 0, ErrNoCredentials
	}
	_, ttl, err := c.tokens.fetch(ctx)
	return ttl, err
}

// grantlessOps are the operations Amazon authorises with the application's
// grantless token instead of the seller's.
var grantlessOps = map[string]string{
	OpCreateDestination: NotificationsScope,
	OpGetDestinations:   NotificationsScope,
}

// tokenSourceFor is the source of op's access token; nil: send none.
func (c *Client) tokenSourceFor(op string) *tokenSource {
	if c.tokens == nil {
		return nil
	}
	if scope, ok := grantlessOps[op]; ok {
		return c.grantless[scope]
	}
	return c.tokens
}
