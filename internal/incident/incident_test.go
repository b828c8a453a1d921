package incident_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/mail"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

const marker = "PIIMARKER7Q"

// countingMailer counts deliveries and can fail.
type countingMailer struct {
	sent int
	fail error
	last mail.Message
}

func (c *countingMailer) Send(_ context.Context, m mail.Message) (string, error) {
	if c.fail != nil {
		return "", c.fail
	}
	c.sent++
	c.last = m
	return "<" + m.MessageID + ">", nil
}

func newService(t *testing.T) *incident.Service {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.AsRole(t, testenv.Database(t), store.WorkerRole)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	v := testenv.VaultForTest(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	if err != nil {
		t.Fatal(err)
	}
	return &incident.Service{Pool: pool, Vault: v, Signer: signer}
}

// TestEveryStepOnceAndSealed: declaring, recording and sending are
// idempotent; texts are stored sealed; each timeline entry has its evidence.
func TestEveryStepOnceAndSealed(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	d := incident.Declaration{ID: "inc-1", WorkflowID: "incident-inc-1", Title: "Title " + marker, Summary: "Summary " + marker,
		Severity: "high", ReportedBy: "U0OPS", DetectedAt: now.Add(-time.Hour), DeclaredAt: now, Stage: "triage",
		AmazonDueAt: now.Add(23 * time.Hour)}
	for i, want := range []bool{true, false} {
		created, err := s.Declare(ctx, d)
		if err != nil || created != want {
			t.Fatalf("declaration %d: created %v, %v", i+1, created, err)
		}
	}
	e := incident.Event{IncidentID: "inc-1", Key: "incident-inc-1/stage-advanced/1", Kind: "stage-advanced", Actor: "U0OPS",
		At: now, Stage: "containment", Note: "note about " + marker, Detail: map[string]any{"stage": "containment"}}
	for i, want := range []bool{true, false} {
		if rec, err := s.Record(ctx, e); err != nil || rec != want {
			t.Fatalf("record %d: %v %v", i+1, rec, err)
		}
	}
	m := &countingMailer{fail: errors.New("mail: SMTP mail.example:587: connection failed")}
	if _, err := s.SendAmazon(ctx, m, "inc-1", "security@amazon.example", "", "U0DPO", "incident-inc-1/sent-amazon", incident.Notice{Contact: "dpo@x.example"}); err == nil {
		t.Fatal("a failed delivery reported success")
	}
	m.fail = nil
	first, err := s.SendAmazon(ctx, m, "inc-1", "security@amazon.example", "", "U0DPO", "incident-inc-1/sent-amazon", incident.Notice{Contact: "dpo@x.example"})
	if err != nil || first.Already || first.MessageID != "<incident-inc-1.amazon@dpp>" {
		t.Fatalf("send: %+v %v", first, err)
	}
	again, err := s.SendAmazon(ctx, m, "inc-1", "security@amazon.example", "other text", "U0CTO", "incident-inc-1/sent-amazon-2", incident.Notice{})
	if err != nil || !again.Already || m.sent != 1 || !again.At.Equal(first.At) {
		t.Fatalf("second send: %+v %v (sent %d)", again, err, m.sent)
	}
	if !strings.Contains(m.last.Body, "What happened: Title "+marker) || !strings.Contains(m.last.Body, "containment") ||
		m.last.Subject != "Security incident notification inc-1" {
		t.Fatalf("mail %+v", m.last)
	}
	inc, err := s.Get(ctx, "inc-1")
	if err != nil || inc.Title != d.Title || inc.Summary != d.Summary || inc.Stage != "containment" || inc.AmazonSentAt == nil {
		t.Fatalf("get: %+v %v", inc, err)
	}
	tl, err := s.Timeline(ctx, "inc-1")
	if err != nil || len(tl) != 3 || tl[0].Kind != "declared" || tl[1].Kind != "stage-advanced" || !tl[1].HasNote || tl[2].Kind != "notification-sent" {
		t.Fatalf("timeline %+v %v", tl, err)
	}
	var plain, evidenceRows int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM incidents WHERE position($1::bytea IN title_sealed) > 0
		OR position($1::bytea IN summary_sealed) > 0 OR position($1::bytea IN amazon_text_sealed) > 0`, []byte(marker)).Scan(&plain); err != nil || plain != 0 {
		t.Fatalf("plaintext in incidents: %d %v", plain, err)
	}
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log WHERE subject = 'incident-inc-1'
		AND body::text NOT LIKE '%'||$1||'%'`, marker).Scan(&evidenceRows); err != nil || evidenceRows != 3 {
		t.Fatalf("evidence records without the marker: %d, want 3 (%v)", evidenceRows, err)
	}
	// The worker may only append to the timeline.
	if _, err := s.Pool.Exec(ctx, `UPDATE incident_timeline SET actor = 'x'`); err == nil {
		t.Fatal("dpp_worker could rewrite the timeline")
	}
	if _, err := s.Get(ctx, "no-such"); !errors.Is(err, incident.ErrNotFound) {
		t.Fatalf("unknown incident: %v", err)
	}
}
