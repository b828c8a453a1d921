// Package invoice computes and renders UK VAT invoices (VAT Regulations 1995
// reg. 14, HMRC VAT Notice 700 section 16) for one Amazon order of a UK
// seller.
//
// The package is pure: it performs no I/O besides building the PDF in memory.
// All money is handled as integer minor units (pence for GBP); no floating
// point arithmetic is used for amounts.
//
// Typical use:
//
//	lines, totals, err := invoice.Compute(inputs)
//	kind := invoice.Choose(totals.GrossMinor, isBusiness, 0, false)
//	doc := &invoice.Document{ /* number, dates, parties ... */ }
//	doc.SetLines(lines, totals)
//	pdf, err := invoice.Render(doc)
//
// Error messages never contain free text taken from the invoice (descriptions,
// names, addresses), so they are safe to log.
package invoice

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of VAT invoice: a full invoice or a simplified invoice.
type Kind string

const (
	// Full is a full VAT invoice (VAT Regulations 1995 reg. 14(1)). It carries
	// the customer's name and address.
	Full Kind = "full"
	// Simplified is a simplified (less detailed) VAT invoice, allowed for
	// supplies of up to £250 including VAT (reg. 16). It carries no customer
	// name or address.
	Simplified Kind = "simplified"
)

// DefaultSimplifiedLimitMinor is the largest VAT-inclusive total, in pence,
// for which a simplified invoice may be issued: £250.00. It is also the legal
// ceiling: Choose never uses a higher limit.
const DefaultSimplifiedLimitMinor int64 = 25000

// maxRateBasisPoints is the highest accepted VAT rate (100%).
const maxRateBasisPoints = 10000

// Party is a seller or a customer as printed on the invoice.
type Party struct {
	// Name is the legal or trading name of the party (required).
	Name string
	// Address holds the postal address, one printed line per element,
	// including the postcode and the country (at least one line required).
	Address []string
	// VATNumber is the VAT registration number, e.g. "GB123456789"
	// (required for the seller, optional for customers). A number without a
	// two-letter country prefix is printed with "GB" in front of it.
	VATNumber string
}

// LineInput is one order item as received from the marketplace, with a
// VAT-inclusive price.
type LineInput struct {
	// Description is the goods or services description (required).
	Description string
	// SKU is the seller's stock keeping unit (optional, printed under the
	// description).
	SKU string
	// Quantity is the number of units (must be > 0).
	Quantity int64
	// UnitGrossMinor is the VAT-inclusive price of one unit in minor units
	// (pence); must be >= 0.
	UnitGrossMinor int64
	// VATRateBasisPoints is the VAT rate in basis points: 2000 = 20%,
	// 500 = 5%, 0 = zero rate. Must be within 0..10000.
	VATRateBasisPoints int64
}

// Line is a computed invoice line. NetMinor + VATMinor == GrossMinor always.
type Line struct {
	// Description is the goods or services description.
	Description string
	// SKU is the seller's stock keeping unit (may be empty).
	SKU string
	// Quantity is the number of units.
	Quantity int64
	// UnitNetMinor is the unit price excluding VAT in minor units, rounded
	// half up from the VAT-inclusive unit price. It is informative: the line
	// amounts are computed from the VAT-inclusive line total.
	UnitNetMinor int64
	// VATRateBasisPoints is the VAT rate in basis points (2000 = 20%).
	VATRateBasisPoints int64
	// NetMinor is the line amount excluding VAT (GrossMinor - VATMinor).
	NetMinor int64
	// VATMinor is the VAT on the line, rounded half up.
	VATMinor int64
	// GrossMinor is the line amount including VAT (unit gross × quantity).
	GrossMinor int64
}

// RateTotal is the sum of the lines charged at one VAT rate.
type RateTotal struct {
	// RateBasisPoints is the VAT rate in basis points (2000 = 20%).
	RateBasisPoints int64
	// NetMinor is the total excluding VAT of the lines at this rate.
	NetMinor int64
	// VATMinor is the total VAT of the lines at this rate.
	VATMinor int64
}

// Totals are the invoice totals computed from its lines.
type Totals struct {
	// NetMinor is the total excluding VAT.
	NetMinor int64
	// VATMinor is the total VAT.
	VATMinor int64
	// GrossMinor is the total including VAT (NetMinor + VATMinor).
	GrossMinor int64
	// ByRate is the per-rate VAT breakdown, highest rate first.
	ByRate []RateTotal
}

