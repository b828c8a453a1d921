package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Credit notes (issue 14): a refund after the invoice gets a credit note.
const (
	// SignalRefund reports a refund of the order: {"refundId", "reason", "by",
	// and "full": true or "lines"}.
	SignalRefund = "refund"
	// UpdateRefund is the same request for a caller who wants an answer: the
	// order's status once the credit note is issued, or why it was refused.
	UpdateRefund = SignalRefund
)

// Refund reasons (refund's "reason"), printed on the credit note.
const (
	RefundCustomerReturn  = "customer-return"
	RefundDamaged         = "damaged"
	RefundNotAsDescribed  = "not-as-described"
	RefundNotDelivered    = "not-delivered"
	RefundLateDelivery    = "late-delivery"
	RefundPriceAdjustment = "price-adjustment"
	RefundGoodwill        = "goodwill"
	RefundAToZClaim       = "a-to-z-claim"
	RefundChargeback      = "chargeback"
	// RefundItemCancelled: OrderSync saw an item cancelled on Amazon after the
	// invoice, the rest of the order going on.
	RefundItemCancelled = "item-cancelled"
)

// RefundReasons are the accepted refund codes.
var RefundReasons = []string{RefundCustomerReturn, RefundDamaged, RefundNotAsDescribed, RefundNotDelivered,
	RefundLateDelivery, RefundPriceAdjustment, RefundGoodwill, RefundAToZClaim, RefundChargeback, RefundItemCancelled}

// Limits of a refund signal.
const (
	MaxRefundLines    = 100
	maxRefundQuantity = 1_000_000
)

var (
	refundIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	amountPattern   = regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{2}$`)
)

// RefundLine credits one order item: a number of units, or a VAT-inclusive
// amount ("12.50", in the order's currency) of it.
type RefundLine struct {
	OrderItemID string `json:"orderItemId"`
	Quantity    int64  `json:"quantity,omitempty"`
	Amount      string `json:"amount,omitempty"`
}

// AmountMinor is Amount in minor units (0 when absent).
func (l RefundLine) AmountMinor() int64 {
	if l.Amount == "" {
		return 0
	}
	whole, frac, _ := strings.Cut(l.Amount, ".")
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f
}

// RefundSignal reports a refund: all that is left of the invoice ("full") or
// some lines. Its refundId makes a repeat harmless: one credit note per refund.
type RefundSignal struct {
	RefundID string       `json:"refundId"`
	Reason   string       `json:"reason"` // one of RefundReasons
	By       string       `json:"by"`     // an operator identifier or system name
	Full     bool         `json:"full,omitempty"`
	Lines    []RefundLine `json:"lines,omitempty"`
	problem  error
	strict   error // see HoldSignal
}

func (s *RefundSignal) UnmarshalJSON(b []byte) error {
	type line struct {
		OrderItemID string `json:"orderItemId"`
		Quantity    *int64 `json:"quantity"`
		Amount      string `json:"amount"`
	}
	type plain struct {
		RefundID string `json:"refundId"`
		Reason   string `json:"reason"`
		By       string `json:"by"`
		Full     *bool  `json:"full"`
		Lines    []line `json:"lines"`
	}
	var v plain
	s.problem = decodeStrict(b, &v)
	if s.problem != nil {
		return nil
	}
	s.strict = exactFields(b, &v)
	var raw struct {
		Lines []json.RawMessage `json:"lines"`
	}
	_ = json.Unmarshal(b, &raw)
	for i, l := range raw.Lines {
		if s.strict != nil {
			break
		}
		if err := exactFields(l, &line{}); err != nil {
			s.strict = fmt.Errorf("lines[%d]: %w", i, err)
		}
	}
	s.RefundID, s.Reason, s.By = v.RefundID, v.Reason, v.By
	if v.Full != nil {
		s.Full = *v.Full
		if !s.Full {
			s.problem = errors.New(`field "full" must be true; leave it out when giving lines`)
		}
	}
	s.Lines = nil
	for i, l := range v.Lines {
		q := int64(0)
		if l.Quantity != nil {
			q = *l.Quantity
			if q <= 0 && s.problem == nil {
				s.problem = fmt.Errorf(`lines[%d]: field "quantity" must be a whole number above zero`, i)
			}
		}
		s.Lines = append(s.Lines, RefundLine{OrderItemID: l.OrderItemID, Quantity: q, Amount: l.Amount})
	}
	return nil
}

// Validate names the first thing wrong with the signal.
func (s RefundSignal) Validate() error {
	if err := firstProblem(s.problem, "refundId", s.RefundID, "reason", s.Reason, "by", s.By); err != nil {
		return err
	}
	if !refundIDPattern.MatchString(s.RefundID) {
		return errors.New(`field "refundId" must be 1 to 64 letters, digits, '.', '_', ':' or '-'`)
	}
	switch {
	case s.Full && len(s.Lines) > 0:
		return errors.New(`give "full": true or "lines", not both`)
	case !s.Full && len(s.Lines) == 0:
		return errors.New(`field "lines" is required unless "full" is true`)
	case len(s.Lines) > MaxRefundLines:
		return fmt.Errorf(`field "lines" has more than %d lines`, MaxRefundLines)
	}
	for i, l := range s.Lines {
		switch {
		case strings.TrimSpace(l.OrderItemID) == "":
			return fmt.Errorf(`lines[%d]: field "orderItemId" is required`, i)
		case len(l.OrderItemID) > MaxCodeLength:
			return fmt.Errorf(`lines[%d]: field "orderItemId" is longer than %d characters`, i, MaxCodeLength)
		case (l.Quantity > 0) == (l.Amount != ""):
			return fmt.Errorf(`lines[%d]: give "quantity" or "amount", exactly one`, i)
		case l.Quantity > maxRefundQuantity:
			return fmt.Errorf(`lines[%d]: field "quantity" is above %d`, i, maxRefundQuantity)
		case l.Amount != "" && (!amountPattern.MatchString(l.Amount) || l.AmountMinor() == 0):
			return fmt.Errorf(`lines[%d]: field "amount" must be a VAT-inclusive amount above zero with two decimals, e.g. "12.50"`, i)
		}
	}
	return nil
}

// CheckCodes: the reason is one of RefundReasons and "by" an identifier.
func (s RefundSignal) CheckCodes() error {
	return errors.Join(s.strict, checkCode("reason", s.Reason, RefundReasons), checkBy(s.By))
}
