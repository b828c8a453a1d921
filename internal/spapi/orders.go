package spapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const ordersPath = "/orders/2026-01-01/orders"

// ErrInvalidParams is wrapped by the errors SearchOrders and GetOrder return
// for invalid arguments (before any request is made). Not retryable.
var ErrInvalidParams = errors.New("invalid parameters")

// SearchOrdersParams are the query parameters of searchOrders. Exactly one of
// CreatedAfter and LastUpdatedAfter must be set. Times are sent as RFC 3339 in
// UTC (whole seconds).
type SearchOrdersParams struct {
	// CreatedAfter selects orders created at or after this time.
	CreatedAfter time.Time
	// CreatedBefore optionally bounds CreatedAfter (only with CreatedAfter).
	CreatedBefore time.Time
	// LastUpdatedAfter selects orders updated at or after this time.
	LastUpdatedAfter time.Time
	// LastUpdatedBefore optionally bounds LastUpdatedAfter (only with it).
	// Amazon requires it to be at least two minutes in the past.
	LastUpdatedBefore time.Time
	// MarketplaceIDs is required (1 to 50 IDs), e.g. []string{MarketplaceUK}.
	MarketplaceIDs []string
	// IncludedData lists the datasets to include (Include* constants).
	IncludedData []string
	// MaxResultsPerPage is 1 to 100; 0 leaves Amazon's default (100).
	MaxResultsPerPage int
	// PaginationToken is the previous page's NextToken; "" for the first page.
	// Send it with the same other parameters as the first request.
	PaginationToken string
}

func (p SearchOrdersParams) query() (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("spapi %s: %w: %s", OpSearchOrders, ErrInvalidParams, fmt.Sprintf(format, args...))
	}
	created, updated := !p.CreatedAfter.IsZero(), !p.LastUpdatedAfter.IsZero()
	switch {
	case created == updated:
		return bad("exactly one of CreatedAfter and LastUpdatedAfter must be set")
	case created && !p.LastUpdatedBefore.IsZero():
		return bad("LastUpdatedBefore may only be used with LastUpdatedAfter")
	case updated && !p.CreatedBefore.IsZero():
		return bad("CreatedBefore may only be used with CreatedAfter")
	case created && !p.CreatedBefore.IsZero() && p.CreatedBefore.Before(p.CreatedAfter):
		return bad("CreatedBefore is before CreatedAfter")
	case updated && !p.LastUpdatedBefore.IsZero() && p.LastUpdatedBefore.Before(p.LastUpdatedAfter):
		return bad("LastUpdatedBefore is before LastUpdatedAfter")
	case len(p.MarketplaceIDs) == 0:
		return bad("MarketplaceIDs is required")
	case len(p.MarketplaceIDs) > 50:
		return bad("at most 50 MarketplaceIDs")
	case p.MaxResultsPerPage < 0 || p.MaxResultsPerPage > 100:
		return bad("MaxResultsPerPage must be between 1 and 100")
	}
	for _, id := range p.MarketplaceIDs {
		if id == "" || strings.Contains(id, ",") {
			return bad("MarketplaceIDs has an empty or comma-containing ID")
		}
	}
	if err := checkList(p.IncludedData); err != nil {
		return bad("IncludedData %s", err)
	}

	var q queryBuilder
	q.time("createdAfter", p.CreatedAfter)
	q.time("createdBefore", p.CreatedBefore)
	q.time("lastUpdatedAfter", p.LastUpdatedAfter)
	q.time("lastUpdatedBefore", p.LastUpdatedBefore)
	q.list("marketplaceIds", p.MarketplaceIDs)
	q.list("includedData", p.IncludedData)
	if p.MaxResultsPerPage > 0 {
		q.add("maxResultsPerPage", strconv.Itoa(p.MaxResultsPerPage))
	}
	q.add("paginationToken", p.PaginationToken)
	return q.String(), nil
}

// SearchOrders fetches one page of orders (GET /orders/2026-01-01/orders).
// Follow resp.NextToken() with PaginationToken for further pages.
//
// The page is decoded order by order: an order that cannot be decoded or fails
// Order.Validate is left out of resp.Orders and described in resp.Rejected, so
// one malformed order never costs the others on its page. A page that is not
// usable as a whole (invalid JSON, no orders array, a bad pagination or upper
// bound) is a *ResponseError.
func (c *Client) SearchOrders(ctx context.Context, p SearchOrdersParams) (*SearchOrdersResponse, error) {
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	var page searchOrdersPage
	var out SearchOrdersResponse
	check := func() error {
		if page.Orders == nil {
			return &ValidationError{"orders", problemMissing}
		}
		out = SearchOrdersResponse{Orders: make([]Order, 0, len(page.Orders)), Pagination: page.Pagination,
			LastUpdatedBefore: page.LastUpdatedBefore, CreatedBefore: page.CreatedBefore}
		for i, raw := range page.Orders {
			o, rej := decodeOrder(i, raw)
			if rej != nil {
				out.Rejected = append(out.Rejected, *rej)
				continue
			}
			out.Orders = append(out.Orders, o)
		}
		return nil
	}
	if err := c.get(ctx, OpSearchOrders, ordersPath, q, &page, check); err != nil {
		return nil, err
	}
	return &out, nil
}

// searchOrdersPage is SearchOrdersResponse with its orders not yet decoded.
type searchOrdersPage struct {
	Orders            []json.RawMessage `json:"orders"`
	Pagination        *Pagination       `json:"pagination,omitempty"`
	LastUpdatedBefore Time              `json:"lastUpdatedBefore,omitzero"`
	CreatedBefore     Time              `json:"createdBefore,omitzero"`
}

