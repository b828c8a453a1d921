package orders

import (
	"bytes"
	"compress/zlib"
	"strings"
	"testing"
)

func TestSealedInvoiceFormsRoundTrip(t *testing.T) {
	pdf := []byte("%PDF-1.3\n" + strings.Repeat("BT /F1 10 Tf (Line) Tj ET\n", 300) + "%%EOF\n")
	packed, err := packPDF(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(packed, pdfMagic) || len(packed) >= len(pdf)/4 {
		t.Fatalf("packed form: %d bytes of %d, starts %q", len(packed), len(pdf), packed[:min(8, len(packed))])
	}
	for name, stored := range map[string][]byte{"packed": packed, "as sealed before (the PDF itself)": pdf} {
		got, err := unpackPDF(stored)
		if err != nil || !bytes.Equal(got, pdf) {
			t.Fatalf("%s: unpack gave %d bytes, %v", name, len(got), err)
		}
	}
	// A pooled writer reset for the next invoice carries nothing over.
	again, err := packPDF(pdf[:100])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unpackPDF(again); err != nil || !bytes.Equal(got, pdf[:100]) {
		t.Fatalf("second invoice: %q, %v", got, err)
	}
}

func TestUnpackRefusesWhatIsNoPDF(t *testing.T) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write([]byte("not a pdf"))
	_ = w.Close()
	for name, stored := range map[string][]byte{"garbage": []byte("garbage"), "deflated non-PDF": buf.Bytes()} {
		if _, err := unpackPDF(stored); err == nil {
			t.Errorf("%s: unpacked without an error", name)
		}
	}
}

func BenchmarkPackPDF(b *testing.B) {
	pdf := []byte("%PDF-1.3\n" + strings.Repeat("BT /F1 10 Tf (Line) Tj ET\n", 300) + "%%EOF\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := packPDF(pdf); err != nil {
			b.Fatal(err)
		}
	}
}
