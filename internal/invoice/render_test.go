package invoice

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pdftotext runs poppler's pdftotext on pdf with the given extra arguments
// and returns its standard output. A missing pdftotext fails the test.
func pdftotext(t *testing.T, pdf []byte, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Fatalf("pdftotext not found (%v): install poppler-utils (e.g. apt-get install poppler-utils) to run the invoice PDF tests", err)
	}
	path := filepath.Join(t.TempDir(), "invoice.pdf")
	require.NoError(t, os.WriteFile(path, pdf, 0o600))
	cmd := exec.Command(bin, append(append([]string{}, args...), path, "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "pdftotext: %s", stderr.String())
	require.Empty(t, strings.TrimSpace(stderr.String()), "pdftotext reported problems")
	return string(out)
}

func renderText(t *testing.T, d *Document) (pdf []byte, text string) {
	t.Helper()
	pdf, err := Render(d)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")), "not a PDF")
	return pdf, pdftotext(t, pdf, "-layout")
}

// requiredCommon asserts the fields both invoice kinds must show.
func requiredCommon(t *testing.T, d *Document, text string) {
	t.Helper()
	want := []string{
		d.Number,
		"Date of issue:", "5 March 2026",
		"Time of supply (tax point):", "2 March 2026",
		"Amazon order ID:", d.OrderID,
		d.Seller.Name,
		"VAT registration number: GB123456789",
		"Total excl. VAT", FormatMoney(d.TotalNetMinor, "GBP"),
		"Total VAT", FormatMoney(d.TotalVATMinor, "GBP"),
		"Total incl. VAT", FormatMoney(d.TotalGrossMinor, "GBP"),
		"£",
		"VAT summary",
	}
	want = append(want, d.Seller.Address...)
	for _, w := range want {
		assert.Contains(t, text, w)
	}
	for i, l := range d.Lines {
		assert.Contains(t, text, l.Description, "line %d description", i)
		if l.SKU != "" {
			assert.Contains(t, text, "SKU: "+l.SKU, "line %d SKU", i)
		}
		// The quantity, unit price, rate and net amount appear on the same
		// row, in that order, after the start of the description.
		row := regexp.MustCompile(regexp.QuoteMeta(l.Description) + `\s+` +
			regexp.QuoteMeta(strconv.FormatInt(l.Quantity, 10)) + `\s+` +
			regexp.QuoteMeta(FormatMoney(l.UnitNetMinor, "GBP")) + `\s+` +
			regexp.QuoteMeta(formatRate(l.VATRateBasisPoints)) + `\s+` +
			regexp.QuoteMeta(FormatMoney(l.NetMinor, "GBP")))
		assert.Regexp(t, row, text, "line %d row", i)
	}
	for _, rt := range d.VATBreakdown {
		row := regexp.MustCompile(regexp.QuoteMeta(formatRate(rt.RateBasisPoints)) + `\s+` +
			regexp.QuoteMeta(FormatMoney(rt.NetMinor, "GBP")) + `\s+` +
			regexp.QuoteMeta(FormatMoney(rt.VATMinor, "GBP")) + `\s+` +
			regexp.QuoteMeta(FormatMoney(rt.NetMinor+rt.VATMinor, "GBP")))
		assert.Regexp(t, row, text, "VAT summary row %s", formatRate(rt.RateBasisPoints))
	}
}

func TestRenderFull(t *testing.T) {
	d := fixture(t)
	_, text := renderText(t, d)
	requiredCommon(t, d, text)
	assert.Contains(t, text, "VAT INVOICE")
	assert.NotContains(t, text, "SIMPLIFIED")
	assert.Contains(t, text, "Customer")
	assert.Contains(t, text, "Siân O'Brien-Łukasz")
	for _, a := range d.Customer.Address {
		assert.Contains(t, text, a)
	}
	// Spot-check concrete figures of the fixture.
	assert.Contains(t, text, "£1.65")  // gel pens net (2 × £0.99 = £1.98, VAT £0.33)
	assert.Contains(t, text, "£30.00") // mugs net
	assert.Contains(t, text, "£45.00") // seat net at 5%
	assert.Contains(t, text, "£8.99")  // book at 0%
	assert.Contains(t, text, "£85.64") // total excl. VAT
	assert.Contains(t, text, "£8.58")  // total VAT
	assert.Contains(t, text, "£94.22") // total incl. VAT
	assert.Contains(t, text, "page 1 of 1")
}

func TestRenderSimplified(t *testing.T) {
	full := fixture(t)
	d := simplifiedFixture(t)
	_, text := renderText(t, d)
	requiredCommon(t, d, text)
	assert.Contains(t, text, "SIMPLIFIED VAT INVOICE")
	assert.NotContains(t, text, "Customer")
	assert.NotContains(t, text, full.Customer.Name)
	for _, a := range full.Customer.Address {
		if a == "United Kingdom" { // shared with the seller's address
			continue
		}
		assert.NotContains(t, text, a)
	}
}

func TestRenderCustomerVATNumberAndOtherCurrency(t *testing.T) {
	d := fixture(t)
	d.Customer.VATNumber = "123 4567 89"
	d.Currency = "EUR"
	d.OrderID = ""
	_, text := renderText(t, d)
	assert.Contains(t, text, "EUR 94.22")
	assert.NotContains(t, text, "£")
	assert.NotContains(t, text, "Amazon order ID")
	assert.Equal(t, 2, strings.Count(text, "VAT registration number: GB123456789"))
}

func TestRenderRejectsInvalid(t *testing.T) {
	d := fixture(t)
	d.Seller.VATNumber = ""
	pdf, err := Render(d)
	assert.Nil(t, pdf)
	var fe *FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "Seller.VATNumber", fe.Field)

	_, err = Render(nil)
	require.ErrorContains(t, err, "invoice: Document: is nil")
}