// RejectedOrder is an order of a searchOrders page that could not be decoded or
// failed Order.Validate. It carries nothing from the order but its orderId (not
// PII: Amazon's order number) and a digest: never a field's value.
type RejectedOrder struct {
	// Index is the order's position on its page, from 0.
	Index int
	// OrderID is the order's orderId, or "" when it has none that looks like an
	// order number (missing, not a string, odd characters, too long).
	OrderID string
	// Digest is the hex SHA-256 of the order's JSON, truncated to 128 bits: it
	// tells an order without a usable id from the others (the same document
	// served again has the same digest), and reveals nothing of its content.
	Digest string
	// Problem names the JSON path and the kind of problem, relative to the
	// order: e.g. "order.createdTime: not an RFC 3339 date-time" or
	// "order.orderItems: missing". Never a value.
	Problem string
}

// decodeOrder decodes and validates one order of a page; a problem is
// returned as a RejectedOrder instead.
func decodeOrder(i int, raw json.RawMessage) (Order, *RejectedOrder) {
	var o Order
	problem := ""
	if err := json.Unmarshal(raw, &o); err != nil {
		problem = describeDecodeError(err)
		switch {
		case strings.HasPrefix(problem, "body:"):
			problem = "order" + strings.TrimPrefix(problem, "body")
		case strings.HasPrefix(problem, "invalid JSON"):
			problem = "order: " + problem
		default:
			problem = "order." + problem
		}
	} else if err := o.Validate(); err != nil {
		problem = err.Error()
	}
	if problem == "" {
		return o, nil
	}
	sum := sha256.Sum256(raw)
	r := &RejectedOrder{Index: i, Digest: hex.EncodeToString(sum[:16]), Problem: problem}
	var id struct {
		OrderID any `json:"orderId"`
	}
	if json.Unmarshal(raw, &id) == nil {
		if s, ok := id.OrderID.(string); ok && UsableOrderID(s) {
			r.OrderID = s
		}
	}
	return Order{}, r
}

// CheckOrder validates an order already decoded (as SearchOrders returns it,
// or from another source) and describes it as a RejectedOrder at position i when
// it fails Order.Validate; nil when it is valid.
func CheckOrder(i int, o *Order) *RejectedOrder {
	err := o.Validate()
	if err == nil {
		return nil
	}
	raw, _ := json.Marshal(o)
	sum := sha256.Sum256(raw)
	r := &RejectedOrder{Index: i, Digest: hex.EncodeToString(sum[:16]), Problem: err.Error()}
	if o != nil && UsableOrderID(o.OrderID) {
		r.OrderID = o.OrderID
	}
	return r
}

// UsableOrderID reports whether s looks like an order number that may be
// recorded and used to ask for the order again: 1 to 64 ASCII letters, digits,
// '-' or '_' (Amazon's are 3-7-7 digits, e.g. 202-1234567-1234567).
func UsableOrderID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// GetOrder fetches one order (GET /orders/2026-01-01/orders/{orderId}) with
// the given datasets (Include* constants; sent comma-separated as the model's
// collectionFormat csv says). The order must pass Order.Validate and carry the
// requested orderId, else the error is a *ResponseError.
func (c *Client) GetOrder(ctx context.Context, orderID string, includedData []string) (*Order, error) {
	if orderID == "" {
		return nil, fmt.Errorf("spapi %s: %w: orderID is required", OpGetOrder, ErrInvalidParams)
	}
	if err := checkList(includedData); err != nil {
		return nil, fmt.Errorf("spapi %s: %w: includedData %s", OpGetOrder, ErrInvalidParams, err)
	}
	var q queryBuilder
	q.list("includedData", includedData)
	var out GetOrderResponse
	check := func() error {
		if out.Order == nil {
			return &ValidationError{Path: "order", Problem: problemMissing}
		}
		if err := out.Order.Validate(); err != nil {
			return err
		}
		if out.Order.OrderID != orderID {
			return &ValidationError{Path: "order.orderId", Problem: "not the requested order"}
		}
		return nil
	}
	path := ordersPath + "/" + url.PathEscape(orderID)
	if err := c.get(ctx, OpGetOrder, path, q.String(), &out, check); err != nil {
		return nil, err
	}
	return out.Order, nil
}

func checkList(items []string) error {
	for _, s := range items {
		if s == "" || strings.Contains(s, ",") {
			return errors.New("has an empty or comma-containing value")
		}
	}
	return nil
}

// queryBuilder writes query parameters in a fixed order. Arrays are
// comma-separated (collectionFormat csv) with the commas left unescaped, as
// Amazon's examples show.
type queryBuilder struct{ strings.Builder }

func (q *queryBuilder) add(name, value string) {
	if value == "" {
		return
	}
	if q.Len() > 0 {
		q.WriteByte('&')
	}
	q.WriteString(name)
	q.WriteByte('=')
	q.WriteString(url.QueryEscape(value))
}

func (q *queryBuilder) time(name string, t time.Time) {
	if !t.IsZero() {
		q.add(name, t.UTC().Format(time.RFC3339))
	}
}

func (q *queryBuilder) list(name string, values []string) {
	if len(values) == 0 {
		return
	}
	escaped := make([]string, len(values))
	for i, v := range values {
		escaped[i] = url.QueryEscape(v)
	}
	if q.Len() > 0 {
		q.WriteByte('&')
	}
	q.WriteString(name)
	q.WriteByte('=')
	q.WriteString(strings.Join(escaped, ","))
}
