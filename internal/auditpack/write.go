package auditpack

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/plusranger/dpp/internal/evidence"
)

// Files of a pack directory.
const (
	ReportJSON       = "report.json"
	ReportPDF        = "report.pdf"
	EvidenceJSONL    = "evidence.jsonl"
	VerificationJSON = "verification.json"
)

// Entry is one line of evidence.jsonl: an evidence record exactly as hashed
// (body verbatim), with the hashes in hex and the signature in base64.
type Entry struct {
	Seq            int64           `json:"seq"`
	Kind           string          `json:"kind"`
	Subject        string          `json:"subject"`
	IdempotencyKey string          `json:"idempotencyKey"`
	RecordedAt     string          `json:"recordedAt"` // RFC 3339 with nanoseconds, UTC: the hashed form
	Body           json.RawMessage `json:"body"`
	PrevHash       string          `json:"prevHash"`
	Hash           string          `json:"hash"`
	Signature      string          `json:"signature"`
	SigningKeyID   string          `json:"signingKeyId"`
}

// ExportEntry is r as an evidence.jsonl line.
func ExportEntry(r evidence.Record) Entry {
	return Entry{Seq: r.Seq, Kind: r.Kind, Subject: r.Subject, IdempotencyKey: r.IdempotencyKey,
		RecordedAt: r.RecordedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), Body: r.Body,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
		Signature: base64.StdEncoding.EncodeToString(r.Signature), SigningKeyID: r.SigningKeyID}
}

// Record is the inverse of ExportEntry, for checking a pack.
func (e Entry) Record() (evidence.Record, error) {
	r := evidence.Record{Seq: e.Seq, Kind: e.Kind, Subject: e.Subject, IdempotencyKey: e.IdempotencyKey, Body: e.Body, SigningKeyID: e.SigningKeyID}
	var err error
	if r.RecordedAt, err = parseTime(e.RecordedAt); err != nil {
		return r, fmt.Errorf("seq %d: recordedAt: %w", e.Seq, err)
	}
	if r.PrevHash, err = hex.DecodeString(e.PrevHash); err != nil {
		return r, fmt.Errorf("seq %d: prevHash: %w", e.Seq, err)
	}
	if r.Hash, err = hex.DecodeString(e.Hash); err != nil {
		return r, fmt.Errorf("seq %d: hash: %w", e.Seq, err)
	}
	if r.Signature, err = base64.StdEncoding.DecodeString(e.Signature); err != nil {
		return r, fmt.Errorf("seq %d: signature: %w", e.Seq, err)
	}
	return r, nil
}

// Write writes the pack's four files into dir (created if missing).
func Write(dir string, p *Pack, recs []evidence.Record) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, b []byte) error {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	}
	report, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	ver, err := json.MarshalIndent(p.Verification, "", "  ")
	if err != nil {
		return err
	}
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	enc.SetEscapeHTML(false) // bodies go out byte for byte as they were hashed
	for _, r := range recs {
		if err := enc.Encode(ExportEntry(r)); err != nil {
			return err
		}
	}
	pdf, err := RenderPDF(p)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{ReportJSON, append(report, '\n')}, {VerificationJSON, append(ver, '\n')}, {EvidenceJSONL, lines.Bytes()}, {ReportPDF, pdf}} {
		if err := write(f.name, f.b); err != nil {
			return err
		}
	}
	return nil
}

// RenderPDF lays the pack out as a PDF: a cover with the verification, then one
// section per clause.
func RenderPDF(p *Pack) ([]byte, error) {
	d := fpdf.New("P", "mm", "A4", "")
	d.AddUTF8FontFromBytes("go", "", goregular.TTF)
	d.AddUTF8FontFromBytes("go", "B", gobold.TTF)
	d.SetMargins(15, 15, 15)
	d.SetAutoPageBreak(true, 15)
	d.AliasNbPages("")
	d.SetFooterFunc(func() {
		d.SetY(-12)
		d.SetFont("go", "", 8)
		d.CellFormat(0, 5, fmt.Sprintf("Audit pack %s to %s - page %d of {nb}", day(p.From), day(p.To.AddDate(0, 0, -1)), d.PageNo()), "", 0, "C", false, 0, "")
	})
	d.AddPage()
	line := func(style string, size, h float64, s string) {
		d.SetFont("go", style, size)
		d.MultiCell(0, h, s, "", "L", false)
	}
	kv := func(k, v string) {
		d.SetFont("go", "B", 9)
		d.CellFormat(max(45, d.GetStringWidth(k)+3), 5, k, "", 0, "L", false, 0, "")
		d.SetFont("go", "", 9)
		d.MultiCell(0, 5, v, "", "L", false)
	}
	line("B", 16, 8, "Audit pack: "+p.Policy)
	line("", 10, 5, fmt.Sprintf("Period: %s to %s (inclusive). Generated %s from the database and the evidence chain.",
		day(p.From), day(p.To.AddDate(0, 0, -1)), stamp(p.GeneratedAt)))
	d.Ln(2)
	v := p.Verification
	result := "intact"
	if !v.OK {
		result = "BROKEN: " + v.FirstBroken
	}
	kv("Chain verification:", result)
	kv("Entries verified:", fmt.Sprint(v.Entries))
	kv("Chain head:", v.Head)
	kv("Pinned keys:", strings.Join(v.PinnedKeys, ", "))
	kv("Period entries:", fmt.Sprintf("%d (seq %d to %d), in evidence.jsonl", v.PeriodEntries, v.FirstSeq, v.LastSeq))
	d.Ln(2)
	line("B", 11, 6, "Summary")
	for _, c := range p.Clauses {
		kv(c.Policy[:strings.Index(c.Policy+" ", " ")]+" "+c.ID+":", fmt.Sprintf("%s; %d evidence items, %d problems", c.Status, len(c.Items), len(c.Problems)))
	}
	for i, c := range p.Clauses {
		d.Ln(4)
		line("B", 13, 7, fmt.Sprintf("%d. %s", i+1, c.Policy))
		line("", 9, 4.5, "Requirement: "+c.Requirement)
		kv("Status:", c.Status)
		line("B", 10, 6, "Enforced by")
		for _, e := range c.EnforcedBy {
			line("", 9, 4.5, fmt.Sprintf("- %s %s: %s", e.Type, e.Name, e.Detail))
		}
		line("B", 10, 6, "Counts for the period")
		for _, n := range c.Counts {
			line("", 9, 4.5, fmt.Sprintf("- %s: %d", n.Name, n.Value))
		}
		items := func(title string, l []Item) {
			line("B", 10, 6, fmt.Sprintf("%s (%d)", title, len(l)))
			if len(l) == 0 {
				line("", 9, 4.5, "- none")
			}
			for _, it := range l {
				s := "- " + it.ID + ": " + it.What
				if !it.At.IsZero() {
					s += ", " + stamp(it.At)
				}
				if it.Seq > 0 {
					s += fmt.Sprintf(", evidence seq %d", it.Seq)
				}
				if it.Detail != "" {
					s += " (" + it.Detail + ")"
				}
				line("", 9, 4.5, s)
			}
		}
		items("Evidence", c.Items)
		items("Overdue or failed", c.Problems)
		for _, n := range c.Notes {
			line("", 9, 4.5, "Note: "+n)
		}
	}
	var buf bytes.Buffer
	if err := d.Output(&buf); err != nil {
		return nil, fmt.Errorf("audit pack PDF: %w", err)
	}
	return buf.Bytes(), nil
}

func day(t interface{ Format(string) string }) string { return t.Format("2006-01-02") }
