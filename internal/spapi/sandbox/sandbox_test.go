package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
)

const marker = "LEAK-MARKER-91c2"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 5, 11, 14, 0, 0, 0, time.UTC)} }

func start(t *testing.T, mod func(*sandbox.Options)) (*sandbox.Server, string, *fakeClock) {
	t.Helper()
	clock := newClock()
	opts := sandbox.Options{Seed: 1, Clock: clock.Now, Marker: marker, Limits: sandbox.TestLimits()}
	if mod != nil {
		mod(&opts)
	}
	srv, base := sandboxtest.Start(t, opts)
	return srv, base, clock
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, base, path string, q url.Values) response {
	t.Helper()
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, b}
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var l struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(body, &l), string(body))
	require.NotEmpty(t, l.Errors)
	require.NotEmpty(t, l.Errors[0].Message)
	return l.Errors[0].Code
}

var all = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES,TAX"

func TestGenerateIsDeterministic(t *testing.T) {
	clock := newClock()
	a := sandbox.New(sandbox.Options{Seed: 7, Clock: clock.Now})
	b := sandbox.New(sandbox.Options{Seed: 7, Clock: clock.Now})
	c := sandbox.New(sandbox.Options{Seed: 8, Clock: clock.Now})
	idsA, idsB, idsC := a.Generate(20), b.Generate(20), c.Generate(20)
	assert.Equal(t, idsA, idsB)
	assert.NotEqual(t, idsA, idsC)
	for _, id := range idsA {
		oa, _ := a.Order(id)
		ob, _ := b.Order(id)
		ja, _ := json.Marshal(oa)
		jb, _ := json.Marshal(ob)
		assert.JSONEq(t, string(ja), string(jb))
	}
	assert.Equal(t, a.Generate(3), b.Generate(3), "later batches too")
}

func TestGeneratedOrdersAreRealistic(t *testing.T) {
	srv, _, clock := start(t, nil)
	ids := srv.Generate(1000)
	idFormat := regexp.MustCompile(`^\d{3}-\d{7}-\d{7}$`)
	unique := map[string]bool{}
	business, over250, gifts := 0, 0, 0
	for _, id := range ids {
		require.Regexp(t, idFormat, id)
		require.False(t, unique[id], "duplicate id")
		unique[id] = true

		o, ok := srv.Order(id)
		require.True(t, ok)
		require.NoError(t, o.Validate())
		assert.Equal(t, id, o.OrderID)
		assert.Equal(t, clock.Now(), o.CreatedTime.Time)
		assert.Equal(t, "AMAZON", o.SalesChannel.ChannelName)
		assert.Equal(t, spapi.MarketplaceUK, o.SalesChannel.MarketplaceID)
		assert.Equal(t, "MERCHANT", o.Fulfillment.FulfilledBy)
		assert.Equal(t, spapi.StatusUnshipped, o.Fulfillment.FulfillmentStatus)
		require.GreaterOrEqual(t, len(o.OrderItems), 1)
		require.LessOrEqual(t, len(o.OrderItems), 3)

		var sum int64
		for _, it := range o.OrderItems {
			assert.Regexp(t, `^PR-[A-Z]+-\d\d$`, it.Product.SellerSKU)
			assert.Regexp(t, `^B0[0-9A-Z]{8}$`, it.Product.ASIN)
			assert.NotEmpty(t, it.Product.Title)
			assert.Len(t, it.OrderItemID, 14)
			assert.Equal(t, "GBP", it.Product.Price.UnitPrice.CurrencyCode)
			unit, err := it.Product.Price.UnitPrice.Amount.Minor()
			require.NoError(t, err)
			line, err := it.Proceeds.ProceedsTotal.Amount.Minor()
			require.NoError(t, err)
			assert.Equal(t, unit*int64(it.Quantity()), line)
			sum += line
			if it.Fulfillment.Packing != nil {
				gifts++
				assert.Contains(t, it.Fulfillment.Packing.GiftOption.GiftMessage, marker)
			}
		}
		total, err := o.Proceeds.GrandTotal.Amount.Minor()
		require.NoError(t, err)
		assert.Equal(t, sum, total)
		assert.Equal(t, "GBP", o.Proceeds.GrandTotal.CurrencyCode)
		if total > 25000 {
			over250++
		}

		// Every PII string carries the marker; e-mail addresses are anonymised.
		assert.Contains(t, o.Buyer.BuyerName, marker)
		assert.Regexp(t, `^[a-z0-9]{16}`+marker+`@marketplace\.amazon\.co\.uk$`, o.Buyer.BuyerEmail)
		addr := o.Recipient.DeliveryAddress
		for _, s := range []string{addr.Name, addr.AddressLine1, addr.Phone} {
			assert.Contains(t, s, marker)
		}
		if addr.AddressLine2 != "" {
			assert.Contains(t, addr.AddressLine2, marker)
		}
		assert.Regexp(t, `^[A-Z]{1,2}\d{1,2} \d[A-Z]{2}$`, addr.PostalCode)
		assert.Equal(t, "GB", addr.CountryCode)
		assert.NotEmpty(t, addr.City)
		assert.True(t, strings.HasPrefix(addr.Phone, "+44 7700 900"))

		latest, ok := o.LatestDeliveryDate()
		assert.True(t, ok)
		assert.Equal(t, clock.Now().Add(72*time.Hour), latest)

		if o.IsBusiness() {
			business++
			assert.Contains(t, o.Buyer.BuyerCompanyName, marker)
			assert.Contains(t, o.Buyer.BuyerPurchaseOrderNumber, marker)
			assert.Contains(t, addr.CompanyName, marker)
			assert.Equal(t, "COMMERCIAL", addr.AddressType)
			require.Len(t, o.Tax.TaxRegistrations, 1)
			reg := o.Tax.TaxRegistrations[0]
			assert.Equal(t, spapi.EntityBuyer, reg.EntityType)
			assert.Equal(t, spapi.TaxRegistrationVAT, reg.TaxRegistrationType)
			assert.Contains(t, reg.LegalName, marker)
			assert.Contains(t, reg.TaxRegistrationNumber, marker)
			vat := strings.TrimSuffix(reg.TaxRegistrationNumber, " "+marker)
			assert.True(t, validGBVAT(vat), vat)
			assert.Contains(t, reg.TaxRegistrationAddress.AddressLine1, marker)
		} else {
			assert.Nil(t, o.Tax)
			assert.Empty(t, o.Buyer.BuyerCompanyName)
		}
	}
	t.Logf("business %d, over GBP 250 %d, gift messages %d (of %d)", business, over250, gifts, len(ids))
	assert.InDelta(t, 100, business, 40, "about 10%% business orders")
	assert.InDelta(t, 150, over250, 50, "about 15%% orders over GBP 250")
	assert.Positive(t, gifts)
}

