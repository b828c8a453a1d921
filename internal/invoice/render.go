package invoice

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/text/encoding/charmap"
)

// Page geometry in millimetres (A4 portrait).
const (
	marginLeft   = 15.0
	marginTop    = 15.0
	marginRight  = 15.0
	marginBottom = 18.0
	contentWidth = 210.0 - marginLeft - marginRight

	// coreFamily is the PDF core font used for documents whose text is all
	// in Windows-1252; unicodeFamily is the embedded font used for the rest.
	coreFamily    = "Helvetica"
	unicodeFamily = "Go"
	bodySize      = 9.5
	lineHeight    = 4.6
	dateLayout    = "2 January 2006"
)

// Line table column widths (sum == contentWidth).
var tableCols = [...]float64{78, 14, 30, 20, 38}

// Render validates d and renders it as an A4 PDF. The same Document always
// renders to byte-identical output: the PDF creation and modification dates
// are set to d.IssueDate and no random identifiers are written.
//
// Fonts: a document whose text is all in Windows-1252 (ASCII, "£", "€",
// the accented letters of Western European names), as nearly every invoice
// of a UK seller is, is set in Helvetica, a PDF core font that every reader
// provides: no font is parsed or embedded, which keeps rendering cheap and
// the PDF small. A document with any other character (a Polish "Ł", Czech
// "ř", Greek, Cyrillic ...) is set in the Go fonts instead, embedded as a
// subset; they cover Latin, Greek and Cyrillic scripts, so no character is
// silently lost. Only characters outside the Basic Multilingual Plane
// (emoji), which the embedded font tables cannot address, become "?".
func Render(d *Document) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	r := &renderer{d: d, pdf: fpdf.New("P", "mm", "A4", ""), core: true}
	pdf, err := r.render()
	if err != nil || !r.needsUnicode {
		return pdf, err
	}
	// Some text is not in Windows-1252: render again with the embedded font.
	r = &renderer{d: d, pdf: fpdf.New("P", "mm", "A4", "")}
	return r.render()
}

type renderer struct {
	d       *Document
	pdf     *fpdf.Fpdf
	inTable bool // repeat the line table header on new pages
	// core selects Helvetica with Windows-1252 encoding; needsUnicode records
	// that some text could not be encoded so (the document must be rendered
	// with the embedded font).
	core         bool
	needsUnicode bool
}