// Document is a complete VAT invoice ready to be validated and rendered.
type Document struct {
	// Number is the unique, sequential invoice number (required).
	Number string
	// Kind selects a full or a simplified invoice (required).
	Kind Kind
	// OrderID is the Amazon order id (optional for the law, printed when set).
	OrderID string
	// IssueDate is the date of issue (required). It is also used as the PDF
	// creation and modification date so that rendering is deterministic.
	IssueDate time.Time
	// TaxPoint is the time of supply (required).
	TaxPoint time.Time
	// Currency is the ISO 4217 currency code of all amounts, normally "GBP"
	// (required).
	Currency string
	// Seller is the supplier: name, address and VAT number are required.
	Seller Party
	// Customer is the buyer: required with name and address for Full
	// invoices, must be nil for Simplified invoices.
	Customer *Party
	// Lines are the invoice lines (at least one), usually from Compute.
	Lines []Line
	// TotalNetMinor is the total excluding VAT; must equal the sum of lines.
	TotalNetMinor int64
	// TotalVATMinor is the total VAT; must equal the sum of lines.
	TotalVATMinor int64
	// TotalGrossMinor is the total including VAT; must equal the sum of lines.
	TotalGrossMinor int64
	// VATBreakdown is the per-rate summary (rate, net, VAT); must equal the
	// breakdown of the lines (see Summarise), in any order.
	VATBreakdown []RateTotal
	// Credit, when set, makes the document a credit note against an issued
	// invoice: Number is then the credit note's own number, the lines and
	// totals are what is credited (given as positive amounts, printed as
	// reversals), and Kind, Customer and TaxPoint are those of the invoice.
	Credit *Credit
}

// Credit is what a credit note must say about the invoice it corrects (HMRC VAT
// Notice 700 section 18.2: the original invoice's number and date, and why).
type Credit struct {
	// InvoiceNumber is the number of the invoice credited (required).
	InvoiceNumber string
	// InvoiceDate is the original invoice's date of issue (required).
	InvoiceDate time.Time
	// Reason is why the amounts are credited, as printed (e.g. "Order
	// cancelled", "Refund: damaged in transit"); required.
	Reason string
}

// FieldError reports an invalid or missing field. Field names the field
// (for example "Seller.VATNumber" or "lines[2].Quantity"); the message never
// contains the field's value.
type FieldError struct {
	// Field is the path of the offending field.
	Field string
	// Reason is a fixed, value-free explanation.
	Reason string
}

func (e *FieldError) Error() string {
	return "invoice: " + e.Field + ": " + e.Reason
}

func fieldErr(field, reason string) error {
	return &FieldError{Field: field, Reason: reason}
}

// ErrNoLines is returned by Compute when given no lines.
var ErrNoLines = errors.New("invoice: lines: at least one line is required")

// Compute turns VAT-inclusive order lines into invoice lines and totals.
//
// Per line: gross = unit gross × quantity; VAT = round-half-up(gross × rate /
// (10000 + rate)); net = gross − VAT. The unit net price shown is
// round-half-up(unit gross × 10000 / (10000 + rate)). Errors are *FieldError
// values naming the line index and field.
func Compute(lines []LineInput) ([]Line, Totals, error) {
	if len(lines) == 0 {
		return nil, Totals{}, ErrNoLines
	}
	out := make([]Line, 0, len(lines))
	for i, in := range lines {
		l, err := computeLine(i, in)
		if err != nil {
			return nil, Totals{}, err
		}
		out = append(out, l)
	}
	t, err := sum(out)
	if err != nil {
		return nil, Totals{}, err
	}
	return out, t, nil
}

func computeLine(i int, in LineInput) (Line, error) {
	f := func(name string) string { return "lines[" + strconv.Itoa(i) + "]." + name }
	switch {
	case strings.TrimSpace(in.Description) == "":
		return Line{}, fieldErr(f("Description"), "must not be empty")
	case in.Quantity <= 0:
		return Line{}, fieldErr(f("Quantity"), "must be greater than zero")
	case in.UnitGrossMinor < 0:
		return Line{}, fieldErr(f("UnitGrossMinor"), "must not be negative")
	case in.VATRateBasisPoints < 0 || in.VATRateBasisPoints > maxRateBasisPoints:
		return Line{}, fieldErr(f("VATRateBasisPoints"), "must be within 0..10000")
	}
	// gross × rate must fit in int64: gross <= MaxInt64 / 10000.
	const maxGross = math.MaxInt64 / maxRateBasisPoints
	if in.UnitGrossMinor > 0 && in.Quantity > maxGross/in.UnitGrossMinor {
		return Line{}, fieldErr(f("Quantity"), "line total too large")
	}
	gross := in.UnitGrossMinor * in.Quantity
	rate := in.VATRateBasisPoints
	den := maxRateBasisPoints + rate
	vat := divRoundHalfUp(gross*rate, den)
	return Line{
		Description:        in.Description,
		SKU:                in.SKU,
		Quantity:           in.Quantity,
		UnitNetMinor:       divRoundHalfUp(in.UnitGrossMinor*maxRateBasisPoints, den),
		VATRateBasisPoints: rate,
		NetMinor:           gross - vat,
		VATMinor:           vat,
		GrossMinor:         gross,
	}, nil
}