// validGBVAT checks a 9-digit GB VAT number with the 97-modulus check.
func validGBVAT(s string) bool {
	if !regexp.MustCompile(`^GB\d{9}$`).MatchString(s) {
		return false
	}
	sum := 0
	for i := range 7 {
		sum += int(s[2+i]-'0') * (8 - i)
	}
	check := int(s[9]-'0')*10 + int(s[10]-'0')
	return (sum+check)%97 == 0
}

func TestUnmarkedWithoutMarker(t *testing.T) {
	srv := sandbox.New(sandbox.Options{})
	id := srv.Generate(1)[0]
	o, _ := srv.Order(id)
	assert.Regexp(t, `^[A-Za-z]+ [A-Za-z]+$`, o.Buyer.BuyerName)
	assert.Regexp(t, `^[a-z0-9]{16}@marketplace\.amazon\.co\.uk$`, o.Buyer.BuyerEmail)
	assert.Regexp(t, `^\+44 7700 900\d{3}$`, o.Recipient.DeliveryAddress.Phone)
}

func TestResponsesConformToModel(t *testing.T) {
	srv, base, clock := start(t, nil)
	mc := newModelChecker(t)
	ids := srv.Generate(40)
	require.NoError(t, srv.Cancel(ids[0]))
	for _, stage := range []time.Duration{0, 25 * time.Hour, 24 * time.Hour} {
		clock.Advance(stage)
		for _, id := range ids {
			r := get(t, base, "/orders/2026-01-01/orders/"+id, url.Values{"includedData": {all}})
			require.Equal(t, 200, r.status)
			assert.Empty(t, mc.check(t, "GetOrderResponse", r.body))
		}
		r := get(t, base, "/orders/2026-01-01/orders", url.Values{
			"createdAfter": {"2026-01-01T00:00:00Z"}, "includedData": {all}, "maxResultsPerPage": {"15"}})
		require.Equal(t, 200, r.status)
		assert.Empty(t, mc.check(t, "SearchOrdersResponse", r.body))
	}
	// The checker itself accepts the model's own examples and rejects
	// unknown properties.
	r := get(t, base, "/orders/2026-01-01/orders/171-9876543-2109876", nil)
	assert.Empty(t, mc.check(t, "GetOrderResponse", r.body))
	assert.NotEmpty(t, mc.check(t, "GetOrderResponse", []byte(`{"order":{"orderID":"x"}}`)))
}

