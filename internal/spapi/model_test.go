package spapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secret = "SECRET-PII"

func intp(i int) *int { return &i }

func validOrder() *Order {
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	return &Order{
		OrderID:         "205-1234567-7654321",
		CreatedTime:     NewTime(created),
		LastUpdatedTime: NewTime(created.Add(time.Hour)),
		SalesChannel:    &SalesChannel{ChannelName: "AMAZON", MarketplaceID: MarketplaceUK},
		Buyer:           &Buyer{BuyerName: secret},
		Proceeds:        &OrderProceeds{GrandTotal: &Money{Amount: "12.50", CurrencyCode: "GBP"}},
		OrderItems: []OrderItem{
			{OrderItemID: "1", QuantityOrdered: intp(1), Product: &ItemProduct{SellerSKU: "PR-KETTLE-01",
				Price: &ItemPrice{UnitPrice: &Money{Amount: "12.50", CurrencyCode: "GBP"}}}},
			{OrderItemID: "2", QuantityOrdered: intp(2), Product: &ItemProduct{}},
		},
	}
}

func TestValidate(t *testing.T) {
	require.NoError(t, validOrder().Validate())

	cases := []struct {
		name   string
		mutate func(o *Order)
		want   string
	}{
		{"orderId", func(o *Order) { o.OrderID = "" }, "order.orderId: missing"},
		{"createdTime", func(o *Order) { o.CreatedTime = Time{} }, "order.createdTime: missing"},
		{"lastUpdatedTime", func(o *Order) { o.LastUpdatedTime = Time{} }, "order.lastUpdatedTime: missing"},
		{"salesChannel", func(o *Order) { o.SalesChannel = nil }, "order.salesChannel: missing"},
		{"channelName", func(o *Order) { o.SalesChannel.ChannelName = "" }, "order.salesChannel.channelName: missing"},
		{"items", func(o *Order) { o.OrderItems = nil }, "order.orderItems: missing"},
		{"product", func(o *Order) { o.OrderItems[1].Product = nil }, "order.orderItems[1].product: missing"},
		{"itemId", func(o *Order) { o.OrderItems[1].OrderItemID = "" }, "order.orderItems[1].orderItemId: missing"},
		{"quantity", func(o *Order) { o.OrderItems[0].QuantityOrdered = nil }, "order.orderItems[0].quantityOrdered: missing"},
		{"negative quantity", func(o *Order) { o.OrderItems[0].QuantityOrdered = intp(-1) }, "order.orderItems[0].quantityOrdered: negative"},
		{"grand total", func(o *Order) { o.Proceeds.GrandTotal.Amount = Decimal(secret) },
			"order.proceeds.grandTotal.amount: not a decimal with at most 2 decimal places"},
		{"unit price", func(o *Order) { o.OrderItems[0].Product.Price.UnitPrice.Amount = "1.999" },
			"order.orderItems[0].product.price.unitPrice.amount: not a decimal with at most 2 decimal places"},
		{"currency", func(o *Order) { o.Proceeds.GrandTotal.CurrencyCode = "" }, "order.proceeds.grandTotal.currencyCode: missing"},
		{"fulfillmentStatus", func(o *Order) { o.Fulfillment = &OrderFulfillment{} }, "order.fulfillment.fulfillmentStatus: missing"},
		{"package", func(o *Order) { o.Packages = []OrderPackage{{PackageReferenceID: "1"}, {}} }, "order.packages[1].packageReferenceId: missing"},
		{"first problem wins", func(o *Order) { o.OrderID = ""; o.OrderItems = nil }, "order.orderId: missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := validOrder()
			c.mutate(o)
			err := o.Validate()
			require.Error(t, err)
			assert.Equal(t, c.want, err.Error())
			assert.NotContains(t, err.Error(), secret)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
		})
	}
	var nilOrder *Order
	assert.EqualError(t, nilOrder.Validate(), "order: missing")
}

