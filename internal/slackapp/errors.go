// Package slackapp is the Slack side of the worker: a Router that verifies every
// request Slack sends to the public listener and hands it to the handler a
// domain registered (access review, incidents), and a Messenger that posts and
// updates messages through the Web API. Neither ever logs or returns message
// text: Slack messages name people, so only ids (user, channel, action, view)
// appear in logs and errors.
package slackapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/slack-go/slack"
)

// UserError is an error whose Message is meant for the person who clicked or
// typed: the Router shows it to them (ephemerally, or on the modal's field) and
// logs it at info level. Any other error a handler returns is internal: the
// person sees a generic text with a reference, the log gets the error. Message
// must not carry personal data beyond what that person already sees.
type UserError struct {
	Message string
	// Field is the block id of a modal's input block the message belongs to
	// (view submissions only); empty means the modal's first input block.
	Field string
}

func (e UserError) Error() string { return e.Message }

// Userf builds a UserError. Format only ids and fixed words into it.
func Userf(format string, args ...any) error {
	return UserError{Message: fmt.Sprintf(format, args...)}
}

// asUserError finds a UserError in err's chain, whether it was returned as a
// value or a pointer.
func asUserError(err error) (UserError, bool) {
	var v UserError
	if errors.As(err, &v) {
		return v, true
	}
	var p *UserError
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	return UserError{}, false
}

// ErrNotConfigured is what a nil *Messenger returns: SLACK_BOT_TOKEN is empty,
// so nothing is posted. Callers that can do without Slack check for it with
// errors.Is and carry on (the decision can still arrive by signal).
var ErrNotConfigured = errors.New("slack is not configured (SLACK_BOT_TOKEN is empty)")

// APIError is a failed Slack Web API call: the method and Slack's error code
// (e.g. channel_not_found, ratelimited, http_503), never the message text or
// the request's URL (a response_url is a bearer capability).
type APIError struct {
	Method string
	Code   string
	// RetryAfter is Slack's Retry-After on a rate limit, else zero.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("slack %s: %s (retry after %s)", e.Method, e.Code, e.RetryAfter)
	}
	return fmt.Sprintf("slack %s: %s", e.Method, e.Code)
}

// Permanent reports whether repeating the call cannot help: Slack refused the
// request itself (unknown channel, bad blocks, revoked token), as opposed to a
// rate limit, a 5xx or a network failure.
func (e *APIError) Permanent() bool {
	switch e.Code {
	case "ratelimited", "transport", "timeout", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return false
	}
	if len(e.Code) == len("http_500") && e.Code[:6] == "http_5" {
		return false
	}
	return true
}

// apiError turns what slack-go returned into an *APIError that keeps only the
// method and the error code.
func apiError(method string, err error) error {
	if err == nil {
		return nil
	}
	e := &APIError{Method: method, Code: "error"}
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &rl):
		e.Code, e.RetryAfter = "ratelimited", rl.RetryAfter
	case errors.As(err, &sc):
		e.Code = fmt.Sprintf("http_%d", sc.Code)
	case errors.As(err, &se):
		e.Code = se.Err
		if !isCode(e.Code) {
			e.Code = "error"
		}
	case errors.Is(err, slack.ErrParametersMissing):
		e.Code = "missing_parameters"
	case errors.Is(err, slack.ErrBlockIDNotUnique):
		e.Code = "block_id_not_unique"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Code = "timeout"
	case errors.Is(err, context.Canceled):
		e.Code = "canceled"
	case errors.As(err, &ue):
		e.Code = "transport"
	default:
		// Slack answers a failed response_url call with a bare text body, which
		// slack-go returns as the error's text: short codes only.
		if s := err.Error(); len(s) <= 40 && isCode(s) {
			e.Code = s
		}
	}
	return e
}

func isCode(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}