func TestRenderDeterministic(t *testing.T) {
	for _, d := range []*Document{fixture(t), simplifiedFixture(t), manyLines(t, 80)} {
		a, err := Render(d)
		require.NoError(t, err)
		for i := 0; i < 5; i++ {
			b, err := Render(d)
			require.NoError(t, err)
			require.True(t, bytes.Equal(a, b), "render %d differs from the first", i)
		}
		assert.Contains(t, string(a), "/CreationDate (D:20260305093000)")
		assert.Contains(t, string(a), "/ModDate (D:20260305093000)")
	}
	// A different document renders differently.
	d := fixture(t)
	a, err := Render(d)
	require.NoError(t, err)
	d.Number = "INV-2026-000999"
	b, err := Render(d)
	require.NoError(t, err)
	assert.False(t, bytes.Equal(a, b))
}

func manyLines(t testing.TB, n int) *Document {
	in := make([]LineInput, n)
	for i := range in {
		in[i] = LineInput{
			Description:        fmt.Sprintf("Item number %03d", i),
			SKU:                fmt.Sprintf("SKU-%03d", i),
			Quantity:           int64(i%4 + 1),
			UnitGrossMinor:     int64(100 + 37*i),
			VATRateBasisPoints: []int64{2000, 500, 0}[i%3],
		}
	}
	lines, totals, err := Compute(in)
	require.NoError(t, err)
	d := fixture(t)
	d.SetLines(lines, totals)
	return d
}

func TestRenderPaginates(t *testing.T) {
	t.Run("embedded font", func(t *testing.T) { testRenderPaginates(t, manyLines(t, 80)) })
	t.Run("core font", func(t *testing.T) {
		d := manyLines(t, 80)
		d.Customer.Name = "Siân O'Brien-Müller"
		testRenderPaginates(t, d)
	})
}

func testRenderPaginates(t *testing.T, d *Document) {
	_, text := renderText(t, d)
	pages := strings.Split(strings.TrimRight(text, "\f"), "\f")
	require.Greater(t, len(pages), 2, "80 lines should need more than two pages")
	for i, p := range pages {
		assert.Contains(t, p, fmt.Sprintf("page %d of %d", i+1, len(pages)))
		if i > 0 {
			assert.Contains(t, p, "(continued)")
		}
	}
	// The table header is repeated on every page that holds lines.
	for i, p := range pages[:len(pages)-1] {
		assert.Contains(t, p, "Description", "page %d", i+1)
	}
	for _, l := range d.Lines {
		assert.Equal(t, 1, strings.Count(text, l.Description+" "), l.Description)
		assert.Contains(t, text, "SKU: "+l.SKU)
	}
	assert.Contains(t, pages[len(pages)-1], "Total incl. VAT")
	assert.Contains(t, text, FormatMoney(d.TotalGrossMinor, "GBP"))
}

// word is one word of pdftotext -bbox output, coordinates in points.
type word struct {
	xMin, xMax float64
	text       string
}