// TestStaticExamples replays every static sandbox example of the model and
// expects its body with the status it is listed under.
func TestStaticExamples(t *testing.T) {
	_, base, _ := start(t, nil)
	var m struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Responses   map[string]struct {
				Sandbox struct {
					Static []struct {
						Request struct {
							Parameters map[string]struct {
								Value any `json:"value"`
							} `json:"parameters"`
						} `json:"request"`
						Response json.RawMessage `json:"response"`
					} `json:"static"`
				} `json:"x-amzn-api-sandbox"`
			} `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(sandbox.OrdersModel(), &m))
	n := 0
	for path, methods := range m.Paths {
		for _, op := range methods {
			for code, resp := range op.Responses {
				for i, ex := range resp.Sandbox.Static {
					p := path
					q := url.Values{}
					for name, v := range ex.Request.Parameters {
						var s string
						switch val := v.Value.(type) {
						case string:
							s = val
						case []any:
							parts := make([]string, len(val))
							for j := range val {
								parts[j] = fmt.Sprint(val[j])
							}
							s = strings.Join(parts, ",")
						}
						if name == "orderId" {
							p = strings.ReplaceAll(p, "{orderId}", url.PathEscape(s))
						} else {
							q.Set(name, s)
						}
					}
					r := get(t, base, p, q)
					assert.Equal(t, code, fmt.Sprint(r.status), "%s %s #%d", op.OperationID, code, i)
					assert.JSONEq(t, string(ex.Response), string(r.body), "%s %s #%d", op.OperationID, code, i)
					assert.NotEmpty(t, r.header.Get("x-amzn-RequestId"))
					n++
				}
			}
		}
	}
	assert.Equal(t, 8, n, "3+1 searchOrders and 3+1 getOrder examples")

	// includedData does not matter for a static example.
	r := get(t, base, "/orders/2026-01-01/orders/171-9876543-2109876", url.Values{"includedData": {"BUYER"}})
	assert.Equal(t, 200, r.status)
	assert.Contains(t, string(r.body), "Maria Silva Santos")
}

func TestSearchPaginationAndFilters(t *testing.T) {
	srv, base, clock := start(t, nil)
	ids := srv.Generate(25)
	clock.Advance(time.Hour)
	require.NoError(t, srv.Cancel(ids[3]))
	search := func(q url.Values) spapi.SearchOrdersResponse {
		t.Helper()
		r := get(t, base, "/orders/2026-01-01/orders", q)
		require.Equal(t, 200, r.status, string(r.body))
		var resp spapi.SearchOrdersResponse
		require.NoError(t, json.Unmarshal(r.body, &resp))
		return resp
	}

	var got []string
	q := url.Values{"lastUpdatedAfter": {"2026-05-11T00:00:00Z"}, "marketplaceIds": {spapi.MarketplaceUK}, "maxResultsPerPage": {"10"}}
	var prev spapi.Order
	firstNow := clock.Now()
	for {
		resp := search(q)
		assert.Equal(t, firstNow, resp.LastUpdatedBefore.Time, "fixed by the first page")
		for _, o := range resp.Orders {
			got = append(got, o.OrderID)
			if prev.OrderID != "" {
				// Sorted by lastUpdatedTime, then orderId.
				assert.True(t, prev.LastUpdatedTime.Before(o.LastUpdatedTime.Time) ||
					prev.LastUpdatedTime.Equal(o.LastUpdatedTime.Time) && prev.OrderID < o.OrderID)
			}
			prev = o
			assert.Nil(t, o.Buyer)
			assert.Nil(t, o.Fulfillment)
		}
		if resp.NextToken() == "" {
			break
		}
		q.Set("paginationToken", resp.NextToken())
		clock.Advance(time.Minute) // the token fixes the query's upper bound
	}
	sort.Strings(got)
	want := append([]string(nil), ids...)
	sort.Strings(want)
	assert.Equal(t, want, got)
	assert.Equal(t, ids[3], prev.OrderID, "the cancelled order was updated last")

	// Filters.
	resp := search(url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}, "fulfillmentStatuses": {"CANCELLED"}, "includedData": {"FULFILLMENT"}})
	require.Len(t, resp.Orders, 1)
	assert.True(t, resp.Orders[0].Cancelled())
	assert.False(t, resp.CreatedBefore.IsZero())
	resp = search(url.Values{"createdAfter": {"2026-05-11T14:00:01Z"}})
	assert.Empty(t, resp.Orders)
	resp = search(url.Values{"lastUpdatedAfter": {"2026-05-11T14:30:00Z"}})
	require.Len(t, resp.Orders, 1, "only the cancellation is newer")
	resp = search(url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}, "marketplaceIds": {"A1PA6795UKMFR9,A13V1IB3VIYZZH"}})
	assert.Empty(t, resp.Orders)
	resp = search(url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}, "includedData": {"BUYER"}, "maxResultsPerPage": {"3"}})
	require.Len(t, resp.Orders, 3)
	assert.Contains(t, resp.Orders[0].Buyer.BuyerName, marker)
	assert.Nil(t, resp.Orders[0].Recipient)
	assert.Nil(t, resp.Orders[0].OrderItems[0].Proceeds)

	// Tokens expire after 24 hours.
	first := search(url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}, "maxResultsPerPage": {"5"}})
	require.NotEmpty(t, first.NextToken())
	clock.Advance(25 * time.Hour)
	r := get(t, base, "/orders/2026-01-01/orders", url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}, "paginationToken": {first.NextToken()}})
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "InvalidInput", errorCode(t, r.body))
}

func TestSearchValidation(t *testing.T) {
	_, base, _ := start(t, nil)
	bad := []url.Values{
		{},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "lastUpdatedAfter": {"2026-05-11T00:00:00Z"}},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "lastUpdatedBefore": {"2026-05-11T00:00:00Z"}},
		{"lastUpdatedAfter": {"2026-05-11T00:00:00Z"}, "createdBefore": {"2026-05-11T00:00:00Z"}},
		{"createdAfter": {"yesterday"}},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "createdBefore": {"2026-05-10T00:00:00Z"}},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "maxResultsPerPage": {"0"}},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "maxResultsPerPage": {"101"}},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "includedData": {"BUYER,SECRETS"}},
		{"createdAfter": {"2026-05-11T00:00:00Z"}, "paginationToken": {"garbage"}},
	}
	for _, q := range bad {
		r := get(t, base, "/orders/2026-01-01/orders", q)
		assert.Equal(t, 400, r.status, q.Encode())
		assert.Equal(t, "InvalidInput", errorCode(t, r.body))
	}
	r := get(t, base, "/orders/2026-01-01/orders/205-0000000-0000000", nil)
	assert.Equal(t, 404, r.status)
	r = get(t, base, "/orders/2026-01-01/orders/205-0000000-0000000/items", nil)
	assert.Equal(t, 404, r.status)
	r = get(t, base, "/nothing", nil)
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "NotFound", errorCode(t, r.body))
	assert.NotEmpty(t, r.header.Get("x-amzn-RequestId"))
}

func TestFaultInjection(t *testing.T) {
	srv, base, _ := start(t, nil)
	id := srv.Generate(1)[0]
	path := "/orders/2026-01-01/orders/" + id

	srv.FailNext(1, 429)
	srv.FailNext(1, 500)
	srv.FailNext(1, 503)
	srv.FailNext(1, 400)
	r := get(t, base, path, nil)
	assert.Equal(t, 429, r.status)
	assert.Equal(t, "10000", r.header.Get("x-amzn-RateLimit-Limit"))
	assert.Equal(t, "QuotaExceeded", errorCode(t, r.body))
	r = get(t, base, "/orders/2026-01-01/orders", url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}})
	assert.Equal(t, 500, r.status)
	assert.Equal(t, "InternalFailure", errorCode(t, r.body))
	r = get(t, base, path, nil)
	assert.Equal(t, 503, r.status)
	assert.Equal(t, "ServiceUnavailable", errorCode(t, r.body))
	r = get(t, base, path, nil)
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "BadRequest", errorCode(t, r.body))
	r = get(t, base, path, nil)
	assert.Equal(t, 200, r.status)
	assert.Equal(t, 4, srv.Requests(spapi.OpGetOrder))
	assert.Equal(t, 1, srv.Requests(spapi.OpSearchOrders))

	// Corruption.
	cases := map[string]func(body []byte){
		sandbox.CorruptInvalidJSON: func(b []byte) { assert.False(t, json.Valid(b)) },
		sandbox.CorruptMissingItems: func(b []byte) {
			var m map[string]map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			assert.NotContains(t, m["order"], "orderItems")
			assert.Contains(t, m["order"], "buyer")
		},
		sandbox.CorruptBadTime: func(b []byte) {
			var m map[string]map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			assert.Contains(t, m["order"]["createdTime"], marker)
		},
		sandbox.CorruptBadAmount: func(b []byte) { assert.Contains(t, string(b), `"amount":"12,50 `+marker) },
	}
	for how, check := range cases {
		require.NoError(t, srv.CorruptOrder(id, how))
		r := get(t, base, path, url.Values{"includedData": {all}})
		assert.Equal(t, 200, r.status)
		check(r.body)
	}
	require.NoError(t, srv.CorruptOrder(id, ""))
	r = get(t, base, path, nil)
	var ok spapi.GetOrderResponse
	require.NoError(t, json.Unmarshal(r.body, &ok))
	require.NoError(t, ok.Order.Validate())
	require.Error(t, srv.CorruptOrder(id, "bogus"))
	require.Error(t, srv.CorruptOrder("205-0000000-0000000", sandbox.CorruptInvalidJSON))
}

