package invoice

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestComputeLines(t *testing.T) {
	tests := []struct {
		name                   string
		in                     LineInput
		unitNet, net, vat, grs int64
	}{
		{"20% on £12.00", LineInput{Description: "Mug", Quantity: 1, UnitGrossMinor: 1200, VATRateBasisPoints: 2000}, 1000, 1000, 200, 1200},
		// 99 × 2000 / 12000 = 16.5 -> 17; unit net 99 × 10000 / 12000 = 82.5 -> 83.
		{"£0.99 at 20%", LineInput{Description: "Pen", Quantity: 1, UnitGrossMinor: 99, VATRateBasisPoints: 2000}, 83, 82, 17, 99},
		{"5% on £10.50", LineInput{Description: "Child seat", Quantity: 1, UnitGrossMinor: 1050, VATRateBasisPoints: 500}, 1000, 1000, 50, 1050},
		// 5%: 199 × 500 / 10500 = 9.476 -> 9; unit net 189.52 -> 190.
		{"5% on £1.99", LineInput{Description: "Sanitary product", Quantity: 1, UnitGrossMinor: 199, VATRateBasisPoints: 500}, 190, 190, 9, 199},
		{"0% on £5.00", LineInput{Description: "Book", Quantity: 2, UnitGrossMinor: 500, VATRateBasisPoints: 0}, 500, 1000, 0, 1000},
		{"qty 3 at £12.00", LineInput{Description: "Mug", Quantity: 3, UnitGrossMinor: 1200, VATRateBasisPoints: 2000}, 1000, 3000, 600, 3600},
		// 3 × 2000 / 12000 = 0.5 exactly: half rounds up.
		{"half rounds up", LineInput{Description: "Sticker", Quantity: 1, UnitGrossMinor: 3, VATRateBasisPoints: 2000}, 3, 2, 1, 3},
		// 1 × 2000 / 12000 = 0.1667 -> 0.
		{"£0.01 at 20%", LineInput{Description: "Sticker", Quantity: 1, UnitGrossMinor: 1, VATRateBasisPoints: 2000}, 1, 1, 0, 1},
		// 100 × 2000 / 12000 = 16.67 -> 17.
		{"£1.00 at 20%", LineInput{Description: "Thing", Quantity: 1, UnitGrossMinor: 100, VATRateBasisPoints: 2000}, 83, 83, 17, 100},
		// Line VAT is computed on the line total, not per unit:
		// 3 × 99 = 297; 297 × 2000 / 12000 = 49.5 -> 50.
		{"qty 3 at £0.99 rounds on line total", LineInput{Description: "Pen", Quantity: 3, UnitGrossMinor: 99, VATRateBasisPoints: 2000}, 83, 247, 50, 297},
		// 17.5%: 100 × 1750 / 11750 = 14.89 -> 15.
		{"17.5%", LineInput{Description: "Old rate", Quantity: 1, UnitGrossMinor: 100, VATRateBasisPoints: 1750}, 85, 85, 15, 100},
		{"free item", LineInput{Description: "Gift", Quantity: 1, UnitGrossMinor: 0, VATRateBasisPoints: 2000}, 0, 0, 0, 0},
		{"100% rate", LineInput{Description: "Edge", Quantity: 1, UnitGrossMinor: 1001, VATRateBasisPoints: 10000}, 501, 500, 501, 1001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines, totals, err := Compute([]LineInput{tc.in})
			require.NoError(t, err)
			require.Len(t, lines, 1)
			l := lines[0]
			assert.Equal(t, tc.unitNet, l.UnitNetMinor, "unit net")
			assert.Equal(t, tc.net, l.NetMinor, "net")
			assert.Equal(t, tc.vat, l.VATMinor, "vat")
			assert.Equal(t, tc.grs, l.GrossMinor, "gross")
			assert.Equal(t, l.GrossMinor, l.NetMinor+l.VATMinor)
			assert.Equal(t, tc.in.Description, l.Description)
			assert.Equal(t, tc.in.Quantity, l.Quantity)
			assert.Equal(t, tc.in.VATRateBasisPoints, l.VATRateBasisPoints)
			assert.Equal(t, Totals{NetMinor: tc.net, VATMinor: tc.vat, GrossMinor: tc.grs,
				ByRate: []RateTotal{{tc.in.VATRateBasisPoints, tc.net, tc.vat}}}, totals)
		})
	}
}