var bboxWord = regexp.MustCompile(`<word xMin="([0-9.]+)" yMin="[0-9.]+" xMax="([0-9.]+)" yMax="[0-9.]+">([^<]*)</word>`)

func bboxWords(t *testing.T, pdf []byte) []word {
	out := pdftotext(t, pdf, "-bbox")
	var ws []word
	for _, m := range bboxWord.FindAllStringSubmatch(out, -1) {
		x0, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		x1, err := strconv.ParseFloat(m[2], 64)
		require.NoError(t, err)
		ws = append(ws, word{x0, x1, m[3]})
	}
	require.NotEmpty(t, ws)
	return ws
}

func TestRenderWrapsLongDescriptions(t *testing.T) {
	long := strings.Repeat("Extremely durable stainless steel vacuum flask with a double wall ", 6) + "ENDMARK"
	unbroken := "Supercalifragilisticexpialidocious" + strings.Repeat("X", 120) + "Z"
	lines, totals, err := Compute([]LineInput{
		{Description: long, Quantity: 1, UnitGrossMinor: 2400, VATRateBasisPoints: 2000},
		{Description: unbroken, Quantity: 1, UnitGrossMinor: 100, VATRateBasisPoints: 2000},
	})
	require.NoError(t, err)
	d := fixture(t)
	d.SetLines(lines, totals)
	pdf, err := Render(d)
	require.NoError(t, err)

	const mmToPt = 72 / 25.4
	descRight := (marginLeft + tableCols[0]) * mmToPt
	ws := bboxWords(t, pdf)
	seen := map[string]bool{}
	for _, w := range ws {
		if strings.Contains(long, w.text) || strings.Contains(unbroken, w.text) {
			if w.xMin < descRight && len(w.text) > 3 {
				assert.LessOrEqual(t, w.xMax, descRight, "word %q overflows the description column", w.text)
				seen[w.text] = true
			}
		}
	}
	assert.True(t, seen["ENDMARK"], "end of long description missing")
	assert.True(t, seen["flask"])

	// The long description is intact when whitespace is ignored.
	text := pdftotext(t, pdf, "-layout")
	squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
	assert.Contains(t, squash(text), "SupercalifragilisticexpialidociousXXXX")
	assert.Contains(t, text, "£20.00")
}

func TestRenderOddCharacters(t *testing.T) {
	d := fixture(t)
	d.Lines[0].Description = "Tab\tand\nnewline, emoji 😀, Greek αβγ, Cyrillic Жж, euro €"
	pdf, err := Render(d)
	require.NoError(t, err)
	text := pdftotext(t, pdf, "-layout")
	assert.Contains(t, text, "Greek αβγ")
	assert.Contains(t, text, "Cyrillic Жж")
	assert.Contains(t, text, "euro €")
	assert.Contains(t, text, "Tab and newline")
}

func TestRenderExtremeValues(t *testing.T) {
	lines, totals, err := Compute([]LineInput{
		{Description: "Very expensive item", Quantity: 1000, UnitGrossMinor: 9_999_999_999, VATRateBasisPoints: 2000},
	})
	require.NoError(t, err)
	d := fixture(t)
	d.SetLines(lines, totals)
	d.Seller.Address = append(d.Seller.Address, strings.Repeat("A very long address line ", 8))
	_, text := renderText(t, d)
	assert.Contains(t, text, FormatMoney(d.TotalGrossMinor, "GBP"))
}

func TestRenderRowTallerThanAPage(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 90; i++ {
		fmt.Fprintf(&sb, "Part%02d of a very long description that keeps going. ", i)
	}
	lines, totals, err := Compute([]LineInput{
		{Description: "Short first item", Quantity: 1, UnitGrossMinor: 500, VATRateBasisPoints: 2000},
		{Description: sb.String(), Quantity: 2, UnitGrossMinor: 1234, VATRateBasisPoints: 2000},
	})
	require.NoError(t, err)
	d := fixture(t)
	d.SetLines(lines, totals)
	_, text := renderText(t, d)
	pages := strings.Split(strings.TrimRight(text, "\f"), "\f")
	require.Greater(t, len(pages), 1)
	// The tall row starts on the first page (no blank page is inserted)
	// and every part of it is printed exactly once.
	assert.Contains(t, pages[0], "Part00")
	for i := 0; i < 90; i++ {
		assert.Equal(t, 1, strings.Count(text, fmt.Sprintf("Part%02d ", i)), "Part%02d", i)
	}
	for i, p := range pages {
		assert.Contains(t, p, fmt.Sprintf("page %d of %d", i+1, len(pages)))
	}
	assert.Contains(t, pages[len(pages)-1], "Total incl. VAT")
}