func TestCorruptInSearchSpoilsOneOrderOfThePage(t *testing.T) {
	srv, base, clock := start(t, nil)
	ids := srv.Generate(3)
	require.NoError(t, srv.CorruptInSearch(ids[1], sandbox.CorruptMissingID))
	q := url.Values{"lastUpdatedAfter": {clock.Now().Add(-time.Hour).Format(time.RFC3339)}, "marketplaceIds": {spapi.MarketplaceUK}}
	r := get(t, base, "/orders/2026-01-01/orders", q)
	require.Equal(t, 200, r.status, string(r.body))
	var page struct {
		Orders []map[string]any `json:"orders"`
	}
	require.NoError(t, json.Unmarshal(r.body, &page), "the page stays valid JSON")
	require.Len(t, page.Orders, 3)
	var withID []any
	for _, o := range page.Orders {
		if id, ok := o["orderId"]; ok {
			withID = append(withID, id)
		}
	}
	assert.ElementsMatch(t, []any{ids[0], ids[2]}, withID)
	// getOrder is not affected, and the corruption can be lifted.
	g := get(t, base, "/orders/2026-01-01/orders/"+ids[1], nil)
	assert.Contains(t, string(g.body), ids[1])
	require.NoError(t, srv.CorruptInSearch(ids[1], ""))
	r = get(t, base, "/orders/2026-01-01/orders", q)
	assert.Contains(t, string(r.body), ids[1])
	require.Error(t, srv.CorruptInSearch(ids[1], sandbox.CorruptInvalidJSON), "would break the whole page")
	require.Error(t, srv.CorruptInSearch("205-0000000-0000000", sandbox.CorruptBadTime))
}

