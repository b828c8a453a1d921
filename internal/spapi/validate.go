package spapi

import (
	"strconv"
)

// ValidationError names the JSON path of the first problem found in a
// response and what is wrong with it. It never contains a field's value.
type ValidationError struct {
	// Path is a JSON path such as "order.orderItems[1].product".
	Path string
	// Problem is a fixed description such as "missing" or "not a decimal with at most 2 places".
	Problem string
}

func (e *ValidationError) Error() string { return e.Path + ": " + e.Problem }

const (
	problemMissing    = "missing"
	problemNegative   = "negative"
	problemNotDecimal = "not a decimal with at most 2 decimal places"
)

// Validate checks what the model requires of an order and what the system
// relies on: orderId, createdTime, lastUpdatedTime, salesChannel.channelName,
// at least one order item, each with orderItemId, quantityOrdered (not
// negative) and product; fulfillment.fulfillmentStatus when fulfillment is
// present; packageReferenceId and packageStatus.status of each package; and
// every Money present has a currency and an amount that Decimal.Minor accepts.
// The error is a *ValidationError naming the JSON path of the first problem
// (e.g. "order.orderItems[1].product: missing"); it never includes a value.
func (o *Order) Validate() error {
	return o.validate("order")
}

func (o *Order) validate(root string) error {
	if o == nil {
		return &ValidationError{root, problemMissing}
	}
	v := validator{}
	v.order(root, o)
	if v.err != nil {
		return v.err
	}
	return nil
}

type validator struct {
	err *ValidationError
}

func (v *validator) fail(path, problem string) {
	if v.err == nil {
		v.err = &ValidationError{Path: path, Problem: problem}
	}
}

func (v *validator) required(path string, ok bool) {
	if !ok {
		v.fail(path, problemMissing)
	}
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (v *validator) order(p string, o *Order) {
	v.required(p+".orderId", o.OrderID != "")
	v.required(p+".createdTime", !o.CreatedTime.IsZero())
	v.required(p+".lastUpdatedTime", !o.LastUpdatedTime.IsZero())
	v.required(p+".salesChannel", o.SalesChannel != nil)
	if o.SalesChannel != nil {
		v.required(p+".salesChannel.channelName", o.SalesChannel.ChannelName != "")
	}
	if o.Proceeds != nil {
		v.money(p+".proceeds.grandTotal", o.Proceeds.GrandTotal)
		for i, b := range o.Proceeds.Breakdowns {
			bp := idx(p+".proceeds.breakdowns", i)
			v.required(bp+".type", b.Type != "")
			v.required(bp+".subtotal", b.Subtotal != nil)
			v.money(bp+".subtotal", b.Subtotal)
		}
	}
	if o.Fulfillment != nil {
		v.required(p+".fulfillment.fulfillmentStatus", o.Fulfillment.FulfillmentStatus != "")
	}
	v.required(p+".orderItems", len(o.OrderItems) > 0)
	for i := range o.OrderItems {
		v.item(idx(p+".orderItems", i), &o.OrderItems[i])
	}
	for i, pkg := range o.Packages {
		pp := idx(p+".packages", i)
		v.required(pp+".packageReferenceId", pkg.PackageReferenceID != "")
		if pkg.PackageStatus != nil {
			v.required(pp+".packageStatus.status", pkg.PackageStatus.Status != "")
		}
	}
}

func (v *validator) item(p string, it *OrderItem) {
	v.required(p+".orderItemId", it.OrderItemID != "")
	v.required(p+".quantityOrdered", it.QuantityOrdered != nil)
	if it.QuantityOrdered != nil && *it.QuantityOrdered < 0 {
		v.fail(p+".quantityOrdered", problemNegative)
	}
	v.required(p+".product", it.Product != nil)
	if it.Product != nil && it.Product.Price != nil {
		v.money(p+".product.price.unitPrice", it.Product.Price.UnitPrice)
	}
	if it.Proceeds != nil {
		v.money(p+".proceeds.proceedsTotal", it.Proceeds.ProceedsTotal)
		for i, b := range it.Proceeds.Breakdowns {
			bp := idx(p+".proceeds.breakdowns", i)
			v.required(bp+".type", b.Type != "")
			v.required(bp+".subtotal", b.Subtotal != nil)
			v.money(bp+".subtotal", b.Subtotal)
			for j, d := range b.DetailedBreakdowns {
				v.money(idx(bp+".detailedBreakdowns", j)+".value", d.Value)
			}
		}
	}
}

// money checks a Money that is present; absence is checked by the caller
// where the model requires it.
func (v *validator) money(p string, m *Money) {
	if m == nil {
		return
	}
	v.required(p+".currencyCode", m.CurrencyCode != "")
	v.required(p+".amount", m.Amount != "")
	if m.Amount != "" {
		if _, err := m.Amount.Minor(); err != nil {
			v.fail(p+".amount", problemNotDecimal)
		}
	}
}
