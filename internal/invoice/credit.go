package invoice

import "strconv"

// Credited is how much of one invoiced line earlier credit notes reversed.
type Credited struct {
	Quantity   int64
	GrossMinor int64
	VATMinor   int64
}

// CreditLine computes the reversal of part of an invoiced line: quantity units
// at the invoiced unit price, or, when quantity is 0, a VAT-inclusive amount
// (a price adjustment, printed as one unit). already is what earlier credit
// notes took from the line.
//
// VAT is rounded half up like the invoice's, except that the credit which
// exhausts the line reverses exactly the VAT still uncredited, and no credit
// ever reverses more VAT than is left: however a line is split across credit
// notes, their VAT adds up to the invoice's, never more. Errors are
// *FieldError values naming field (e.g. "lines[1]") and never a value.
func CreditLine(field string, invoiced Line, already Credited, quantity, grossMinor int64) (Line, error) {
	leftGross := invoiced.GrossMinor - already.GrossMinor
	leftVAT := invoiced.VATMinor - already.VATMinor
	leftQty := invoiced.Quantity - already.Quantity
	out := Line{Description: invoiced.Description, SKU: invoiced.SKU, VATRateBasisPoints: invoiced.VATRateBasisPoints}
	switch {
	case quantity < 0:
		return Line{}, fieldErr(field+".quantity", "must not be negative")
	case quantity > 0 && grossMinor != 0:
		return Line{}, fieldErr(field, "give a quantity or an amount, not both")
	case quantity > 0:
		if quantity > leftQty {
			return Line{}, fieldErr(field+".quantity", "is more than the units invoiced and not yet credited ("+strconv.FormatInt(leftQty, 10)+" left)")
		}
		out.Quantity = quantity
		out.GrossMinor = invoiced.GrossMinor / invoiced.Quantity * quantity
		if quantity == leftQty {
			// The last units take what is left, so a line split into credits
			// reverses exactly its invoiced amount.
			out.GrossMinor = leftGross
		}
		out.UnitNetMinor = invoiced.UnitNetMinor
	case grossMinor <= 0:
		return Line{}, fieldErr(field, "needs a quantity or an amount above zero")
	default:
		out.Quantity = 1
		out.GrossMinor = grossMinor
	}
	if out.GrossMinor > leftGross {
		return Line{}, fieldErr(field, "credits more than is left of the invoiced amount ("+FormatMoney(leftGross, "")+" left)")
	}
	rate := invoiced.VATRateBasisPoints
	vat := divRoundHalfUp(out.GrossMinor*rate, maxRateBasisPoints+rate)
	if out.GrossMinor == leftGross || vat > leftVAT {
		vat = leftVAT
	}
	out.VATMinor = vat
	out.NetMinor = out.GrossMinor - vat
	if quantity == 0 {
		out.UnitNetMinor = out.NetMinor
	}
	return out, nil
}
