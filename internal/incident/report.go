package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/plusranger/dpp/internal/freetext"
)

// Report is an incident's report: its facts, the outcome of each deadline and
// the timeline, each entry with the evidence record that vouches for it.
type Report struct {
	Incident  Incident
	Timeline  []Entry
	Deadlines []DeadlineOutcome
	// EvidenceSeq maps a timeline entry's idempotency key to its evidence
	// record's sequence number (0: missing, which the report says).
	EvidenceSeq map[string]int64
}

// DeadlineOutcome is how one clock ended (or stands).
type DeadlineOutcome struct {
	Target string
	DueAt  time.Time
	DoneAt *time.Time
	// Outcome: met, missed (done late), breached (not done and past due), open.
	Outcome string
	Detail  string
}

// Report gathers the report of incident id from the database and the
// evidence log, at now.
func (s *Service) Report(ctx context.Context, id string, now time.Time) (Report, error) {
	inc, err := s.Get(ctx, id)
	if err != nil {
		return Report{}, err
	}
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		return Report{}, err
	}
	for i := range tl {
		if tl[i].HasNote && inc.TextsErasedAt != nil {
			// A note sealed under the incident's key went with it.
			tl[i].Note = Erased(*inc.TextsErasedAt)
		}
		if ref, ok := tl[i].Detail["noteRef"].(string); ok {
			sh, err := freetext.Read(ctx, s.Pool, s.Vault, ref)
			if err != nil {
				return Report{}, fmt.Errorf("incident %s: note: %w", id, err)
			}
			tl[i].Note = sh.String()
			delete(tl[i].Detail, "noteRef")
		}
	}
	r := Report{Incident: inc, Timeline: tl, EvidenceSeq: map[string]int64{}}
	rows, err := s.Pool.Query(ctx, `SELECT idempotency_key, seq FROM evidence_log WHERE subject = $1`, "incident-"+id)
	if err != nil {
		return Report{}, fmt.Errorf("incident %s: evidence: %w", id, err)
	}
	for rows.Next() {
		var k string
		var seq int64
		if err := rows.Scan(&k, &seq); err != nil {
			rows.Close()
			return Report{}, err
		}
		r.EvidenceSeq[k] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Report{}, err
	}
	amazon := DeadlineOutcome{Target: "Amazon (24 hours)", DueAt: inc.AmazonDueAt, DoneAt: inc.AmazonSentAt}
	if inc.AmazonMessageID != "" {
		amazon.Detail = "Message-ID " + inc.AmazonMessageID
	}
	r.Deadlines = append(r.Deadlines, outcome(amazon, inc.Outcome == OutcomeFalsePositive, now))
	if inc.ICODueAt != nil {
		var reported *time.Time
		for _, e := range tl {
			if e.Kind == "ico-reported" {
				at := e.At
				reported = &at
			}
		}
		ico := DeadlineOutcome{Target: "ICO (72 hours)", DueAt: *inc.ICODueAt, DoneAt: reported}
		if inc.ICOReference != "" {
			ico.Detail = "reference " + inc.ICOReference
		}
		r.Deadlines = append(r.Deadlines, outcome(ico, inc.Outcome == OutcomeFalsePositive, now))
	}
	return r, nil
}

func outcome(d DeadlineOutcome, falsePositive bool, now time.Time) DeadlineOutcome {
	switch {
	case d.DoneAt != nil && !d.DoneAt.After(d.DueAt):
		d.Outcome = "met"
	case d.DoneAt != nil:
		d.Outcome = "missed (done late)"
	case falsePositive:
		d.Outcome = "not needed (false positive)"
	case now.After(d.DueAt):
		d.Outcome = "breached"
	default:
		d.Outcome = "open"
	}
	return d
}

// heading starts a section of the PDF, leaving the body font at size.
func heading(p *fpdf.Fpdf, title string, size float64) {
	p.Ln(3)
	p.SetFont("go", "B", 12)
	p.CellFormat(0, 7, title, "", 1, "L", false, 0, "")
	p.SetFont("go", "", size)
}

func statusText(inc Incident) string {
	if inc.ClosedAt == nil {
		return "open"
	}
	if inc.TextsErasedAt != nil {
		return fmt.Sprintf("closed %s (%s); title, summary and notification text %s", stamp(*inc.ClosedAt), inc.Outcome, Erased(*inc.TextsErasedAt))
	}
	return fmt.Sprintf("closed %s (%s)", stamp(*inc.ClosedAt), inc.Outcome)
}

