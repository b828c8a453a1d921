package spapi

import (
	"strings"
	"testing"
)

func TestDecodeOrderRejectsWithoutValues(t *testing.T) {
	const secret = "Jane Doe SECRET"
	good := `{"orderId":"202-1234567-1234567","createdTime":"2026-01-02T03:04:05Z","lastUpdatedTime":"2026-01-02T03:04:05Z",
		"salesChannel":{"channelName":"AMAZON"},"orderItems":[{"orderItemId":"1","quantityOrdered":1,"product":{}}]}`
	if _, r := decodeOrder(0, []byte(good)); r != nil {
		t.Fatalf("a good order was rejected: %+v", r)
	}
	for _, tc := range []struct {
		raw, id, problem string
	}{
		{`{"orderId":"202-1234567-1234567","createdTime":"` + secret + `"}`, "202-1234567-1234567", "order.createdTime: not an RFC 3339 date-time"},
		{`{"orderId":12345,"buyer":{"buyerName":"` + secret + `"}}`, "", "order.orderId: expected string, found number"},
		{`{"orderId":"` + secret + `","orderItems":[]}`, "", "order.createdTime: missing"},
		{`"` + secret + `"`, "", "order: expected spapi.Order, found string"},
		{`{"orderId":"202-1234567-1234567","createdTime":"2026-01-02T03:04:05Z","lastUpdatedTime":"2026-01-02T03:04:05Z",
		  "salesChannel":{"channelName":"AMAZON"},"orderItems":[{"orderItemId":"1","quantityOrdered":"` + secret + `","product":{}}]}`,
			"202-1234567-1234567", "order.orderItems.quantityOrdered: expected int, found string"},
	} {
		_, r := decodeOrder(3, []byte(tc.raw))
		if r == nil {
			t.Errorf("%s: not rejected", tc.raw)
			continue
		}
		if r.OrderID != tc.id || r.Problem != tc.problem || r.Index != 3 || len(r.Digest) != 32 {
			t.Errorf("%s: got %+v, want id %q problem %q", tc.raw, *r, tc.id, tc.problem)
		}
		if strings.Contains(r.Problem, "SECRET") || strings.Contains(r.OrderID, "SECRET") {
			t.Errorf("a value leaked: %+v", *r)
		}
	}
}