func TestDecodeErrorsNameThePathNotTheValue(t *testing.T) {
	cases := []struct {
		body string
		want string
	}{
		{`{"order":{"orderId":"1","createdTime":"` + secret + `"}}`, "order.createdTime: not an RFC 3339 date-time"},
		{`{"order":{"orderId":"1","createdTime":12}}`, "order.createdTime: not an RFC 3339 date-time"},
		{`{"order":{"orderItems":[{"quantityOrdered":"` + secret + `"}]}}`, "order.orderItems.quantityOrdered: expected int, found string"},
		{`{"order":{"orderItems":[{"quantityOrdered":1.5}]}}`, "order.orderItems.quantityOrdered: expected int, found number"},
		{`{"order":{"buyer":{"buyerName":["` + secret + `"]}}}`, "order.buyer.buyerName: expected string, found array"},
		{`{"order":{"buyer":{"buyerName":"` + secret + `"`, "invalid JSON at byte offset 43"},
		{`{"order":{"buyer":{"buyerName":"x"}}} ` + secret, "invalid JSON at byte offset 39"},
		{secret, "invalid JSON at byte offset 1"},
	}
	for _, c := range cases {
		var r GetOrderResponse
		err := json.Unmarshal([]byte(c.body), &r)
		require.Error(t, err, c.body)
		got := describeDecodeError(err)
		assert.Equal(t, c.want, got, c.body)
		assert.NotContains(t, got, secret)
	}
}