func TestComputeNetPlusVATIsGrossExhaustive(t *testing.T) {
	for _, rate := range []int64{0, 500, 1750, 2000, 10000} {
		for gross := int64(0); gross <= 5000; gross++ {
			lines, _, err := Compute([]LineInput{{Description: "x", Quantity: 1, UnitGrossMinor: gross, VATRateBasisPoints: rate}})
			require.NoError(t, err)
			l := lines[0]
			require.Equal(t, gross, l.NetMinor+l.VATMinor)
			// VAT must be the correctly rounded share: |vat - exact| <= 0.5.
			exact2 := 2 * gross * rate                 // 2 × numerator
			diff := 2*l.VATMinor*(10000+rate) - exact2 // 2 × (vat × den − num)
			require.LessOrEqual(t, diff, 10000+rate)   // vat − exact <= 0.5
			require.Greater(t, diff, -(10000 + rate))  // exact − vat < 0.5
			require.GreaterOrEqual(t, l.NetMinor, int64(0))
		}
	}
}

func TestComputeTotalsMixedRates(t *testing.T) {
	lines, totals, err := Compute([]LineInput{
		{Description: "Mug", SKU: "MUG-1", Quantity: 3, UnitGrossMinor: 1200, VATRateBasisPoints: 2000},
		{Description: "Book", Quantity: 1, UnitGrossMinor: 899, VATRateBasisPoints: 0},
		{Description: "Pen", Quantity: 1, UnitGrossMinor: 99, VATRateBasisPoints: 2000},
		{Description: "Car seat", Quantity: 1, UnitGrossMinor: 1050, VATRateBasisPoints: 500},
	})
	require.NoError(t, err)
	require.Len(t, lines, 4)
	assert.Equal(t, "MUG-1", lines[0].SKU)
	assert.Equal(t, Totals{
		NetMinor:   3000 + 899 + 82 + 1000,
		VATMinor:   600 + 0 + 17 + 50,
		GrossMinor: 3600 + 899 + 99 + 1050,
		ByRate: []RateTotal{
			{RateBasisPoints: 2000, NetMinor: 3082, VATMinor: 617},
			{RateBasisPoints: 500, NetMinor: 1000, VATMinor: 50},
			{RateBasisPoints: 0, NetMinor: 899, VATMinor: 0},
		},
	}, totals)
	assert.Equal(t, totals, Summarise(lines))
}

