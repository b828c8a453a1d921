package invoice

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// creditFixture is a full credit of the fixture invoice's first line, one unit,
// and a price adjustment on its fourth.
func creditFixture(t testing.TB) *Document {
	t.Helper()
	inv := fixture(t)
	mug, err := CreditLine("lines[0]", inv.Lines[0], Credited{}, 1, 0)
	require.NoError(t, err)
	pen, err := CreditLine("lines[1]", inv.Lines[3], Credited{}, 0, 50)
	require.NoError(t, err)
	lines := []Line{mug, pen}
	d := *inv
	d.Number = "CRN-000007"
	d.IssueDate = time.Date(2026, time.April, 1, 10, 0, 0, 0, time.UTC)
	d.Credit = &Credit{InvoiceNumber: inv.Number, InvoiceDate: inv.IssueDate, Reason: "Refund: damaged in transit"}
	d.SetLines(lines, Summarise(lines))
	return &d
}

func TestCreditLineSplitsNeverReverseMoreVATThanInvoiced(t *testing.T) {
	// 3 x 99p at 20%: gross 297, VAT 49.5 rounds to 50. One unit alone would be
	// 16.5 -> 17, three such credits 51: the last one must take only what is left.
	lines, _, err := Compute([]LineInput{{Description: "Gel pen", Quantity: 3, UnitGrossMinor: 99, VATRateBasisPoints: 2000}})
	require.NoError(t, err)
	inv := lines[0]
	require.EqualValues(t, 50, inv.VATMinor)
	var done Credited
	for i := 0; i < 3; i++ {
		l, err := CreditLine("lines[0]", inv, done, 1, 0)
		require.NoError(t, err)
		assert.Equal(t, l.GrossMinor, l.NetMinor+l.VATMinor)
		done.Quantity += l.Quantity
		done.GrossMinor += l.GrossMinor
		done.VATMinor += l.VATMinor
	}
	assert.Equal(t, Credited{Quantity: 3, GrossMinor: 297, VATMinor: 50}, done)
	_, err = CreditLine("lines[0]", inv, done, 1, 0)
	var fe *FieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "lines[0].quantity", fe.Field)
}

func TestCreditLineAmounts(t *testing.T) {
	lines, _, err := Compute([]LineInput{{Description: "Mug", Quantity: 2, UnitGrossMinor: 1200, VATRateBasisPoints: 2000}})
	require.NoError(t, err)
	inv := lines[0] // 2400 gross, 400 VAT
	l, err := CreditLine("lines[0]", inv, Credited{}, 0, 1000)
	require.NoError(t, err)
	assert.Equal(t, Line{Description: "Mug", Quantity: 1, UnitNetMinor: 833, VATRateBasisPoints: 2000, NetMinor: 833, VATMinor: 167, GrossMinor: 1000}, l)
	_, err = CreditLine("lines[0]", inv, Credited{GrossMinor: 1000, VATMinor: 167}, 0, 1401)
	require.ErrorContains(t, err, "credits more than is left of the invoiced amount (14.00 left)")
	last, err := CreditLine("lines[0]", inv, Credited{GrossMinor: 1000, VATMinor: 167}, 0, 1400)
	require.NoError(t, err)
	assert.EqualValues(t, 233, last.VATMinor, "the last credit reverses the rest of the VAT")
	for _, bad := range []struct{ q, g int64 }{{-1, 0}, {0, 0}, {0, -5}, {1, 100}, {3, 0}} {
		_, err := CreditLine("lines[0]", inv, Credited{}, bad.q, bad.g)
		require.Error(t, err, "quantity %d amount %d", bad.q, bad.g)
	}
	zero, _, err := Compute([]LineInput{{Description: "Book", Quantity: 1, UnitGrossMinor: 899}})
	require.NoError(t, err)
	z, err := CreditLine("lines[0]", zero[0], Credited{}, 1, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 0, z.VATMinor)
}

func TestCreditNoteValidate(t *testing.T) {
	require.NoError(t, creditFixture(t).Validate())
	for field, mutate := range map[string]func(*Credit){
		"Credit.InvoiceNumber": func(c *Credit) { c.InvoiceNumber = " " },
		"Credit.InvoiceDate":   func(c *Credit) { c.InvoiceDate = time.Time{} },
		"Credit.Reason":        func(c *Credit) { c.Reason = "" },
	} {
		d := creditFixture(t)
		c := *d.Credit
		mutate(&c)
		d.Credit = &c
		var fe *FieldError
		require.True(t, errors.As(d.Validate(), &fe), field)
		assert.Equal(t, field, fe.Field)
	}
}

func TestCreditNoteRendersAsReversal(t *testing.T) {
	d := creditFixture(t)
	_, text := renderText(t, d)
	for _, want := range []string{
		"CREDIT NOTE", "Credit note number:", "CRN-000007", "Date of issue:", "1 April 2026",
		"Original invoice number:", "INV-2026-000123", "Original invoice date:", "5 March 2026",
		"Time of supply (tax point):", "2 March 2026", "Reason for credit:", "Refund: damaged in transit",
		"Amazon order ID:", d.OrderID, "Plus Ranger Trading Ltd", "VAT registration number: GB123456789",
		"Customer", "Aberystwyth",
		"Credited excl. VAT", "-" + FormatMoney(d.TotalNetMinor, "GBP"),
		"VAT credited", "-" + FormatMoney(d.TotalVATMinor, "GBP"),
		"Total credited incl. VAT", "-£12.50",
		"Credit note CRN-000007 - page 1 of 1",
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "VAT INVOICE")
}