// noteText is an entry's note as the report shows it.
func noteText(e Entry) string {
	switch {
	case e.Note != "":
		return " note: " + e.Note
	case e.HasNote:
		return " (note sealed)"
	}
	return ""
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// detailText renders an entry's detail as key=value pairs in a fixed order.
func detailText(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := d[k]
		if s, ok := v.(string); ok {
			parts = append(parts, k+"="+s)
			continue
		}
		b, _ := json.Marshal(v)
		parts = append(parts, k+"="+string(b))
	}
	return strings.Join(parts, " ")
}

// Markdown renders the report.
func (r Report) Markdown() string {
	inc := r.Incident
	var b strings.Builder
	fmt.Fprintf(&b, "# Incident %s\n\n", inc.ID)
	fmt.Fprintf(&b, "**%s**\n\n", inc.Title)
	if inc.Summary != "" {
		fmt.Fprintf(&b, "%s\n\n", inc.Summary)
	}
	status := statusText(inc)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| Severity | %s |\n| Personal data involved | %t |\n| Detected | %s |\n| Declared | %s by %s |\n| Stage | %s |\n| Status | %s |\n\n",
		inc.Severity, inc.PersonalData, stamp(inc.DetectedAt), stamp(inc.DeclaredAt), inc.ReportedBy, inc.Stage, status)
	b.WriteString("## Deadlines\n\n| Notification | Due | Done | Outcome | Detail |\n|---|---|---|---|---|\n")
	for _, d := range r.Deadlines {
		done := "-"
		if d.DoneAt != nil {
			done = stamp(*d.DoneAt)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", d.Target, stamp(d.DueAt), done, d.Outcome, d.Detail)
	}
	b.WriteString("\n## Timeline\n\n| # | When | What | Who | Detail | Evidence |\n|---|---|---|---|---|---|\n")
	for _, e := range r.Timeline {
		ev := "MISSING"
		if seq := r.EvidenceSeq[e.Key]; seq > 0 {
			ev = fmt.Sprintf("seq %d", seq)
		}
		detail := detailText(e.Detail) + noteText(e)
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", e.Seq, stamp(e.At), e.Kind, e.Actor, strings.ReplaceAll(detail, "|", "/"), ev)
	}
	b.WriteString("\nEvery timeline entry is in the signed evidence chain (`starter evidence verify` checks it).\n")
	return b.String()
}

// PDF renders the report as a PDF, with the Go fonts embedded.
func (r Report) PDF() ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.AddUTF8FontFromBytes("go", "", goregular.TTF)
	p.AddUTF8FontFromBytes("go", "B", gobold.TTF)
	p.SetMargins(15, 15, 15)
	p.AddPage()
	inc := r.Incident
	p.SetFont("go", "B", 16)
	p.MultiCell(0, 8, "Incident "+inc.ID, "", "L", false)
	p.SetFont("go", "B", 11)
	p.MultiCell(0, 6, inc.Title, "", "L", false)
	p.SetFont("go", "", 10)
	if inc.Summary != "" {
		p.MultiCell(0, 5, inc.Summary, "", "L", false)
	}
	p.Ln(2)
	status := statusText(inc)
	for _, kv := range [][2]string{{"Severity", inc.Severity}, {"Personal data involved", fmt.Sprint(inc.PersonalData)},
		{"Detected", stamp(inc.DetectedAt)}, {"Declared", stamp(inc.DeclaredAt) + " by " + inc.ReportedBy},
		{"Stage", inc.Stage}, {"Status", status}} {
		p.SetFont("go", "B", 10)
		p.CellFormat(50, 5, kv[0], "", 0, "L", false, 0, "")
		p.SetFont("go", "", 10)
		p.CellFormat(0, 5, kv[1], "", 1, "L", false, 0, "")
	}
	heading(p, "Deadlines", 9)
	for _, d := range r.Deadlines {
		done := "not done"
		if d.DoneAt != nil {
			done = "done " + stamp(*d.DoneAt)
		}
		p.MultiCell(0, 5, fmt.Sprintf("%s: due %s, %s: %s. %s", d.Target, stamp(d.DueAt), done, d.Outcome, d.Detail), "", "L", false)
	}
	heading(p, "Timeline", 8)
	for _, e := range r.Timeline {
		ev := "evidence MISSING"
		if seq := r.EvidenceSeq[e.Key]; seq > 0 {
			ev = fmt.Sprintf("evidence seq %d", seq)
		}
		line := fmt.Sprintf("%d. %s  %s by %s  %s  [%s]", e.Seq, stamp(e.At), e.Kind, e.Actor, detailText(e.Detail)+noteText(e), ev)
		p.MultiCell(0, 4, line, "", "L", false)
	}
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		return nil, fmt.Errorf("incident %s: report PDF: %w", inc.ID, err)
	}
	return buf.Bytes(), nil
}