func TestComputeErrors(t *testing.T) {
	const secret = "Secret Customer Present"
	ok := LineInput{Description: secret, Quantity: 1, UnitGrossMinor: 100, VATRateBasisPoints: 2000}
	tests := []struct {
		name  string
		mod   func(*LineInput)
		field string
	}{
		{"zero quantity", func(l *LineInput) { l.Quantity = 0 }, "lines[1].Quantity"},
		{"negative quantity", func(l *LineInput) { l.Quantity = -2 }, "lines[1].Quantity"},
		{"negative price", func(l *LineInput) { l.UnitGrossMinor = -1 }, "lines[1].UnitGrossMinor"},
		{"negative rate", func(l *LineInput) { l.VATRateBasisPoints = -1 }, "lines[1].VATRateBasisPoints"},
		{"rate above 100%", func(l *LineInput) { l.VATRateBasisPoints = 10001 }, "lines[1].VATRateBasisPoints"},
		{"empty description", func(l *LineInput) { l.Description = "" }, "lines[1].Description"},
		{"blank description", func(l *LineInput) { l.Description = " \t " }, "lines[1].Description"},
		{"overflow", func(l *LineInput) { l.Quantity = math.MaxInt64 / 2; l.UnitGrossMinor = 10 }, "lines[1].Quantity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := ok
			tc.mod(&bad)
			lines, totals, err := Compute([]LineInput{ok, bad})
			require.Error(t, err)
			assert.Nil(t, lines)
			assert.Equal(t, Totals{}, totals)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "error type %T", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, err.Error(), tc.field)
			assert.NotContains(t, err.Error(), secret)
		})
	}
	t.Run("no lines", func(t *testing.T) {
		_, _, err := Compute(nil)
		assert.ErrorIs(t, err, ErrNoLines)
	})
	t.Run("total overflow", func(t *testing.T) {
		big := LineInput{Description: "x", Quantity: 1, UnitGrossMinor: math.MaxInt64 / 10000, VATRateBasisPoints: 0}
		in := make([]LineInput, 10001)
		for i := range in {
			in[i] = big
		}
		_, _, err := Compute(in)
		var fe *FieldError
		require.True(t, errors.As(err, &fe))
		assert.Equal(t, "lines", fe.Field)
	})
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name       string
		total      int64
		business   bool
		limit      int64
		alwaysFull bool
		want       Kind
	}{
		{"exactly £250.00 is simplified", 25000, false, 25000, false, Simplified},
		{"£250.01 is full", 25001, false, 25000, false, Full},
		{"default limit when zero, £250.00", 25000, false, 0, false, Simplified},
		{"default limit when zero, £250.01", 25001, false, 0, false, Full},
		{"default limit when negative", 25001, false, -1, false, Full},
		{"small consumer order", 1299, false, 0, false, Simplified},
		{"business small order", 100, true, 0, false, Full},
		{"business at limit", 25000, true, 25000, false, Full},
		{"always full", 100, false, 0, true, Full},
		{"lower configured limit", 10001, false, 10000, false, Full},
		{"lower configured limit at boundary", 10000, false, 10000, false, Simplified},
		{"limit above legal cap is capped", 30000, false, 50000, false, Full},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Choose(tc.total, tc.business, tc.limit, tc.alwaysFull))
		})
	}
}

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{0, "GBP", "£0.00"},
		{5, "GBP", "£0.05"},
		{99, "GBP", "£0.99"},
		{1200, "GBP", "£12.00"},
		{123456, "GBP", "£1,234.56"},
		{100000000, "GBP", "£1,000,000.00"},
		{-123456, "GBP", "-£1,234.56"},
		{1200, "gbp", "£12.00"},
		{1200, "EUR", "EUR 12.00"},
		{123456, "EUR", "EUR 1,234.56"},
		{math.MinInt64, "GBP", "-£92,233,720,368,547,758.08"},
		{math.MaxInt64, "USD", "USD 92,233,720,368,547,758.07"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, FormatMoney(tc.minor, tc.currency), "%d %s", tc.minor, tc.currency)
	}
}

func TestFormatRateAndVATNumber(t *testing.T) {
	assert.Equal(t, "20%", formatRate(2000))
	assert.Equal(t, "5%", formatRate(500))
	assert.Equal(t, "0%", formatRate(0))
	assert.Equal(t, "17.5%", formatRate(1750))
	assert.Equal(t, "0.05%", formatRate(5))
	assert.Equal(t, "GB123456789", vatNumber("123456789"))
	assert.Equal(t, "GB123456789", vatNumber("gb 123 4567 89"))
	assert.Equal(t, "XI123456789", vatNumber("XI123456789"))
}

// fixture returns a valid full invoice.
func fixture(t testing.TB) *Document {
	t.Helper()
	lines, totals, err := Compute([]LineInput{
		{Description: "Enamel camping mug, blue", SKU: "MUG-BLUE-01", Quantity: 3, UnitGrossMinor: 1200, VATRateBasisPoints: 2000},
		{Description: "Paperback: A Field Guide to Moths", Quantity: 1, UnitGrossMinor: 899, VATRateBasisPoints: 0},
		{Description: "Child car booster seat", SKU: "SEAT-7", Quantity: 1, UnitGrossMinor: 4725, VATRateBasisPoints: 500},
		{Description: "Gel pen", Quantity: 2, UnitGrossMinor: 99, VATRateBasisPoints: 2000},
	})
	require.NoError(t, err)
	d := &Document{
		Number:    "INV-2026-000123",
		Kind:      Full,
		OrderID:   "026-1234567-8901234",
		IssueDate: time.Date(2026, time.March, 5, 9, 30, 0, 0, time.UTC),
		TaxPoint:  time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC),
		Currency:  "GBP",
		Seller: Party{
			Name:      "Plus Ranger Trading Ltd",
			Address:   []string{"Unit 4, Riverside Works", "12 Mill Lane", "Leeds", "LS1 4AB", "United Kingdom"},
			VATNumber: "GB123456789",
		},
		Customer: &Party{
			Name:    "Siân O'Brien-Łukasz",
			Address: []string{"Flat 2, Ty Gwyn", "7 Heol y Bont", "Aberystwyth", "SY23 1AA", "United Kingdom"},
		},
	}
	d.SetLines(lines, totals)
	return d
}

