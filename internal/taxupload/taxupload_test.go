package taxupload_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/taxupload"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// newStore is a Store on a fresh migrated database, as the worker's role, with
// a signer sealed under local-kms.
func newStore(t *testing.T) *taxupload.Store {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.AsRole(t, testenv.Database(t), store.WorkerRole))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	v := testenv.VaultForTest(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	if err != nil {
		t.Fatal(err)
	}
	return &taxupload.Store{Pool: pool, Signer: signer}
}

const (
	order  = "205-1234567-7654321"
	number = "INV-000042"
)

// mustUpload returns a function that fails the test on an error and returns the upload.
func mustUpload(t *testing.T) func(*taxupload.Upload, error) *taxupload.Upload {
	return func(u *taxupload.Upload, err error) *taxupload.Upload {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
}

// Each submission is one row state: a retried activity (same run, same
// submission) finds its feed; the next submission or another run starts over;
// a final result writes its evidence once; an accepted document stays accepted.
func TestSubmissionsAreRecordedOnceEach(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	must := mustUpload(t)
	u := must(s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "run-1", 1))
	if u.State != taxupload.StateSubmitting || u.Attempts != 1 {
		t.Fatalf("first begin: %+v", u)
	}
	if err := s.RecordFeed(ctx, number, 1, "doc-1", "feed-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFeed(ctx, number, 1, "doc-2", "feed-2"); err == nil {
		t.Fatal("a second feed for the same submission was recorded")
	}
	u = must(s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "run-1", 1))
	if u.FeedID != "feed-1" || u.State != taxupload.StateProcessing || u.Attempts != 1 {
		t.Fatalf("retried begin: %+v", u)
	}
	transient := taxupload.Result{FeedID: "feed-1", Outcome: spapi.FeedOutcome{Transient: true, Codes: []string{spapi.FeedFatal}}}
	u = must(s.Finish(ctx, number, 1, transient))
	if u.State != taxupload.StateProcessing || u.ResultCode != spapi.FeedFatal || u.EvidenceSeq != 0 {
		t.Fatalf("transient: %+v", u)
	}

	u = must(s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "run-1", 2))
	if u.Attempts != 2 || u.FeedID != "" || u.State != taxupload.StateSubmitting {
		t.Fatalf("second submission: %+v", u)
	}
	if err := s.RecordFeed(ctx, number, 2, "doc-3", "feed-3"); err != nil {
		t.Fatal(err)
	}
	rejected := taxupload.Result{FeedID: "feed-3", Final: true,
		Outcome: spapi.FeedOutcome{Codes: []string{spapi.ResultInvalidInvoiceNumber}, Processed: 1, WithError: 1}}
	u = must(s.Finish(ctx, number, 2, rejected))
	if u.State != taxupload.StateRejected || u.EvidenceSeq == 0 || u.FinishedAt == nil || u.ResultCode != spapi.ResultInvalidInvoiceNumber {
		t.Fatalf("rejected: %+v", u)
	}
	again := must(s.Finish(ctx, number, 2, rejected))
	if again.EvidenceSeq != u.EvidenceSeq {
		t.Fatalf("finishing again wrote evidence %d, first %d", again.EvidenceSeq, u.EvidenceSeq)
	}
	if _, err := s.Finish(ctx, number, 2, taxupload.Result{FeedID: "feed-1", Final: true}); err == nil {
		t.Fatal("a result for another feed was taken")
	}

	// The operator's re-run is another run: a new submission.
	u = must(s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "run-2", 1))
	if u.Attempts != 3 || u.State != taxupload.StateSubmitting || u.FinishedAt != nil {
		t.Fatalf("re-run: %+v", u)
	}
	if err := s.RecordFeed(ctx, number, 3, "doc-4", "feed-4"); err != nil {
		t.Fatal(err)
	}
	u = must(s.Finish(ctx, number, 3, taxupload.Result{FeedID: "feed-4", Final: true,
		Outcome: spapi.FeedOutcome{Accepted: true, Processed: 1, Successful: 1}}))
	if u.State != taxupload.StateAccepted || u.ResultCode != "" {
		t.Fatalf("accepted: %+v", u)
	}
	u = must(s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "run-3", 1))
	if u.State != taxupload.StateAccepted || u.Attempts != 3 || u.FeedID != "feed-4" {
		t.Fatalf("an accepted document started again: %+v", u)
	}
	var kind, body string
	if err := s.Pool.QueryRow(ctx, `SELECT kind, convert_from(body, 'UTF8') FROM evidence_log WHERE seq = $1`, u.EvidenceSeq).Scan(&kind, &body); err != nil {
		t.Fatal(err)
	}
	if kind != taxupload.KindAccepted || !strings.Contains(body, `"feedId":"feed-4"`) || !strings.Contains(body, `"attempt":3`) {
		t.Fatalf("evidence %s %s", kind, body)
	}
	list, err := s.ForOrder(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].DocumentNumber != number {
		t.Fatalf("for order: %+v", list)
	}
}

func TestBadDocumentsAreRefusedNamingTheField(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for want, call := range map[string]func() error{
		"documentNumber must be": func() error {
			_, err := s.Begin(ctx, "INV 42; DROP", spapi.DocumentTypeInvoice, order, "r", 1)
			return err
		},
		"documentType must be Invoice or CreditNote": func() error {
			_, err := s.Begin(ctx, number, "Receipt", order, "r", 1)
			return err
		},
		"amazonOrderId must be": func() error { _, err := s.Begin(ctx, number, spapi.DocumentTypeInvoice, "", "r", 1); return err },
		"a workflow run and a submission number": func() error {
			_, err := s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "", 1)
			return err
		},
	} {
		err := call()
		if !errors.Is(err, taxupload.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	mustUpload(t)(s.Begin(ctx, number, spapi.DocumentTypeInvoice, order, "r", 1))
	if _, err := s.Begin(ctx, number, spapi.DocumentTypeCreditNote, order, "r", 2); !errors.Is(err, taxupload.ErrInvalid) {
		t.Fatalf("the same number as another document type: %v", err)
	}
	if _, err := s.Get(ctx, "INV-404"); !errors.Is(err, taxupload.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
}