func TestTimeJSON(t *testing.T) {
	var r DateTimeRange
	require.NoError(t, json.Unmarshal([]byte(`{"earliestDateTime":"2024-12-26T00:00:00Z","latestDateTime":"2024-12-27T23:59:59.5+01:00"}`), &r))
	assert.Equal(t, time.Date(2024, 12, 26, 0, 0, 0, 0, time.UTC), r.EarliestDateTime.UTC())
	assert.True(t, r.LatestDateTime.Equal(time.Date(2024, 12, 27, 22, 59, 59, 5e8, time.UTC)))
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"earliestDateTime":"2024-12-26T00:00:00Z","latestDateTime":"2024-12-27T22:59:59.5Z"}`, string(b))
	b, err = json.Marshal(DateTimeRange{})
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(b))
	require.NoError(t, json.Unmarshal([]byte(`{"earliestDateTime":null}`), &r))
	assert.True(t, r.EarliestDateTime.IsZero())
}

func TestHelpers(t *testing.T) {
	o := validOrder()
	_, ok := o.DeliveredAt()
	assert.False(t, ok, "no packages")
	assert.False(t, o.Cancelled())
	assert.False(t, o.IsBusiness())
	_, ok = o.LatestDeliveryDate()
	assert.False(t, ok)

	latest := time.Date(2026, 3, 4, 23, 59, 59, 0, time.UTC)
	o.Fulfillment = &OrderFulfillment{FulfillmentStatus: StatusShipped, DeliverByWindow: &DateTimeRange{LatestDateTime: NewTime(latest)}}
	got, ok := o.LatestDeliveryDate()
	assert.True(t, ok)
	assert.Equal(t, latest, got)

	o.Packages = []OrderPackage{
		{PackageReferenceID: "1", PackageStatus: &PackageStatus{Status: PackageDelivered}},
		{PackageReferenceID: "2", PackageStatus: &PackageStatus{Status: PackageInTransit}},
	}
	_, ok = o.DeliveredAt()
	assert.False(t, ok, "one package still in transit")
	o.Packages[1].PackageStatus.Status = PackageCancelled
	at, ok := o.DeliveredAt()
	assert.True(t, ok, "cancelled packages are ignored")
	assert.Equal(t, o.LastUpdatedTime.Time, at)
	o.Packages[1].PackageStatus = nil
	_, ok = o.DeliveredAt()
	assert.False(t, ok, "a package without status is not delivered")
	o.Packages = o.Packages[:1]

	o.Fulfillment.FulfillmentStatus = StatusCancelled
	assert.True(t, o.Cancelled())
	_, ok = o.DeliveredAt()
	assert.False(t, ok, "a cancelled order is not delivered")

	o.Programs = []string{"PRIME", ProgramAmazonBusiness}
	assert.True(t, o.IsBusiness())
	o.Programs = nil
	o.Tax = &OrderTax{TaxRegistrations: []OrderTaxRegistration{{EntityType: EntityMerchant, TaxRegistrationType: TaxRegistrationBusiness}}}
	assert.False(t, o.IsBusiness(), "the merchant's registration does not make a business order")
	o.Tax.TaxRegistrations = append(o.Tax.TaxRegistrations, OrderTaxRegistration{EntityType: EntityBuyer, TaxRegistrationType: TaxRegistrationBusiness})
	assert.True(t, o.IsBusiness())

	var nilOrder *Order
	assert.False(t, nilOrder.Cancelled())
	assert.False(t, nilOrder.IsBusiness())
}

func TestPIITypesPrintRedacted(t *testing.T) {
	o := validOrder()
	o.Recipient = &Recipient{DeliveryAddress: &CustomerAddress{Name: secret, Phone: secret, ExtendedFields: &AddressExtendedFields{StreetName: secret}}}
	o.OrderItems[0].Fulfillment = &ItemFulfillment{Packing: &ItemPacking{GiftOption: &GiftOption{GiftMessage: secret}}}
	o.Tax = &OrderTax{TaxRegistrations: []OrderTaxRegistration{{LegalName: secret, TaxRegistrationNumber: secret}}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{*o.Buyer, o.Buyer, *o.Recipient, o.Recipient.DeliveryAddress, o.OrderItems[0].Fulfillment.Packing,
			o.Tax, o.Tax.TaxRegistrations[0], *o, o, o.OrderItems, GetOrderResponse{Order: o},
			SearchOrdersResponse{Orders: []Order{*o}}, &SearchOrdersResponse{Orders: []Order{*o}}} {
			s := fmt.Sprintf(verb, v)
			assert.NotContains(t, s, secret, "%s of %T", verb, v)
		}
	}
	assert.Equal(t, "spapi.Buyer[redacted]", fmt.Sprint(o.Buyer))
	assert.Equal(t, "spapi.Order{orderId:205-1234567-7654321 createdTime:2026-03-01T10:00:00Z lastUpdatedTime:2026-03-01T11:00:00Z status: items:2 [PII redacted]}", fmt.Sprint(o))
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Operation: OpGetOrder, StatusCode: 400, RequestID: "abc", Code: "InvalidInput", Message: "Invalid Input"}
	assert.Equal(t, "spapi getOrder: HTTP 400 InvalidInput (request id abc): Invalid Input", e.Error())
	assert.False(t, e.Retryable())
	assert.True(t, (&Error{StatusCode: 429}).Retryable())
	assert.True(t, (&Error{StatusCode: 503}).Retryable())
	assert.Equal(t, "spapi getOrder: HTTP 500", (&Error{Operation: OpGetOrder, StatusCode: 500}).Error())

	long := capMessage(string(make([]byte, 1000)) + "x")
	assert.LessOrEqual(t, len(long), maxMessageLen)
	assert.Equal(t, "a b", capMessage("a\nb"))

	r := &ResponseError{Operation: OpGetOrder, RequestID: "r1", Problem: "order.orderItems: missing"}
	assert.Equal(t, "spapi getOrder: unusable response (request id r1): order.orderItems: missing", r.Error())
	assert.False(t, IsRetryable(r))
	assert.False(t, IsRetryable(nil))
	assert.True(t, IsRetryable(fmt.Errorf("wrapped: %w", &Error{StatusCode: 500})))
	assert.True(t, IsRetryable(&TransportError{Operation: OpGetOrder, Err: fmt.Errorf("connection reset")}))
}

func TestRetryAfterAndBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	assert.Zero(t, retryAfter(h, now))
	h.Set("Retry-After", "3")
	assert.Equal(t, 3*time.Second, retryAfter(h, now))
	h.Set("Retry-After", now.Add(10*time.Second).Format(http.TimeFormat))
	assert.Equal(t, 10*time.Second, retryAfter(h, now))
	h.Set("Retry-After", "soon")
	assert.Zero(t, retryAfter(h, now))

	c := &Client{baseDelay: time.Second, maxDelay: 30 * time.Second}
	for attempt, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second} {
		for range 20 {
			d := c.backoff(attempt)
			assert.GreaterOrEqual(t, d, max/2, "attempt %d", attempt)
			assert.LessOrEqual(t, d, max, "attempt %d", attempt)
		}
	}
}

func TestQueryEncoding(t *testing.T) {
	p := SearchOrdersParams{
		LastUpdatedAfter:  time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("BST", 3600)),
		MarketplaceIDs:    []string{MarketplaceUK, "A13V1IB3VIYZZH"},
		IncludedData:      []string{IncludeBuyer, IncludeRecipient},
		MaxResultsPerPage: 50,
		PaginationToken:   "a+b/c=",
	}
	q, err := p.query()
	require.NoError(t, err)
	assert.Equal(t, "lastUpdatedAfter=2026-03-01T09%3A00%3A00Z&marketplaceIds=A1F83G8C2ARO7P,A13V1IB3VIYZZH"+
		"&includedData=BUYER,RECIPIENT&maxResultsPerPage=50&paginationToken=a%2Bb%2Fc%3D", q)

	bad := []SearchOrdersParams{
		{MarketplaceIDs: []string{MarketplaceUK}},
		{CreatedAfter: time.Now(), LastUpdatedAfter: time.Now(), MarketplaceIDs: []string{MarketplaceUK}},
		{CreatedAfter: time.Now(), LastUpdatedBefore: time.Now(), MarketplaceIDs: []string{MarketplaceUK}},
		{LastUpdatedAfter: time.Now()},
		{LastUpdatedAfter: time.Now(), MarketplaceIDs: []string{MarketplaceUK}, MaxResultsPerPage: 101},
		{LastUpdatedAfter: time.Now(), MarketplaceIDs: []string{MarketplaceUK}, IncludedData: []string{"A,B"}},
	}
	for i, b := range bad {
		_, err := b.query()
		assert.ErrorIs(t, err, ErrInvalidParams, "case %d", i)
		assert.False(t, IsRetryable(err))
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Endpoint: "not a url"}, "Config.Endpoint"},
		{Config{Endpoint: "ftp://example.com"}, "Config.Endpoint"},
		{Config{Endpoint: "https://"}, "Config.Endpoint"},
		{Config{Endpoint: "https://user:pw@example.com"}, "Config.Endpoint"},
		{Config{ClientID: "id"}, "Config.RefreshToken"},
		{Config{RefreshToken: "rt"}, "Config.ClientID"},
		{Config{ClientID: "id", RefreshToken: "rt"}, "Config.ClientSecret"},
		{Config{ClientID: "id", RefreshToken: "rt", ClientSecret: "s", TokenURL: "::"}, "Config.TokenURL"},
		{Config{Limits: map[string]Limit{"getOrders": {1, 1}}}, `Config.Limits["getOrders"]`},
		{Config{Limits: map[string]Limit{OpGetOrder: {0, 1}}}, `Config.Limits["getOrder"].Rate`},
		{Config{Limits: map[string]Limit{OpGetOrder: {1, 0}}}, `Config.Limits["getOrder"].Burst`},
		{Config{MaxAttempts: -1}, "Config.MaxAttempts"},
		{Config{RetryBaseDelay: time.Second, RetryMaxDelay: time.Millisecond}, "Config.RetryMaxDelay"},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		require.Error(t, err, "%+v", c.want)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "pw")
	}
	c, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, DefaultEndpoint, c.endpoint)
	assert.Nil(t, c.tokens, "no credentials: no token")
	l, ok := c.Limit(OpSearchOrders)
	assert.True(t, ok)
	assert.Equal(t, Limit{Rate: 0.0056, Burst: 20}, l)
	l, _ = c.Limit(OpGetOrder)
	assert.Equal(t, Limit{Rate: 0.5, Burst: 30}, l)
	c, err = New(Config{ClientID: "id", RefreshToken: "rt", ClientSecret: "s", Endpoint: "http://127.0.0.1:1/prefix/"})
	require.NoError(t, err)
	assert.Equal(t, DefaultTokenURL, c.tokens.url)
	assert.Equal(t, "http://127.0.0.1:1/prefix", c.endpoint)
}