// divRoundHalfUp returns num/den rounded half up, for num >= 0 and den > 0.
func divRoundHalfUp(num, den int64) int64 {
	q, r := num/den, num%den
	if 2*r >= den {
		q++
	}
	return q
}

// Summarise returns the totals and per-rate breakdown of already computed
// lines (highest rate first). Sums that would overflow int64 saturate; use
// Compute to get an error instead.
func Summarise(lines []Line) Totals {
	t, _ := sum(lines)
	return t
}

func sum(lines []Line) (Totals, error) {
	var t Totals
	var overflow bool
	add := func(a *int64, b int64) {
		if (b > 0 && *a > math.MaxInt64-b) || (b < 0 && *a < math.MinInt64-b) {
			overflow = true
			if b > 0 {
				*a = math.MaxInt64
			} else {
				*a = math.MinInt64
			}
			return
		}
		*a += b
	}
	idx := map[int64]int{}
	for _, l := range lines {
		add(&t.NetMinor, l.NetMinor)
		add(&t.VATMinor, l.VATMinor)
		add(&t.GrossMinor, l.GrossMinor)
		j, ok := idx[l.VATRateBasisPoints]
		if !ok {
			j = len(t.ByRate)
			idx[l.VATRateBasisPoints] = j
			t.ByRate = append(t.ByRate, RateTotal{RateBasisPoints: l.VATRateBasisPoints})
		}
		add(&t.ByRate[j].NetMinor, l.NetMinor)
		add(&t.ByRate[j].VATMinor, l.VATMinor)
	}
	sortRates(t.ByRate)
	if overflow {
		return t, fieldErr("lines", "invoice total too large")
	}
	return t, nil
}

func sortRates(r []RateTotal) {
	sort.Slice(r, func(i, j int) bool { return r[i].RateBasisPoints > r[j].RateBasisPoints })
}

// SetLines stores lines and their totals (as returned by Compute) in d.
func (d *Document) SetLines(lines []Line, t Totals) {
	d.Lines = lines
	d.TotalNetMinor = t.NetMinor
	d.TotalVATMinor = t.VATMinor
	d.TotalGrossMinor = t.GrossMinor
	d.VATBreakdown = append([]RateTotal(nil), t.ByRate...)
}

// Choose selects the invoice kind. Business customers always get a full
// invoice, as does every order when alwaysFull is set or when the
// VAT-inclusive total is above the simplified-invoice limit.
// simplifiedLimitMinor <= 0 means DefaultSimplifiedLimitMinor (£250.00); a
// limit above £250.00 is capped at £250.00, the legal maximum. A total of
// exactly the limit is still simplified.
func Choose(totalGrossMinor int64, business bool, simplifiedLimitMinor int64, alwaysFull bool) Kind {
	if business || alwaysFull {
		return Full
	}
	if simplifiedLimitMinor <= 0 || simplifiedLimitMinor > DefaultSimplifiedLimitMinor {
		simplifiedLimitMinor = DefaultSimplifiedLimitMinor
	}
	if totalGrossMinor > simplifiedLimitMinor {
		return Full
	}
	return Simplified
}