func TestRenderHugeAddressFallsBackToStackedBlocks(t *testing.T) {
	d := fixture(t)
	for i := 0; i < 70; i++ {
		d.Customer.Address = append(d.Customer.Address, fmt.Sprintf("Address line %d", i))
	}
	_, text := renderText(t, d)
	for i := 0; i < 70; i++ {
		assert.Contains(t, text, fmt.Sprintf("Address line %d\n", i))
	}
	requiredCommon(t, d, text)
}

// BenchmarkRender renders a typical full invoice whose text is all in
// Windows-1252 (Latin-1 names, "£") and one that needs characters outside it
// (a Polish "Ł"), reporting the PDF's size as pdf-bytes.
// latin1Fixture is fixture with a buyer whose name is in Windows-1252.
func latin1Fixture(t testing.TB) *Document {
	d := fixture(t)
	d.Customer.Name = "Siân O'Brien-Müller"
	return d
}

// embedsFont reports whether pdf embeds a font program.
func embedsFont(pdf []byte) bool { return bytes.Contains(pdf, []byte("/FontFile")) }

// An invoice whose text is all in Windows-1252, as nearly all of a UK seller's
// are, uses Helvetica, a core font: no font is embedded, the PDF is small, and
// "£", "€" and Western European accents come out intact.
func TestRenderWindows1252UsesTheCoreFont(t *testing.T) {
	d := latin1Fixture(t)
	d.Seller.Address[0] = "Unit 4, Riverside Works – Café Façade"
	d.Lines[0].Description = "Crème brûlée «2×» € ‰ Ørsted Ñ ß œ Š Ÿ"
	pdf, text := renderText(t, d)
	requiredCommon(t, d, text)
	assert.Contains(t, text, "Siân O'Brien-Müller")
	assert.Contains(t, text, "page 1 of 1")
	assert.False(t, embedsFont(pdf), "no font program should be embedded")
	assert.Contains(t, string(pdf), "/BaseFont /Helvetica")
	assert.Contains(t, string(pdf), "/Encoding /WinAnsiEncoding")
	assert.Less(t, len(pdf), 16<<10, "a one-page invoice without an embedded font (a font subset alone is over 20 KB)")
}

// A character outside Windows-1252 anywhere in the document (the buyer's
// name, their address, the seller's details, a description) switches the
// whole document to the embedded Go fonts: it is printed, never dropped or
// replaced. Glyphs the Go fonts lack (CJK) are drawn as the font's
// missing-glyph box and their text is still in the PDF.
func TestRenderOutsideWindows1252EmbedsAFont(t *testing.T) {
	for _, text := range []string{"Łukasz Wałęsa", "Antonín Dvořák", "Ελένη Παπαδοπούλου", "Жанна Иванова", "Nguyễn Thị", "王小明"} {
		for field, set := range map[string]func(d *Document){
			"customer name":    func(d *Document) { d.Customer.Name = text },
			"customer address": func(d *Document) { d.Customer.Address[1] = text },
			"seller name":      func(d *Document) { d.Seller.Name = text },
			"description":      func(d *Document) { d.Lines[2].Description = text },
		} {
			t.Run(text+"/"+field, func(t *testing.T) {
				d := latin1Fixture(t)
				set(d)
				pdf, out := renderText(t, d)
				assert.Contains(t, out, text)
				assert.True(t, embedsFont(pdf), "the embedded font must be used")
				assert.Contains(t, out, "£94.22")
			})
		}
	}
	// Emoji (outside the Basic Multilingual Plane) alone need no fallback:
	// both fonts print them as "?".
	d := latin1Fixture(t)
	d.Lines[0].Description = "Mug 😀"
	pdf, out := renderText(t, d)
	assert.Contains(t, out, "Mug ?")
	assert.False(t, embedsFont(pdf))
}

func BenchmarkRender(b *testing.B) {
	latin1 := fixture(b)
	latin1.Customer.Name = "Siân O'Brien-Müller"
	for _, bc := range []struct {
		name string
		d    *Document
	}{{"cp1252", latin1}, {"unicode", fixture(b)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			size := 0
			for b.Loop() {
				pdf, err := Render(bc.d)
				if err != nil {
					b.Fatal(err)
				}
				size = len(pdf)
			}
			b.ReportMetric(float64(size), "pdf-bytes")
		})
	}
}