func TestOwnRateLimiter(t *testing.T) {
	srv, base, _ := start(t, func(o *sandbox.Options) {
		o.Limits = map[string]spapi.Limit{spapi.OpSearchOrders: {Rate: 0.0056, Burst: 2}}
	})
	q := url.Values{"createdAfter": {"2026-05-11T00:00:00Z"}}
	for range 2 {
		r := get(t, base, "/orders/2026-01-01/orders", q)
		assert.Equal(t, 200, r.status)
		assert.Equal(t, "0.0056", r.header.Get("x-amzn-RateLimit-Limit"))
	}
	r := get(t, base, "/orders/2026-01-01/orders", q)
	assert.Equal(t, 429, r.status)
	assert.Equal(t, "0.0056", r.header.Get("x-amzn-RateLimit-Limit"))
	assert.Equal(t, "QuotaExceeded", errorCode(t, r.body))
	assert.Equal(t, 3, srv.Requests(spapi.OpSearchOrders))
	// getOrder has its own bucket.
	r = get(t, base, "/orders/2026-01-01/orders/TEST_CASE_400", nil)
	assert.Equal(t, 400, r.status)
}

func TestTokenEndpoint(t *testing.T) {
	srv, base, clock := start(t, nil)
	id := srv.Generate(1)[0]
	post := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(base+"/auth/o2/token", form)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		assert.NotEmpty(t, resp.Header.Get("x-amzn-RequestId"))
		return resp.StatusCode, m
	}
	good := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"Atzr|x"}, "client_id": {"id"}, "client_secret": {"s"}}
	status, m := post(good)
	require.Equal(t, 200, status)
	assert.EqualValues(t, 3600, m["expires_in"])
	tok, _ := m["access_token"].(string)
	require.NotEmpty(t, tok)

	status, m = post(url.Values{"grant_type": {"refresh_token"}, "client_id": {"id"}, "client_secret": {"s"}})
	assert.Equal(t, 400, status)
	assert.Equal(t, "invalid_request", m["error"])
	status, m = post(url.Values{"grant_type": {"password"}, "client_id": {"id"}, "client_secret": {"s"}})
	assert.Equal(t, 400, status)
	assert.Equal(t, "unsupported_grant_type", m["error"])
	status, m = post(url.Values{"grant_type": {"client_credentials"}, "scope": {"sellingpartnerapi::migration"}, "client_id": {"id"}, "client_secret": {"s"}})
	assert.Equal(t, 400, status)
	assert.Equal(t, "invalid_scope", m["error"])
	status, m = post(url.Values{"grant_type": {"client_credentials"}, "scope": {spapi.NotificationsScope}, "client_id": {"id"}})
	assert.Equal(t, 401, status, "grantless without the client secret")
	assert.Equal(t, "invalid_client", m["error"])
	status, m = post(url.Values{"grant_type": {"client_credentials"}, "scope": {spapi.NotificationsScope}, "client_id": {"id"}, "client_secret": {"s"}})
	require.Equal(t, 200, status)
	assert.Nil(t, m["refresh_token"], "a grantless token comes without a refresh token")
	grantless, _ := m["access_token"].(string)
	require.NotEmpty(t, grantless)
	assert.Equal(t, 6, srv.TokenRequests())
	assert.Equal(t, 6, srv.Requests(spapi.OpLWAToken))

	call := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/orders/2026-01-01/orders/"+id, nil)
		req.Header.Set("x-amz-access-token", token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 200, call(tok))
	assert.Equal(t, 403, call("Atza|forged"))
	assert.Equal(t, 403, call(grantless), "getOrder takes the seller's token, not a grantless one")
	clock.Advance(time.Hour)
	assert.Equal(t, 403, call(tok), "expired")
	_, m = post(good)
	tok2 := m["access_token"].(string)
	assert.Equal(t, 200, call(tok2))
	srv.RevokeTokens()
	assert.Equal(t, 403, call(tok2), "revoked")
}