func simplifiedFixture(t testing.TB) *Document {
	d := fixture(t)
	d.Kind = Simplified
	d.Customer = nil
	d.Number = "INV-2026-000124"
	return d
}

func TestValidate(t *testing.T) {
	require.NoError(t, fixture(t).Validate())
	require.NoError(t, simplifiedFixture(t).Validate())

	tests := []struct {
		name  string
		mod   func(*Document)
		field string
	}{
		{"number", func(d *Document) { d.Number = " " }, "Number"},
		{"kind", func(d *Document) { d.Kind = "" }, "Kind"},
		{"issue date", func(d *Document) { d.IssueDate = time.Time{} }, "IssueDate"},
		{"tax point", func(d *Document) { d.TaxPoint = time.Time{} }, "TaxPoint"},
		{"currency", func(d *Document) { d.Currency = "" }, "Currency"},
		{"seller name", func(d *Document) { d.Seller.Name = "" }, "Seller.Name"},
		{"seller address", func(d *Document) { d.Seller.Address = []string{"", " "} }, "Seller.Address"},
		{"seller vat", func(d *Document) { d.Seller.VATNumber = "" }, "Seller.VATNumber"},
		{"customer missing on full", func(d *Document) { d.Customer = nil }, "Customer"},
		{"customer name", func(d *Document) { d.Customer.Name = "" }, "Customer.Name"},
		{"customer address", func(d *Document) { d.Customer.Address = nil }, "Customer.Address"},
		{"no lines", func(d *Document) { d.Lines = nil }, "Lines"},
		{"line description", func(d *Document) { d.Lines[1].Description = "" }, "Lines[1].Description"},
		{"line quantity", func(d *Document) { d.Lines[2].Quantity = 0 }, "Lines[2].Quantity"},
		{"line rate", func(d *Document) { d.Lines[0].VATRateBasisPoints = 20000 }, "Lines[0].VATRateBasisPoints"},
		{"line sum", func(d *Document) { d.Lines[0].VATMinor++ }, "Lines[0].GrossMinor"},
		{"total net", func(d *Document) { d.TotalNetMinor++ }, "TotalNetMinor"},
		{"total vat", func(d *Document) { d.TotalVATMinor-- }, "TotalVATMinor"},
		{"total gross", func(d *Document) { d.TotalGrossMinor = 0 }, "TotalGrossMinor"},
		{"breakdown missing", func(d *Document) { d.VATBreakdown = nil }, "VATBreakdown"},
		{"breakdown wrong", func(d *Document) { d.VATBreakdown[0].VATMinor++ }, "VATBreakdown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := fixture(t)
			tc.mod(d)
			err := d.Validate()
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "got %v", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.NotContains(t, err.Error(), "Siân")
		})
	}

	t.Run("simplified with customer", func(t *testing.T) {
		d := simplifiedFixture(t)
		d.Customer = &Party{Name: "X", Address: []string{"Y"}}
		var fe *FieldError
		require.True(t, errors.As(d.Validate(), &fe))
		assert.Equal(t, "Customer", fe.Field)
	})
	t.Run("simplified above £250", func(t *testing.T) {
		d := simplifiedFixture(t)
		lines, totals, err := Compute([]LineInput{{Description: "TV", Quantity: 1, UnitGrossMinor: 25001, VATRateBasisPoints: 2000}})
		require.NoError(t, err)
		d.SetLines(lines, totals)
		var fe *FieldError
		require.True(t, errors.As(d.Validate(), &fe))
		assert.Equal(t, "Kind", fe.Field)
	})
	t.Run("breakdown in any order", func(t *testing.T) {
		d := fixture(t)
		b := d.VATBreakdown
		b[0], b[len(b)-1] = b[len(b)-1], b[0]
		require.NoError(t, d.Validate())
	})
	t.Run("nil document", func(t *testing.T) {
		var d *Document
		require.Error(t, d.Validate())
	})
	t.Run("error names field only", func(t *testing.T) {
		d := fixture(t)
		d.Seller.VATNumber = ""
		assert.True(t, strings.HasPrefix(d.Validate().Error(), "invoice: Seller.VATNumber"))
	})
}
