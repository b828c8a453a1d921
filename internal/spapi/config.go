package spapi

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Operation names: the keys of Config.Limits, Error.Operation and log fields.
const (
	OpSearchOrders = "searchOrders"
	OpGetOrder     = "getOrder"
	// Notifications API v1 (notifications.go); the destination operations
	// take the grantless token (token.go).
	OpCreateDestination  = "createDestination"
	OpCreateSubscription = "createSubscription"
	OpGetDestinations    = "getDestinations"
	OpGetSubscription    = "getSubscription"
	// Feeds API 2021-06-30 (feeds.go). The two document transfers go to
	// pre-signed URLs: named in errors and logs, not rate limited.
	OpCreateFeedDocument   = "createFeedDocument"
	OpCreateFeed           = "createFeed"
	OpGetFeed              = "getFeed"
	OpGetFeedDocument      = "getFeedDocument"
	OpUploadFeedDocument   = "uploadFeedDocument"
	OpDownloadFeedDocument = "downloadFeedDocument"
	// OpLWAToken names the Login with Amazon token exchange in errors and
	// logs; it is not rate limited.
	OpLWAToken = "lwaToken"
)

// Defaults used by New for zero Config fields.
const (
	DefaultEndpoint       = "https://sellingpartnerapi-eu.amazon.com"
	DefaultTokenURL       = "https://api.amazon.com/auth/o2/token"
	DefaultMaxAttempts    = 5
	DefaultRetryBaseDelay = time.Second
	DefaultRetryMaxDelay  = 30 * time.Second
	DefaultHTTPTimeout    = time.Minute
)

// Limit is a token bucket: a sustained rate and a burst.
type Limit struct {
	// Rate is the sustained rate in requests per second (> 0).
	Rate float64
	// Burst is the bucket size (>= 1).
	Burst int
}

// DefaultLimits returns Amazon's documented default usage plans for the
// operations the client calls: searchOrders 0.0056 requests/s with burst 20,
// getOrder 0.5 requests/s with burst 30, the Notifications API's 1/s burst 5,
// and the Feeds API's (createFeed 0.0083/s burst 15, getFeed 2/s burst 15, ...).
func DefaultLimits() map[string]Limit {
	return map[string]Limit{
		OpSearchOrders: {Rate: 0.0056, Burst: 20},
		OpGetOrder:     {Rate: 0.5, Burst: 30},
		// Notifications API v1: both 1 request/s, burst 5.
		OpCreateDestination:  {Rate: 1, Burst: 5},
		OpCreateSubscription: {Rate: 1, Burst: 5},
		OpGetDestinations:    {Rate: 1, Burst: 5},
		OpGetSubscription:    {Rate: 1, Burst: 5},
		// Feeds API 2021-06-30, the usage plans in the model's descriptions.
		OpCreateFeedDocument: {Rate: 0.5, Burst: 15},
		OpCreateFeed:         {Rate: 0.0083, Burst: 15},
		OpGetFeed:            {Rate: 2, Burst: 15},
		OpGetFeedDocument:    {Rate: 0.0222, Burst: 10},
	}
}

// Config configures a Client. The zero value of every field except the
// credentials has a usable default, given in its comment.
type Config struct {
	// Endpoint is the SP-API base URL, e.g. https://sellingpartnerapi-eu.amazon.com
	// (the EU endpoint, which serves the UK; this is the default), the Amazon
	// sandbox https://sandbox.sellingpartnerapi-eu.amazon.com, or the URL of our
	// own sandbox server (package sandbox). It may have a path prefix.
	Endpoint string

	// TokenURL is the Login with Amazon token endpoint. Default
	// https://api.amazon.com/auth/o2/token. Used only when credentials are set.
	TokenURL string

	// ClientID, ClientSecret and RefreshToken are the LWA credentials. When
	// ClientID and RefreshToken are both empty (our sandbox) no token is
	// requested or sent; otherwise all three are required. Default: empty.
	ClientID, ClientSecret, RefreshToken string

	// HTTPClient sends every request. Default: a client with a 1 minute timeout.
	HTTPClient *http.Client

	// Logger receives Debug lines (operation, status, request id, attempt;
	// never bodies or tokens). Default: zap.NewNop().
	Logger *zap.Logger

	// Limits overrides the rate limit of individual operations (keys
	// OpSearchOrders, OpGetOrder). Operations not in the map keep
	// DefaultLimits. Default: nil (Amazon's documented limits).
	Limits map[string]Limit

	// MaxAttempts is the number of tries of a request that fails with 429,
	// 5xx or a transport error (>= 1). Default 5.
	MaxAttempts int

	// RetryBaseDelay is the first backoff delay; it doubles per attempt, with
	// jitter. Default 1s.
	RetryBaseDelay time.Duration

	// RetryMaxDelay caps a backoff delay, including one taken from a
	// Retry-After header. Default 30s.
	RetryMaxDelay time.Duration

	// Now is the clock used for the LWA token's expiry. Default time.Now.
	// Rate limiting and backoff always use the real clock.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if err := checkURL(c.Endpoint); err != nil {
		return c, fmt.Errorf("spapi: Config.Endpoint: %w", err)
	}
	c.Endpoint = strings.TrimRight(c.Endpoint, "/")

	hasCreds := c.ClientID != "" || c.RefreshToken != ""
	if hasCreds {
		switch {
		case c.ClientID == "":
			return c, fmt.Errorf("spapi: Config.ClientID: required when Config.RefreshToken is set")
		case c.RefreshToken == "":
			return c, fmt.Errorf("spapi: Config.RefreshToken: required when Config.ClientID is set")
		case c.ClientSecret == "":
			return c, fmt.Errorf("spapi: Config.ClientSecret: required when LWA credentials are set")
		}
		if c.TokenURL == "" {
			c.TokenURL = DefaultTokenURL
		}
	}
	if c.TokenURL != "" {
		if err := checkURL(c.TokenURL); err != nil {
			return c, fmt.Errorf("spapi: Config.TokenURL: %w", err)
		}
	}

	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	limits := DefaultLimits()
	for op, l := range c.Limits {
		if _, ok := limits[op]; !ok {
			return c, fmt.Errorf("spapi: Config.Limits[%q]: unknown operation", op)
		}
		if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
			return c, fmt.Errorf("spapi: Config.Limits[%q].Rate: must be a positive number", op)
		}
		if l.Burst < 1 {
			return c, fmt.Errorf("spapi: Config.Limits[%q].Burst: must be at least 1", op)
		}
		limits[op] = l
	}
	c.Limits = limits

	switch {
	case c.MaxAttempts == 0:
		c.MaxAttempts = DefaultMaxAttempts
	case c.MaxAttempts < 0:
		return c, fmt.Errorf("spapi: Config.MaxAttempts: must be at least 1")
	}
	switch {
	case c.RetryBaseDelay == 0:
		c.RetryBaseDelay = DefaultRetryBaseDelay
	case c.RetryBaseDelay < 0:
		return c, fmt.Errorf("spapi: Config.RetryBaseDelay: must not be negative")
	}
	switch {
	case c.RetryMaxDelay == 0:
		c.RetryMaxDelay = max(DefaultRetryMaxDelay, c.RetryBaseDelay)
	case c.RetryMaxDelay < c.RetryBaseDelay:
		return c, fmt.Errorf("spapi: Config.RetryMaxDelay: must not be less than Config.RetryBaseDelay")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// checkURL accepts an absolute http(s) URL with a host and no query or
// fragment. Its error does not repeat the URL (it could hold credentials).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a valid URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("must be an absolute http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must not have user info, a query or a fragment")
	}
	return nil
}
