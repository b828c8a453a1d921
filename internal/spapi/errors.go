package spapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxMessageLen caps Error.Message (in bytes, cut at a rune boundary).
const maxMessageLen = 300

// Error is an error response from SP-API (or from LWA, with Operation
// "lwaToken"). Code and Message come from the model's ErrorList (the first
// error); Amazon's error messages carry no buyer PII, and Message is capped at
// 300 characters in any case.
type Error struct {
	// Operation is the SP-API operation, e.g. "getOrder".
	Operation string
	// StatusCode is the HTTP status.
	StatusCode int
	// RequestID is the x-amzn-RequestId response header ("" if absent).
	RequestID string
	// Code and Message are errors[0].code and errors[0].message of the body.
	Code, Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("spapi ")
	b.WriteString(e.Operation)
	b.WriteString(": HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Retryable reports whether repeating the request may succeed: HTTP 429
// (throttled) and 5xx.
func (e *Error) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// NotFound reports whether the status is 404.
func (e *Error) NotFound() bool { return e.StatusCode == http.StatusNotFound }

// ResponseError is a successful HTTP response whose body could not be used:
// not valid JSON, of the wrong shape, or failing Order.Validate. Problem names
// the JSON path and the kind of problem, never a value from the body.
// Repeating the request would not help: it is not retryable.
type ResponseError struct {
	Operation string
	RequestID string
	Problem   string
}

func (e *ResponseError) Error() string {
	s := "spapi " + e.Operation + ": unusable response"
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s + ": " + e.Problem
}

// Retryable is always false.
func (e *ResponseError) Retryable() bool { return false }

// TransportError is a failure to get any HTTP response (connection refused,
// reset, timeout). It is retryable unless it was caused by the caller's
// context ending.
type TransportError struct {
	Operation string
	Err       error
}

func (e *TransportError) Error() string {
	return "spapi " + e.Operation + ": transport: " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// Retryable reports whether the failure was not a cancelled or expired context.
func (e *TransportError) Retryable() bool {
	return !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
}

// IsRetryable reports whether err (or an error it wraps) says that repeating
// the call later may succeed: *Error with 429/5xx and transport errors are
// retryable; *ResponseError, other HTTP errors, invalid parameters and context
// cancellation are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	return false
}

// capMessage trims s to maxMessageLen bytes at a rune boundary and replaces
// control characters (newlines) with spaces so a message stays on one log line.
func capMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) <= maxMessageLen {
		return s
	}
	const ellipsis = "…"
	cut := maxMessageLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
