package app_test

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/auditpack"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/workflows"
)

// noteMarker is a name someone wrote in a duty's note although asked not to.
const noteMarker = "Hieronymus Notemarker"

// On the real stack (production wiring, local-kms, Temporal, PostgreSQL): a
// duty's completion note is sealed before the update is sent, so neither the
// duty's history (as stored or decoded), nor the evidence log, nor the logs,
// nor the database in plaintext ever hold it; the text opens while it exists;
// a refused completion's note is erased at once; past its retention the daily
// sweep erases the kept one, and the auditor's pack then shows the erasure and
// holds no trace of the words, with the chain intact.
func TestDutyNoteSealedOutsideHistoryAndErased(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	tc := s.app.Temporal
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cal-note-" + t.Name(), TaskQueue: s.app.Config.TaskQueue},
		workflows.ComplianceCalendarName, workflows.ComplianceCalendarInput{Duty: calendar.IncidentPlanReview})
	s.must(err, "start calendar")
	var cal workflows.ComplianceCalendarResult
	s.must(run.Get(ctx, &cal), "calendar")

	st, err := s.app.CompleteDuty(ctx, cal.WorkflowID, workflows.CompleteDutyRequest{By: "dpo", Note: "reviewed with " + noteMarker})
	s.must(err, "complete the duty")
	if st.Completed == nil || st.Completed.EvidenceSeq == 0 {
		t.Fatalf("not completed: %+v", st)
	}
	// A second completion is refused; its note must not linger.
	if _, err := s.app.CompleteDuty(ctx, cal.WorkflowID, workflows.CompleteDutyRequest{By: "dpo", Note: "again " + noteMarker}); err == nil {
		t.Fatal("a second completion was accepted")
	}
	var stored, erased int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*), count(erased_at) FROM free_texts WHERE subject = $1`, cal.WorkflowID).Scan(&stored, &erased), "free texts")
	if stored != 2 || erased != 1 {
		t.Fatalf("free texts of the duty: %d stored, %d erased; want 2 and 1 (the refused one)", stored, erased)
	}

	recs, err := evidence.Get(ctx, s.app.Pool, cal.WorkflowID, calendar.KindDutyCompleted)
	s.must(err, "evidence")
	if len(recs) != 1 {
		t.Fatalf("%d completion entries", len(recs))
	}
	var body struct {
		NoteRef string `json:"noteRef"`
	}
	s.must(json.Unmarshal(recs[0].Body, &body), "body")
	sh, err := s.app.FreeTexts().Read(ctx, body.NoteRef)
	s.must(err, "read the note")
	if sh.String() != "reviewed with "+noteMarker {
		t.Fatalf("the note opens to %q", sh.String())
	}

	assertNoNote := func(where string, b []byte) {
		t.Helper()
		for _, word := range strings.Fields(noteMarker) {
			if strings.Contains(string(b), word) {
				t.Fatalf("the note is in %s", where)
			}
		}
	}
	evs := s.events(ctx, cal.WorkflowID)
	assertNoNote("the duty's history as stored", wire(t, evs))
	assertNoNote("the duty's history decoded", s.decodedWire(evs))
	assertNoNote("the database", s.pgDump())

	// Thirteen months on, the daily sweep's activity erases it.
	later := s.app.RetentionActivities()
	later.Texts.Now = func() time.Time { return time.Now().AddDate(0, freetext.RetentionMonths, 1) }
	res, err := later.SweepTaxRecords(ctx, activities.SweepInput{BatchSize: 10})
	s.must(err, "sweep")
	if res.TextsErased != 1 {
		t.Fatalf("the sweep erased %d texts", res.TextsErased)
	}
	if sh, err = s.app.FreeTexts().Read(ctx, body.NoteRef); err != nil || !strings.HasPrefix(sh.String(), "erased on ") {
		t.Fatalf("after the sweep the note reads %q, %v", sh.String(), err)
	}

	pub := s.app.Signer.PublicKey()
	pack, packed, err := auditpack.Build(ctx, s.app.Pool, auditpack.Options{From: time.Now().AddDate(0, 0, -1), To: time.Now().AddDate(0, freetext.RetentionMonths, 2),
		Keys: map[string]ed25519.PublicKey{evidence.KeyIDFor(pub): pub}, Now: time.Now()})
	s.must(err, "audit pack")
	if !pack.Verification.OK {
		t.Fatalf("the chain after erasure: %s", pack.Verification.FirstBroken)
	}
	dir := t.TempDir()
	s.must(auditpack.Write(dir, pack, packed), "write the pack")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		s.must(err, "read %s", f)
		assertNoNote("the audit pack's "+filepath.Base(f), b)
	}
	found := false
	for _, c := range pack.Clauses {
		for _, it := range c.Items {
			found = found || (it.What == freetext.KindErased && strings.Contains(it.Detail, "ref="+body.NoteRef))
		}
	}
	if !found {
		t.Fatal("the pack does not show the note's erasure")
	}
	assertNoNote("the database after erasure", s.pgDump())
	assertNoNote("the logs", []byte(s.logs.String()))
}
