package spapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

const (
	userAgent = "plusranger-dpp/1.0 (Language=Go)"
	// maxBodyBytes bounds a response body; a getOrder body is a few KiB and a
	// page of 100 orders well under 1 MiB.
	maxBodyBytes = 16 << 20

	headerRequestID = "x-amzn-RequestId"
	headerRateLimit = "x-amzn-RateLimit-Limit"
	headerToken     = "x-amz-access-token"
)

// Client calls SP-API. It is safe for concurrent use.
type Client struct {
	endpoint    string
	http        *http.Client
	log         *zap.Logger
	tokens      *tokenSource            // nil: send no token (sandbox)
	grantless   map[string]*tokenSource // by scope; set with tokens
	limiters    map[string]*opLimiter
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
}

type opLimiter struct {
	lim *rate.Limiter
	max rate.Limit // the configured rate; the rate header never raises it above this
}

// New validates cfg, fills in defaults and returns a Client. An invalid field
// yields an error naming it (e.g. "spapi: Config.Endpoint: must be an
// absolute http or https URL").
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		endpoint:    cfg.Endpoint,
		http:        cfg.HTTPClient,
		log:         cfg.Logger,
		limiters:    make(map[string]*opLimiter, len(cfg.Limits)),
		maxAttempts: cfg.MaxAttempts,
		baseDelay:   cfg.RetryBaseDelay,
		maxDelay:    cfg.RetryMaxDelay,
	}
	for op, l := range cfg.Limits {
		c.limiters[op] = &opLimiter{lim: rate.NewLimiter(rate.Limit(l.Rate), l.Burst), max: rate.Limit(l.Rate)}
	}
	if cfg.ClientID != "" {
		c.tokens = newTokenSource(cfg)
		c.grantless = map[string]*tokenSource{NotificationsScope: newGrantlessTokenSource(cfg, NotificationsScope)}
	}
	return c, nil
}

// Limit returns the current rate limit of an operation (after any lowering by
// the x-amzn-RateLimit-Limit header) and whether the operation is known.
func (c *Client) Limit(op string) (Limit, bool) {
	l, ok := c.limiters[op]
	if !ok {
		return Limit{}, false
	}
	return Limit{Rate: float64(l.lim.Limit()), Burst: l.lim.Burst()}, true
}

// get performs GET endpoint+path?query for op with rate limiting, the access
// token and retries. A 2xx body is decoded into out and then checked with
// check (if not nil); a failure of either is a *ResponseError.
func (c *Client) get(ctx context.Context, op, path, query string, out any, check func() error) error {
	return c.call(ctx, op, http.MethodGet, path, query, nil, out, check)
}

// call is get for any method; body, when not nil, is sent as JSON.
func (c *Client) call(ctx context.Context, op, method, path, query string, body []byte, out any, check func() error) error {
	lim := c.limiters[op]
	u := c.endpoint + path
	if query != "" {
		u += "?" + query
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		if err := lim.lim.Wait(ctx); err != nil {
			return &limiterError{op: op, err: err}
		}
		retryAfter, token, err := c.once(ctx, op, method, u, body, attempt, lim, out, check)

		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Operation == op && apiErr.StatusCode == http.StatusForbidden &&
			token != "" && !refreshed {
			// The access token may have been revoked or expired early: get a
			// fresh one and try once more, without counting an attempt.
			refreshed = true
			c.tokenSourceFor(op).invalidate(token)
			attempt--
			continue
		}
		if err == nil || !IsRetryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		}
		if attempt >= c.maxAttempts {
			if attempt > 1 {
				return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return err
		}
		delay := c.backoff(attempt)
		if retryAfter > 0 {
			delay = min(retryAfter, c.maxDelay)
		}
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		}
	}
}

