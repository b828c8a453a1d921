package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/plusranger/dpp/internal/spapi"
)

// pageToken is the content of a paginationToken: the query of the first page
// (with its upper time bound fixed) and the position after the last order
// returned. It is opaque to clients (base64url of JSON) and valid for 24 hours.
type pageToken struct {
	V            int       `json:"v"`
	ByCreated    bool      `json:"c"`
	After        time.Time `json:"a"`
	Before       time.Time `json:"b"`
	Marketplaces []string  `json:"m,omitempty"`
	Statuses     []string  `json:"s,omitempty"`
	FulfilledBy  []string  `json:"f,omitempty"`
	LastKey      time.Time `json:"k"`
	LastID       string    `json:"i"`
	Expires      time.Time `json:"e"`
}

const pageTokenVersion = 1

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, bool) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.V != pageTokenVersion {
		return pageToken{}, false
	}
	return t, true
}

func badInput(message string) (int, []byte) {
	return http.StatusBadRequest, errorList("InvalidInput", message, "")
}

// searchOrders answers searchOrders over the generated orders.
//
// Exactly one of createdAfter and lastUpdatedAfter is required. The upper
// bound (createdBefore / lastUpdatedBefore) defaults to now by the server
// clock; unlike Amazon, a bound less than two minutes in the past is accepted.
// marketplaceIds, fulfillmentStatuses and fulfilledBy filter when given.
// Results are sorted by the searched time (lastUpdatedTime, or createdTime
// for createdAfter queries) and then orderId; a page holds maxResultsPerPage
// orders (default and maximum 100). The nextToken fixes the query (including
// the upper bound) and the position after the page's last order, so later
// pages neither repeat nor skip orders as long as the orders do not change
// meanwhile; with a paginationToken the other filter parameters are taken
// from the token. includedData selects the datasets, as with getOrder.
func (s *Server) searchOrders(q url.Values) (int, []byte) {
	now := s.opts.Clock().UTC()
	included, ok := s.parseIncluded(q)
	if !ok {
		return badInput("Invalid includedData.")
	}
	pageSize := maxPageSize
	if v := q.Get("maxResultsPerPage"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return badInput("maxResultsPerPage must be between 1 and 100.")
		}
		pageSize = n
	}

	var t pageToken
	if tok := q.Get("paginationToken"); tok != "" {
		var ok bool
		if t, ok = decodePageToken(tok); !ok {
			return badInput("Invalid paginationToken.")
		}
		if !now.Before(t.Expires) {
			return badInput("The paginationToken has expired.")
		}
	} else {
		var status int
		var body []byte
		if t, status, body = parseSearchQuery(q, now); status != 0 {
			return status, body
		}
	}

	type row struct {
		key     time.Time
		order   spapi.Order
		corrupt string
	}
	var rows []row
	s.mu.Lock()
	for _, g := range s.orders {
		o := g.view(now, s.opts.DeliveryAfter)
		key := o.LastUpdatedTime.Time
		if t.ByCreated {
			key = o.CreatedTime.Time
		}
		if key.Before(t.After) || key.After(t.Before) {
			continue
		}
		if len(t.Marketplaces) > 0 && !slices.Contains(t.Marketplaces, o.SalesChannel.MarketplaceID) {
			continue
		}
		if len(t.Statuses) > 0 && !slices.Contains(t.Statuses, o.Fulfillment.FulfillmentStatus) {
			continue
		}
		if len(t.FulfilledBy) > 0 && !slices.Contains(t.FulfilledBy, o.Fulfillment.FulfilledBy) {
			continue
		}
		if t.LastID != "" && (key.Before(t.LastKey) || key.Equal(t.LastKey) && o.OrderID <= t.LastID) {
			continue
		}
		rows = append(rows, row{key, o, g.corruptList})
	}
	s.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].key.Equal(rows[j].key) {
			return rows[i].key.Before(rows[j].key)
		}
		return rows[i].order.OrderID < rows[j].order.OrderID
	})

	resp := spapi.SearchOrdersResponse{Orders: []spapi.Order{}}
	if t.ByCreated {
		resp.CreatedBefore = spapi.NewTime(t.Before)
	} else {
		resp.LastUpdatedBefore = spapi.NewTime(t.Before)
	}
	corrupt := map[int]string{} // position on the page -> CorruptInSearch mode
	for i, r := range rows {
		if i == pageSize {
			last := rows[i-1]
			next := t
			next.LastKey, next.LastID = last.key, last.order.OrderID
			next.Expires = now.Add(pageTokenTTL)
			resp.Pagination = &spapi.Pagination{NextToken: encodePageToken(next)}
			break
		}
		resp.Orders = append(resp.Orders, filter(r.order, included))
		if r.corrupt != "" {
			corrupt[len(resp.Orders)-1] = r.corrupt
		}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return http.StatusInternalServerError, injectedError(http.StatusInternalServerError)
	}
	if len(corrupt) > 0 {
		// Re-encode the page with those orders spoiled (see CorruptInSearch).
		var page map[string]any
		if json.Unmarshal(body, &page) == nil {
			if list, ok := page["orders"].([]any); ok {
				for i, how := range corrupt {
					if o, ok := list[i].(map[string]any); ok {
						s.corruptOrder(o, how)
					}
				}
			}
			body, _ = json.Marshal(page)
		}
	}
	return http.StatusOK, body
}

// parseSearchQuery validates a first-page query. A non-zero status is an
// error response.
func parseSearchQuery(q url.Values, now time.Time) (pageToken, int, []byte) {
	t := pageToken{V: pageTokenVersion}
	fail := func(msg string) (pageToken, int, []byte) {
		st, b := badInput(msg)
		return pageToken{}, st, b
	}
	parse := func(name string) (time.Time, bool, bool) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, false, true
		}
		ts, err := time.Parse(time.RFC3339Nano, v)
		return ts.UTC(), true, err == nil
	}
	ca, hasCA, ok1 := parse("createdAfter")
	cb, hasCB, ok2 := parse("createdBefore")
	ua, hasUA, ok3 := parse("lastUpdatedAfter")
	ub, hasUB, ok4 := parse("lastUpdatedBefore")
	switch {
	case !ok1 || !ok2 || !ok3 || !ok4:
		return fail("Dates must be in ISO 8601 format.")
	case hasCA == hasUA:
		return fail("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
	case hasCA && hasUB, hasUA && hasCB:
		return fail("createdAfter/createdBefore cannot be combined with lastUpdatedAfter/lastUpdatedBefore.")
	}
	if hasCA {
		t.ByCreated, t.After, t.Before = true, ca, now
		if hasCB {
			t.Before = cb
		}
	} else {
		t.After, t.Before = ua, now
		if hasUB {
			t.Before = ub
		}
	}
	if t.Before.Before(t.After) {
		return fail("The end of the time range is before its start.")
	}
	t.Marketplaces = splitCSV(q.Get("marketplaceIds"))
	if len(t.Marketplaces) > 50 {
		return fail("At most 50 marketplaceIds are allowed.")
	}
	t.Statuses = splitCSV(q.Get("fulfillmentStatuses"))
	t.FulfilledBy = splitCSV(q.Get("fulfilledBy"))
	return t, 0, nil
}
