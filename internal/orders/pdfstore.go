package orders

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"sync"
)

// A sealed invoice holds its PDF deflated (zlib). The renderer leaves a core-font
// PDF uncompressed, because fpdf builds a new zlib writer for every document, over
// a megabyte of allocation each, which was half of everything the worker
// allocated; here one pooled writer is reset per invoice instead, and deflating
// the whole file keeps the record smaller than fpdf's per-stream compression did.
// Invoices sealed before were stored as the PDF itself and are read as they are.

// pdfMagic starts every PDF file; a zlib stream never does (its first byte is 0x?8).
var pdfMagic = []byte("%PDF-")

// maxPDF bounds what an unpacked invoice may grow to (a corrupt or hostile stream
// must not exhaust memory); the largest invoices are far below it.
const maxPDF = 64 << 20

var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed) // a valid level: never an error
	return w
}}

// packPDF is the form an invoice PDF is sealed in.
func packPDF(pdf []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(pdf)/3 + 64)
	w := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(pdf); err != nil {
		return nil, fmt.Errorf("deflate invoice: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("deflate invoice: %w", err)
	}
	return buf.Bytes(), nil
}

// unpackPDF is the PDF a sealed invoice holds, in either form.
func unpackPDF(stored []byte) ([]byte, error) {
	if bytes.HasPrefix(stored, pdfMagic) {
		return stored, nil
	}
	r, err := zlib.NewReader(bytes.NewReader(stored))
	if err != nil {
		return nil, fmt.Errorf("inflate invoice: %w", err)
	}
	defer r.Close()
	pdf, err := io.ReadAll(io.LimitReader(r, maxPDF+1))
	if err != nil {
		return nil, fmt.Errorf("inflate invoice: %w", err)
	}
	if len(pdf) > maxPDF {
		return nil, errors.New("inflate invoice: larger than 64 MiB")
	}
	if !bytes.HasPrefix(pdf, pdfMagic) {
		return nil, errors.New("inflate invoice: not a PDF")
	}
	return pdf, nil
}
