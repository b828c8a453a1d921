// Package spapi is our client for the parts of Amazon's Selling Partner API
// (SP-API) that the system uses: the Orders API v2026-01-01 operations
// searchOrders and getOrder, authenticated with a Login with Amazon (LWA)
// refresh token, and the Notifications API v1 calls that subscribe to
// ORDER_CHANGE (notifications.go), whose destination calls take a grantless
// token instead (token.go).
//
// The types follow the official model orders_2026-01-01.json (Swagger 2.0,
// Apache-2.0, from github.com/amzn/selling-partner-api-models; a copy with its
// attribution lives in ./sandbox/models). Only the fields the system needs are
// modelled; unknown fields are ignored when decoding.
//
// # Buyer PII
//
// Orders carry buyer PII (names, e-mail addresses, phone numbers, addresses,
// gift messages, company names, tax registration numbers). The client never logs
// a request or response body, and its errors never contain a value taken from a
// response: decoding and validation errors name the JSON path and the kind of
// problem only (see [ValidationError] and [ResponseError]). The PII-bearing types
// ([Buyer], [CustomerAddress], [GiftOption], [OrderTaxRegistration]) and the
// types holding them ([Recipient], [OrderTax], [ItemFulfillment], [ItemPacking])
// print as "[redacted]" with the fmt package, and an [Order] prints as a
// summary of non-PII facts, so an accidental %v or %s does not leak them; do
// not hand them to a JSON or reflection based logger (zap.Any) either.
//
// # Rate limits and retries
//
// Each operation has its own token bucket (golang.org/x/time/rate) with Amazon's
// documented default rate, overridable per operation in [Config.Limits]. When a
// response carries the x-amzn-RateLimit-Limit header the operation's rate is
// lowered to it (never above the configured rate). HTTP 429, 5xx and transport
// errors are retried with capped exponential backoff and jitter, honouring
// Retry-After; [IsRetryable] tells callers (Temporal activities) whether a
// returned error is worth retrying later.
package spapi