// enc converts text for the PDF writer: to Windows-1252 bytes for the core
// font (noting any character it lacks), unchanged for the embedded font.
func (r *renderer) enc(s string) string {
	if !r.core {
		return s
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, c := range s {
		if c < 0x80 {
			b = append(b, byte(c))
			continue
		}
		e, ok := charmap.Windows1252.EncodeRune(c)
		if !ok {
			// Stop this pass cheaply: with an error set, fpdf's calls do nothing.
			r.needsUnicode = true
			r.pdf.SetErrorf("invoice: text outside Windows-1252")
			e = '?'
		}
		b = append(b, e)
	}
	return string(b)
}

// width is the width of text in the current font.
func (r *renderer) width(s string) float64 { return r.pdf.GetStringWidth(r.enc(s)) }

// text prints one line of text with CellFormat.
func (r *renderer) text(w, h float64, s string, ln int, align string) {
	r.pdf.CellFormat(w, h, r.enc(clean(s)), "", ln, align, false, 0, "")
}

func (r *renderer) heading() string {
	if r.d.Credit != nil {
		return "CREDIT NOTE"
	}
	if r.d.Kind == Simplified {
		return "SIMPLIFIED VAT INVOICE"
	}
	return "VAT INVOICE"
}

func (r *renderer) money(minor int64) string { return FormatMoney(minor, r.d.Currency) }

// amount prints an amount of the document's lines and totals: on a credit note
// it reverses what was invoiced, so it is printed negative.
func (r *renderer) amount(minor int64) string {
	if r.d.Credit != nil {
		return r.money(-minor)
	}
	return r.money(minor)
}

// documentName names the document in the page footer.
func (r *renderer) documentName() string {
	if r.d.Credit != nil {
		return "Credit note"
	}
	return "Invoice"
}

func (r *renderer) render() ([]byte, error) {
	p, d := r.pdf, r.d
	// AliasNbPages must precede the fonts so that digits are in the subset.
	p.AliasNbPages("{nb}")
	if !r.core {
		p.AddUTF8FontFromBytes(unicodeFamily, "", goregular.TTF)
		p.AddUTF8FontFromBytes(unicodeFamily, "B", gobold.TTF)
	}
	p.SetCatalogSort(true)
	p.SetCreationDate(d.IssueDate)
	p.SetModificationDate(d.IssueDate)
	// fpdf makes a new zlib writer (over a megabyte) for every document it
	// compresses: a core-font document, one small page stream, is left as it
	// is, and the store deflates the whole file with a pooled writer
	// (internal/orders). An embedded font is compressed here.
	p.SetCompression(!r.core)
	p.SetTitle(clean(r.heading()+" "+d.Number), true)
	p.SetAuthor(clean(d.Seller.Name), true)
	p.SetCreator("dpp invoice", false)
	p.SetLang("en-GB")
	p.SetMargins(marginLeft, marginTop, marginRight)
	p.SetAutoPageBreak(true, marginBottom)
	p.SetHeaderFunc(r.pageHeader)
	p.SetFooterFunc(r.pageFooter)

	p.AddPage()
	r.font("B", 18)
	r.text(contentWidth, 9, r.heading(), 1, "L")
	p.Ln(2)

	r.details()
	p.Ln(3)
	r.parties()
	p.Ln(4)
	r.lineTable()
	p.Ln(2)
	r.totals()
	p.Ln(4)
	r.vatSummary()

	if r.needsUnicode {
		return nil, nil // Render starts again with the embedded font
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("invoice: render: %w", err)
	}
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		return nil, fmt.Errorf("invoice: render: %w", err)
	}
	return buf.Bytes(), nil
}

func (r *renderer) font(style string, size float64) {
	if r.core {
		r.pdf.SetFont(coreFamily, style, size)
		return
	}
	r.pdf.SetFont(unicodeFamily, style, size)
}

// bottom is the lowest y at which text may end on a page.
func (r *renderer) bottom() float64 {
	_, h := r.pdf.GetPageSize()
	return h - marginBottom
}

// ensure starts a new page unless h millimetres fit below the cursor.
func (r *renderer) ensure(h float64) {
	if r.pdf.GetY()+h > r.bottom() {
		r.pdf.AddPage()
	}
}

// keepTogether starts a new page unless a block h millimetres tall fits
// below the cursor; a block too tall for any page is not moved (the caller
// then breaks it line by line).
func (r *renderer) keepTogether(h float64) {
	// Room on a continuation page: below the top margin, the "continued"
	// line and a repeated table header.
	const pageOverhead = marginTop + 7 + 2*lineHeight + 1
	if h <= r.bottom()-pageOverhead {
		r.ensure(h)
	}
}

func (r *renderer) pageHeader() {
	if r.pdf.PageNo() == 1 {
		return
	}
	r.font("", 8)
	r.pdf.SetTextColor(90, 90, 90)
	r.text(contentWidth, 5, r.heading()+" "+r.d.Number+" (continued)", 1, "L")
	r.pdf.SetTextColor(0, 0, 0)
	r.pdf.Ln(2)
	if r.inTable {
		r.tableHeader()
	}
}

func (r *renderer) pageFooter() {
	r.pdf.SetY(-12)
	r.font("", 8)
	r.pdf.SetTextColor(90, 90, 90)
	r.text(contentWidth, 5, r.documentName()+" "+r.d.Number+" - page "+strconv.Itoa(r.pdf.PageNo())+" of {nb}", 0, "C")
	r.pdf.SetTextColor(0, 0, 0)
}