// Validate checks that every field the law requires for d's kind is present
// and that the totals equal the sums of the lines. It returns a *FieldError
// naming the first offending field.
func (d *Document) Validate() error {
	if d == nil {
		return fieldErr("Document", "is nil")
	}
	blank := func(s string) bool { return strings.TrimSpace(s) == "" }
	if blank(d.Number) {
		return fieldErr("Number", "is missing")
	}
	if d.Kind != Full && d.Kind != Simplified {
		return fieldErr("Kind", `must be "full" or "simplified"`)
	}
	if c := d.Credit; c != nil {
		switch {
		case blank(c.InvoiceNumber):
			return fieldErr("Credit.InvoiceNumber", "is missing")
		case c.InvoiceDate.IsZero():
			return fieldErr("Credit.InvoiceDate", "is missing")
		case blank(c.Reason):
			return fieldErr("Credit.Reason", "is missing")
		}
	}
	if d.IssueDate.IsZero() {
		return fieldErr("IssueDate", "is missing")
	}
	if d.TaxPoint.IsZero() {
		return fieldErr("TaxPoint", "is missing")
	}
	if blank(d.Currency) {
		return fieldErr("Currency", "is missing")
	}
	if err := validateParty("Seller", &d.Seller); err != nil {
		return err
	}
	if blank(d.Seller.VATNumber) {
		return fieldErr("Seller.VATNumber", "is missing")
	}
	switch d.Kind {
	case Full:
		if d.Customer == nil {
			return fieldErr("Customer", "is missing (required on a full invoice)")
		}
		if err := validateParty("Customer", d.Customer); err != nil {
			return err
		}
	case Simplified:
		if d.Customer != nil {
			return fieldErr("Customer", "must be nil on a simplified invoice")
		}
	}
	if len(d.Lines) == 0 {
		return fieldErr("Lines", "is missing")
	}
	for i, l := range d.Lines {
		f := func(name string) string { return "Lines[" + strconv.Itoa(i) + "]." + name }
		switch {
		case blank(l.Description):
			return fieldErr(f("Description"), "is missing")
		case l.Quantity <= 0:
			return fieldErr(f("Quantity"), "must be greater than zero")
		case l.VATRateBasisPoints < 0 || l.VATRateBasisPoints > maxRateBasisPoints:
			return fieldErr(f("VATRateBasisPoints"), "must be within 0..10000")
		case l.NetMinor+l.VATMinor != l.GrossMinor:
			return fieldErr(f("GrossMinor"), "does not equal NetMinor + VATMinor")
		}
	}
	t, err := sum(d.Lines)
	if err != nil {
		return fieldErr("Lines", "totals too large")
	}
	if d.TotalNetMinor != t.NetMinor {
		return fieldErr("TotalNetMinor", "does not equal the sum of the lines")
	}
	if d.TotalVATMinor != t.VATMinor {
		return fieldErr("TotalVATMinor", "does not equal the sum of the lines")
	}
	if d.TotalGrossMinor != t.GrossMinor {
		return fieldErr("TotalGrossMinor", "does not equal the sum of the lines")
	}
	got := append([]RateTotal(nil), d.VATBreakdown...)
	sortRates(got)
	if len(got) != len(t.ByRate) {
		return fieldErr("VATBreakdown", "does not match the lines")
	}
	for i := range got {
		if got[i] != t.ByRate[i] {
			return fieldErr("VATBreakdown", "does not match the lines")
		}
	}
	if d.Kind == Simplified && strings.EqualFold(strings.TrimSpace(d.Currency), "GBP") &&
		d.TotalGrossMinor > DefaultSimplifiedLimitMinor {
		return fieldErr("Kind", "simplified invoice not allowed above £250.00 including VAT")
	}
	return nil
}

func validateParty(name string, p *Party) error {
	if strings.TrimSpace(p.Name) == "" {
		return fieldErr(name+".Name", "is missing")
	}
	for _, a := range p.Address {
		if strings.TrimSpace(a) != "" {
			return nil
		}
	}
	return fieldErr(name+".Address", "is missing")
}

// FormatMoney formats an amount in minor units: "£1,234.56" for GBP,
// "EUR 1,234.56" for any other currency code (two decimal places assumed),
// with a leading "-" for negative amounts.
func FormatMoney(minor int64, currency string) string {
	neg := minor < 0
	// Magnitude as uint64 so that math.MinInt64 is handled.
	u := uint64(minor)
	if neg {
		u = -u
	}
	whole, frac := u/100, u%100
	digits := strconv.FormatUint(whole, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	code := strings.ToUpper(strings.TrimSpace(currency))
	switch code {
	case "GBP":
		b.WriteString("£")
	case "":
	default:
		b.WriteString(code)
		b.WriteByte(' ')
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	fmt.Fprintf(&b, ".%02d", frac)
	return b.String()
}

// formatRate formats basis points as a percentage: 2000 -> "20%",
// 1750 -> "17.5%", 5 -> "0.05%".
func formatRate(bp int64) string {
	s := strconv.FormatInt(bp/100, 10)
	if frac := bp % 100; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", frac), "0")
	}
	return s + "%"
}

// vatNumber returns the VAT number with a "GB" prefix unless it already has
// a two-letter country prefix.
func vatNumber(s string) string {
	s = strings.ToUpper(strings.Join(strings.Fields(s), ""))
	if len(s) >= 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' {
		return s
	}
	return "GB" + s
}