// once makes one attempt. It returns the Retry-After delay of an error
// response (0 if none) and the access token it sent ("" if none).
func (c *Client) once(ctx context.Context, op, method, u string, body []byte, attempt int, lim *opLimiter, out any, check func() error) (time.Duration, string, error) {
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, reqBody)
	if err != nil {
		return 0, "", fmt.Errorf("spapi %s: building request: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	token := ""
	if ts := c.tokenSourceFor(op); ts != nil {
		if token, err = ts.get(ctx); err != nil {
			return 0, "", err
		}
		req.Header.Set(headerToken, token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.Debug("spapi: transport error", zap.String("operation", op), zap.Int("attempt", attempt))
		return 0, token, &TransportError{Operation: op, Err: err}
	}
	respBody, readErr := readBody(resp)
	rid := requestID(resp.Header)
	c.log.Debug("spapi: response", zap.String("operation", op), zap.Int("status", resp.StatusCode),
		zap.String("requestId", rid), zap.Int("attempt", attempt))
	c.observeRateHeader(op, lim, resp.Header)
	if readErr != nil {
		if errors.Is(readErr, errBodyTooLarge) {
			return 0, token, &ResponseError{Operation: op, RequestID: rid, Problem: readErr.Error()}
		}
		return 0, token, &TransportError{Operation: op, Err: readErr}
	}

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if err := json.Unmarshal(respBody, out); err != nil {
			return 0, token, &ResponseError{Operation: op, RequestID: rid, Problem: describeDecodeError(err)}
		}
		if check != nil {
			if err := check(); err != nil {
				return 0, token, &ResponseError{Operation: op, RequestID: rid, Problem: err.Error()}
			}
		}
		return 0, token, nil
	}

	e := &Error{Operation: op, StatusCode: resp.StatusCode, RequestID: rid}
	var list struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(respBody, &list) == nil && len(list.Errors) > 0 {
		e.Code, e.Message = capMessage(list.Errors[0].Code), capMessage(list.Errors[0].Message)
	}
	return retryAfter(resp.Header, time.Now()), token, e
}

// observeRateHeader sets the operation's rate to the one Amazon reports, but
// never above the configured rate.
func (c *Client) observeRateHeader(op string, lim *opLimiter, h http.Header) {
	v := h.Get(headerRateLimit)
	if v == "" {
		return
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(r > 0) || math.IsInf(r, 0) {
		return
	}
	want := min(rate.Limit(r), lim.max)
	if lim.lim.Limit() != want {
		lim.lim.SetLimit(want)
		c.log.Debug("spapi: rate limit from response header", zap.String("operation", op), zap.Float64("rate", float64(want)))
	}
}

// backoff returns the delay before attempt+1: base * 2^(attempt-1) capped at
// maxDelay, with "equal jitter" (a random point in the upper half).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.maxDelay
	if attempt-1 < 32 {
		if b := c.baseDelay << (attempt - 1); b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errBodyTooLarge = errors.New("body larger than 16 MiB")

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	return b, nil
}

func requestID(h http.Header) string {
	return capMessage(h.Get(headerRequestID))
}

// limiterError is a rate limiter wait that failed: the context ended, or its
// deadline comes before the limiter would allow the request. The latter is
// worth retrying later.
type limiterError struct {
	op  string
	err error
}

func (e *limiterError) Error() string {
	return "spapi " + e.op + ": waiting for rate limit: " + e.err.Error()
}
func (e *limiterError) Unwrap() error { return e.err }
func (e *limiterError) Retryable() bool {
	return !errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded)
}

// describeDecodeError turns a JSON decoding error into a description that
// names the path and the expected type but never a value from the body.
func describeDecodeError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte offset %d", syn.Offset)
	case errors.As(err, &typ):
		path := typ.Field
		if path == "" {
			path = "body"
		}
		switch typ.Type {
		case reflect.TypeFor[Time]():
			return path + ": not an RFC 3339 date-time"
		case reflect.TypeFor[Decimal]():
			return path + ": not a decimal string"
		}
		found, _, _ := strings.Cut(typ.Value, " ") // "number 1.5" -> "number"
		return fmt.Sprintf("%s: expected %s, found %s", path, typ.Type, found)
	default:
		return "invalid JSON"
	}
}