// details prints the invoice number, dates and order id as label/value rows.
func (r *renderer) details() {
	d := r.d
	rows := [][2]string{
		{"Invoice number:", d.Number},
		{"Date of issue:", d.IssueDate.Format(dateLayout)},
		{"Time of supply (tax point):", d.TaxPoint.Format(dateLayout)},
	}
	if c := d.Credit; c != nil {
		rows = [][2]string{
			{"Credit note number:", d.Number},
			{"Date of issue:", d.IssueDate.Format(dateLayout)},
			{"Original invoice number:", c.InvoiceNumber},
			{"Original invoice date:", c.InvoiceDate.Format(dateLayout)},
			{"Time of supply (tax point):", d.TaxPoint.Format(dateLayout)},
			{"Reason for credit:", c.Reason},
		}
	}
	if strings.TrimSpace(d.OrderID) != "" {
		rows = append(rows, [2]string{"Amazon order ID:", d.OrderID})
	}
	const labelW = 50.0
	for _, row := range rows {
		r.font("", bodySize)
		value := r.wrap(row[1], contentWidth-labelW)
		r.keepTogether(float64(len(value)) * lineHeight)
		for i, v := range value {
			r.ensure(lineHeight)
			y := r.pdf.GetY()
			if i == 0 {
				r.font("B", bodySize)
				r.cell(marginLeft, y, labelW, row[0], "L")
				r.font("", bodySize)
			}
			r.cell(marginLeft+labelW, y, contentWidth-labelW, v, "L")
			r.pdf.SetY(y + lineHeight)
		}
	}
}

// styled is one printed line of a text block.
type styled struct {
	style string
	text  string
}

// parties prints the seller and, on full invoices, the customer side by side
// (or one after the other when they do not fit on the page).
func (r *renderer) parties() {
	d := r.d
	seller := []styled{{"B", "Supplier"}, {"B", d.Seller.Name}}
	for _, a := range d.Seller.Address {
		if strings.TrimSpace(a) != "" {
			seller = append(seller, styled{"", a})
		}
	}
	seller = append(seller, styled{"", "VAT registration number: " + vatNumber(d.Seller.VATNumber)})
	blocks := [][]styled{seller}
	if d.Kind == Full && d.Customer != nil {
		c := d.Customer
		cust := []styled{{"B", "Customer"}, {"B", c.Name}}
		for _, a := range c.Address {
			if strings.TrimSpace(a) != "" {
				cust = append(cust, styled{"", a})
			}
		}
		if strings.TrimSpace(c.VATNumber) != "" {
			cust = append(cust, styled{"", "VAT registration number: " + vatNumber(c.VATNumber)})
		}
		blocks = append(blocks, cust)
	}

	const gap = 10.0
	colW := (contentWidth - gap) / 2
	wrapped := make([][]styled, len(blocks))
	maxLines := 0
	for i, b := range blocks {
		wrapped[i] = r.wrapBlock(b, colW)
		maxLines = max(maxLines, len(wrapped[i]))
	}
	h := float64(maxLines) * lineHeight
	if r.pdf.GetY()+h <= r.bottom() {
		y0 := r.pdf.GetY()
		for i, b := range wrapped {
			x := marginLeft + float64(i)*(colW+gap)
			for j, l := range b {
				r.font(l.style, bodySize)
				r.cell(x, y0+float64(j)*lineHeight, colW, l.text, "L")
			}
		}
		r.pdf.SetY(y0 + h)
		return
	}
	// Too tall for the rest of this page: print the blocks one after the
	// other at full width, breaking pages line by line.
	for i, b := range blocks {
		if i > 0 {
			r.pdf.Ln(3)
		}
		for _, l := range r.wrapBlock(b, contentWidth) {
			r.ensure(lineHeight)
			y := r.pdf.GetY()
			r.font(l.style, bodySize)
			r.cell(marginLeft, y, contentWidth, l.text, "L")
			r.pdf.SetY(y + lineHeight)
		}
	}
}

