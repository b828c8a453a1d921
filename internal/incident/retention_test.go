package incident_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestClosedIncidentTextsErasedAfterRetention: on PostgreSQL and local-kms, the
// sweep crypto-erases the texts of an incident closed longer than the
// retention, with evidence that verifies, and leaves an open incident and a
// recently closed one alone; a second sweep does nothing; the report still
// renders, saying what was erased and when.
func TestClosedIncidentTextsErasedAfterRetention(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := t0
	s.Now = func() time.Time { return now }
	s.TextRetention = 17532 * time.Hour

	declare := func(id string, at time.Time) {
		t.Helper()
		if _, err := s.Declare(ctx, incident.Declaration{ID: id, WorkflowID: "incident-" + id, Title: "Title " + marker,
			Summary: "Summary " + marker, Severity: "high", ReportedBy: "U0OPS", DetectedAt: at.Add(-time.Hour), DeclaredAt: at,
			Stage: "triage", AmazonDueAt: at.Add(23 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	closeAt := func(id string, at time.Time) {
		t.Helper()
		if _, err := s.Record(ctx, incident.Event{IncidentID: id, Key: "incident-" + id + "/closed", Kind: "closed", Actor: "U0DPO",
			At: at, Stage: "lessons-learned", Outcome: incident.OutcomeResolved}); err != nil {
			t.Fatal(err)
		}
	}
	declare("inc-old", t0)
	// A note sealed under the incident's key (before free_texts) goes with the key.
	if _, err := s.Record(ctx, incident.Event{IncidentID: "inc-old", Key: "incident-inc-old/stage-advanced/1", Kind: "stage-advanced",
		Actor: "U0OPS", At: t0, Stage: "containment", Note: "note about " + marker}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendAmazon(ctx, &countingMailer{}, "inc-old", "security@amazon.example", "Sent text "+marker, "U0DPO",
		"incident-inc-old/sent-amazon", incident.Notice{}); err != nil {
		t.Fatal(err)
	}
	closeAt("inc-old", t0.Add(time.Hour))
	declare("inc-open", t0)
	declare("inc-recent", t0)
	closeAt("inc-recent", t0.AddDate(1, 8, 0))

	// What could open the texts: the wrapped key and the ciphertexts.
	var wrapped, titleSealed, notificationSealed []byte
	if err := s.Pool.QueryRow(ctx, `SELECT k.wrapped_key, i.title_sealed, i.amazon_text_sealed FROM incidents i
		JOIN incident_keys k USING (incident_id) WHERE incident_id = 'inc-old'`).Scan(&wrapped, &titleSealed, &notificationSealed); err != nil ||
		len(wrapped) == 0 || len(titleSealed) == 0 || len(notificationSealed) == 0 {
		t.Fatalf("before erasure: %v", err)
	}

	now = t0.Add(time.Hour + s.TextRetention - time.Second)
	if n, more, err := s.EraseTextsDue(ctx, 10); err != nil || n != 0 || more {
		t.Fatalf("before the retention: erased %d (more %v), %v", n, more, err)
	}

	// Years later: only the incident closed longer than the retention ago.
	now = t0.Add(time.Hour + s.TextRetention + time.Hour)
	if n, more, err := s.EraseTextsDue(ctx, 10); err != nil || n != 1 || more {
		t.Fatalf("sweep: erased %d (more %v), %v; want 1", n, more, err)
	}
	if n, _, err := s.EraseTextsDue(ctx, 10); err != nil || n != 0 {
		t.Fatalf("second sweep: erased %d, %v; want nothing", n, err)
	}

	var sealed, keyBytes int
	var keyErased, textsErased *time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT num_nonnulls(title_sealed, summary_sealed, amazon_text_sealed), texts_erased_at,
		length(k.wrapped_key), k.erased_at FROM incidents JOIN incident_keys k USING (incident_id) WHERE incident_id = 'inc-old'`).
		Scan(&sealed, &textsErased, &keyBytes, &keyErased); err != nil {
		t.Fatal(err)
	}
	if sealed != 0 || keyBytes != 0 || textsErased == nil || keyErased == nil || !textsErased.Equal(now) {
		t.Fatalf("after erasure: %d sealed texts, %d key bytes, erased %v/%v", sealed, keyBytes, textsErased, keyErased)
	}
	if _, err := s.Record(ctx, incident.Event{IncidentID: "inc-old", Key: "incident-inc-old/late-note", Kind: "note", Actor: "U0OPS",
		At: now, Note: "late " + marker}); !errors.Is(err, incident.ErrTextsErased) || strings.Contains(err.Error(), marker) {
		t.Fatalf("a note under an erased key: %v", err)
	}

	// 24 months of 730.5 days, counted from closing at 10:00: 2028 is a leap year.
	day := now.Format(time.DateOnly)
	if day != "2028-11-30" {
		t.Fatalf("erased on %s", day)
	}
	for id, want := range map[string]string{"inc-open": "Title " + marker, "inc-recent": "Title " + marker, "inc-old": "title erased on " + day} {
		inc, err := s.Get(ctx, id)
		if err != nil || inc.Title != want {
			t.Fatalf("%s: title %q, %v; want %q", id, inc.Title, err, want)
		}
	}

	rep, err := s.Report(ctx, "inc-old", now)
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	for _, want := range []string{"title erased on " + day, "notification text erased on " + day, "note: erased on " + day,
		"| texts-erased | retention-sweep |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, marker) || strings.Contains(md, "MISSING") {
		t.Errorf("report after erasure:\n%s", md)
	}
	if _, err := rep.PDF(); err != nil {
		t.Fatal(err)
	}

	recs, err := evidence.Get(ctx, s.Pool, "incident-inc-old", incident.EvidenceKindTextsErased)
	if err != nil || len(recs) != 1 {
		t.Fatalf("evidence: %d entries, %v", len(recs), err)
	}
	for _, want := range []string{`"closedAt":"2026-12-01T10:00:00Z"`, `"texts":["title","summary","amazon-notification"]`, `"retention":"17532h0m0s"`} {
		if !strings.Contains(string(recs[0].Body), want) {
			t.Errorf("evidence body lacks %s: %s", want, recs[0].Body)
		}
	}
	vr, err := evidence.Verify(ctx, s.Pool, nil)
	if err != nil || !vr.OK() {
		t.Fatalf("chain: %+v %v", vr.FirstBroken, err)
	}

	// The only copies of the marker left anywhere are the other incidents'
	// ciphertexts and the old incident's legacy note, whose key is gone.
	var dump string
	if err := s.Pool.QueryRow(ctx, `SELECT string_agg(t::text, ' ') FROM (
		SELECT i::text AS t FROM incidents i UNION ALL SELECT k::text FROM incident_keys k
		UNION ALL SELECT l::text FROM incident_timeline l UNION ALL SELECT e::text FROM evidence_log e) x`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, marker) {
		t.Fatal("the marker is in plaintext in the database")
	}
	var copies int
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM incident_keys WHERE position($1::bytea IN wrapped_key) > 0)
		+ (SELECT count(*) FROM incidents WHERE title_sealed = $2 OR amazon_text_sealed = $3)`, wrapped, titleSealed, notificationSealed).
		Scan(&copies); err != nil || copies != 0 {
		t.Fatalf("%d copies of the old key or ciphertexts are left (%v)", copies, err)
	}

	// The auditor sees that and when the texts went, and nothing of them.
	auditor, err := pgxpool.New(ctx, testenv.AsRole(t, s.Pool.Config().ConnConfig.ConnString(), store.AuditorRole))
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	var seen *time.Time
	if err := auditor.QueryRow(ctx, `SELECT texts_erased_at FROM incidents WHERE incident_id = 'inc-old'`).Scan(&seen); err != nil || seen == nil {
		t.Fatalf("auditor: %v %v", seen, err)
	}
}