func TestRequestIDsAreUnique(t *testing.T) {
	_, base, _ := start(t, nil)
	seen := map[string]bool{}
	for range 50 {
		r := get(t, base, "/orders/2026-01-01/orders/TEST_CASE_400", nil)
		rid := r.header.Get("x-amzn-RequestId")
		require.NotEmpty(t, rid)
		assert.False(t, seen[rid])
		seen[rid] = true
	}
}

func TestNewNeverFails(t *testing.T) {
	srv := sandbox.New(sandbox.Options{Limits: map[string]spapi.Limit{"getOrders": {Rate: 1, Burst: 1}}})
	require.NotNil(t, srv)
	_, err := sandbox.NewE(sandbox.Options{Limits: map[string]spapi.Limit{"getOrders": {Rate: 1, Burst: 1}}})
	require.ErrorContains(t, err, "getOrders")
	_, err = sandbox.NewE(sandbox.Options{Limits: map[string]spapi.Limit{spapi.OpGetOrder: {Rate: 0, Burst: 1}}})
	require.ErrorContains(t, err, "rate must be positive")
	// The fallback server works and still serves the static examples.
	ids := srv.Generate(2)
	assert.Len(t, ids, 2)
	_, ok := srv.Order(ids[0])
	assert.True(t, ok)
	_, ok = srv.Order("nope")
	assert.False(t, ok)
	assert.ElementsMatch(t, ids, srv.OrderIDs())
}