func (r *renderer) wrapBlock(b []styled, w float64) []styled {
	var out []styled
	for _, l := range b {
		r.font(l.style, bodySize)
		for _, t := range r.wrap(l.text, w) {
			out = append(out, styled{l.style, t})
		}
	}
	return out
}

// tableCell is one cell of a table row: its wrapped text lines and alignment.
type tableCell struct {
	lines []string
	align string
}

func (r *renderer) tableHeader() {
	r.font("B", bodySize)
	hdr := []tableCell{
		{[]string{"Description"}, "L"},
		{[]string{"Qty"}, "R"},
		{[]string{"Unit price", "excl. VAT"}, "R"},
		{[]string{"VAT rate"}, "R"},
		{[]string{"Amount", "excl. VAT"}, "R"},
	}
	y := r.pdf.GetY()
	h := 2 * lineHeight
	r.pdf.SetFillColor(235, 235, 235)
	r.pdf.Rect(marginLeft, y, contentWidth, h+1, "F")
	r.drawRowAt(y+0.5, tableCols[:], hdr, "B")
	r.pdf.SetY(y + h + 1)
}

// drawRowAt draws all lines of a row starting at y without page checks.
func (r *renderer) drawRowAt(y float64, widths []float64, cells []tableCell, style string) {
	r.font(style, bodySize)
	x := marginLeft
	for i, c := range cells {
		for j, l := range c.lines {
			r.cell(x, y+float64(j)*lineHeight, widths[i], l, c.align)
		}
		x += widths[i]
	}
}

// row draws a table row, moving it to a new page when it does not fit on
// this one; a row taller than a whole page is split line by line.
func (r *renderer) row(widths []float64, cells []tableCell) {
	n := 0
	for _, c := range cells {
		n = max(n, len(c.lines))
	}
	r.keepTogether(float64(n)*lineHeight + 1)
	r.font("", bodySize)
	for j := 0; j < n; j++ {
		r.ensure(lineHeight)
		y := r.pdf.GetY()
		x := marginLeft
		for i, c := range cells {
			if j < len(c.lines) {
				r.cell(x, y, widths[i], c.lines[j], c.align)
			}
			x += widths[i]
		}
		r.pdf.SetY(y + lineHeight)
	}
	y := r.pdf.GetY() + 0.5
	r.pdf.SetDrawColor(200, 200, 200)
	r.pdf.SetLineWidth(0.2)
	r.pdf.Line(marginLeft, y, marginLeft+sumWidths(widths), y)
	r.pdf.SetY(y + 0.5)
}

func sumWidths(w []float64) float64 {
	s := 0.0
	for _, v := range w {
		s += v
	}
	return s
}

func (r *renderer) lineTable() {
	r.ensure(2*lineHeight + 1 + lineHeight + 1) // header plus one row
	r.inTable = true
	r.tableHeader()
	for _, l := range r.d.Lines {
		r.font("", bodySize)
		desc := r.wrap(l.Description, tableCols[0])
		if strings.TrimSpace(l.SKU) != "" {
			desc = append(desc, r.wrap("SKU: "+l.SKU, tableCols[0])...)
		}
		r.row(tableCols[:], []tableCell{
			{desc, "L"},
			{[]string{strconv.FormatInt(l.Quantity, 10)}, "R"},
			{[]string{r.money(l.UnitNetMinor)}, "R"},
			{[]string{formatRate(l.VATRateBasisPoints)}, "R"},
			{[]string{r.amount(l.NetMinor)}, "R"},
		})
	}
	r.inTable = false
}

func (r *renderer) totals() {
	d := r.d
	rows := []struct {
		label string
		value int64
	}{
		{"Total excl. VAT", d.TotalNetMinor},
		{"Total VAT", d.TotalVATMinor},
		{"Total incl. VAT", d.TotalGrossMinor},
	}
	if d.Credit != nil {
		rows[0].label, rows[1].label, rows[2].label = "Credited excl. VAT", "VAT credited", "Total credited incl. VAT"
	}
	const valueW = 38.0
	const labelW = 52.0
	x := marginLeft + contentWidth - valueW - labelW
	r.ensure(float64(len(rows)) * (lineHeight + 0.5))
	for i, row := range rows {
		style := ""
		if i == len(rows)-1 {
			style = "B"
		}
		r.font(style, bodySize+0.5)
		y := r.pdf.GetY()
		r.cell(x, y, labelW, row.label, "L")
		r.cell(x+labelW, y, valueW, r.amount(row.value), "R")
		r.pdf.SetY(y + lineHeight + 0.5)
	}
}

func (r *renderer) vatSummary() {
	widths := []float64{30, 38, 38, 38}
	r.ensure(3*lineHeight + 2)
	r.font("B", bodySize)
	y := r.pdf.GetY()
	r.cell(marginLeft, y, contentWidth, "VAT summary", "L")
	r.pdf.SetY(y + lineHeight + 1)
	r.row(widths, []tableCell{
		{[]string{"VAT rate"}, "L"},
		{[]string{"Amount excl. VAT"}, "R"},
		{[]string{"VAT"}, "R"},
		{[]string{"Amount incl. VAT"}, "R"},
	})
	for _, rt := range r.d.VATBreakdown {
		r.row(widths, []tableCell{
			{[]string{formatRate(rt.RateBasisPoints)}, "L"},
			{[]string{r.amount(rt.NetMinor)}, "R"},
			{[]string{r.amount(rt.VATMinor)}, "R"},
			{[]string{r.amount(rt.NetMinor + rt.VATMinor)}, "R"},
		})
	}
}

// cell prints one line of text at (x, y) within width w. Text wider than the
// cell is shrunk to fit so that it never overflows into a neighbour.
func (r *renderer) cell(x, y, w float64, text, align string) {
	p := r.pdf
	text = clean(text)
	avail := w - 2*p.GetCellMargin()
	size, _ := p.GetFontSize()
	if tw := r.width(text); tw > avail && tw > 0 {
		p.SetFontSize(max(size*avail/tw, 3))
		defer p.SetFontSize(size)
	}
	p.SetXY(x, y)
	r.text(w, lineHeight, text, 0, align)
}

// wrap splits text into lines no wider than w (less the cell margins) in the
// current font. Words longer than a line are broken between characters.
func (r *renderer) wrap(text string, w float64) []string {
	p := r.pdf
	avail := w - 2*p.GetCellMargin()
	words := strings.Fields(clean(text))
	if len(words) == 0 {
		return []string{""}
	}
	var lines []string
	cur := ""
	for _, word := range words {
		cand := word
		if cur != "" {
			cand = cur + " " + word
		}
		if r.width(cand) <= avail {
			cur = cand
			continue
		}
		if cur != "" {
			lines = append(lines, cur)
			cur = ""
		}
		// Break an over-long word by characters.
		for r.width(word) > avail {
			runes := []rune(word)
			n := 1
			for n < len(runes) && r.width(string(runes[:n+1])) <= avail {
				n++
			}
			lines = append(lines, string(runes[:n]))
			word = string(runes[n:])
		}
		cur = word
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// clean makes text safe for the PDF writer: control characters become
// spaces and characters outside the Basic Multilingual Plane (which the
// embedded font tables cannot address) become "?".
func clean(s string) string {
	ok := true
	for _, c := range s {
		if c > 0xFFFE || unicode.IsControl(c) || c == unicode.ReplacementChar {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(c rune) rune {
		switch {
		case unicode.IsControl(c):
			return ' '
		case c > 0xFFFE || c == unicode.ReplacementChar:
			return '?'
		}
		return c
	}, s)
}
