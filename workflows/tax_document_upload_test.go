package workflows

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/taxupload"
)

const testInvoice = "INV-000042"

// uploadRun is a TaxDocumentUpload with its activities mocked: Amazon's
// verdicts come from verdicts, one per feed.
type uploadRun struct {
	submits  []activities.TaxDocumentInput
	awaits   []activities.TaxDocumentFeedInput
	verdicts []string // state per feed: accepted, rejected, submitting (transient)
	before   string   // what SubmitTaxDocument finds recorded: "" or accepted
}

func runUpload(t *testing.T, u *uploadRun) (*TaxDocumentUploadStatus, time.Duration) {
	t.Helper()
	env := newTestEnv(testOptions.TaxDocumentUpload, TaxDocumentUploadName, TaxDocumentUploadWorkflowID(testInvoice))
	a := registerActivities(env)
	env.OnActivity(a.SubmitTaxDocument, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.TaxDocumentInput) (*activities.TaxDocumentSubmission, error) {
			u.submits = append(u.submits, in)
			if u.before != "" {
				return &activities.TaxDocumentSubmission{State: u.before, FeedID: "F0", Attempt: 1}, nil
			}
			return &activities.TaxDocumentSubmission{State: taxupload.StateProcessing, FeedID: "F" + string(rune('0'+len(u.submits))),
				Attempt: len(u.submits)}, nil
		}).Maybe()
	env.OnActivity(a.AwaitTaxDocumentFeed, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.TaxDocumentFeedInput) (*activities.TaxDocumentFeedResult, error) {
			u.awaits = append(u.awaits, in)
			v := u.verdicts[len(u.awaits)-1]
			if v == taxupload.StateSubmitting && in.LastAttempt {
				v = taxupload.StateRejected
			}
			res := &activities.TaxDocumentFeedResult{State: v, FeedID: in.FeedID, EvidenceSeq: int64(len(u.awaits))}
			if v != taxupload.StateAccepted {
				res.ResultCode = spapi.ResultInternalError
			}
			return res, nil
		}).Maybe()
	env.ExecuteWorkflow(TaxDocumentUploadName, TaxDocumentUploadInput{AmazonOrderID: testOrder, DocumentNumber: testInvoice,
		DocumentType: spapi.DocumentTypeInvoice})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var st TaxDocumentUploadStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	v, err := env.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	var queried TaxDocumentUploadStatus
	require.NoError(t, v.Get(&queried))
	require.Equal(t, st, queried, "the status query answers what the run returned")
	return &st, env.Now().Sub(t0)
}

func TestUploadAcceptedAtFirstSubmission(t *testing.T) {
	u := &uploadRun{verdicts: []string{taxupload.StateAccepted}}
	st, _ := runUpload(t, u)
	require.Equal(t, taxupload.StateAccepted, st.State)
	require.Equal(t, "F1", st.FeedID)
	require.Equal(t, 1, st.Attempts)
	require.Len(t, u.submits, 1)
	require.Equal(t, 1, u.submits[0].Attempt)
}

func TestTransientRejectionsResubmitWithBackoffThenGiveUp(t *testing.T) {
	n := DefaultTaxUploadOptions.MaxAttempts
	u := &uploadRun{}
	for range n {
		u.verdicts = append(u.verdicts, taxupload.StateSubmitting)
	}
	st, took := runUpload(t, u)
	require.Equal(t, taxupload.StateRejected, st.State)
	require.Equal(t, spapi.ResultInternalError, st.ResultCode)
	require.Len(t, u.submits, n, "bounded")
	require.Equal(t, n, st.Attempts)
	for i, a := range u.awaits {
		require.Equal(t, i == n-1, a.LastAttempt, "only the last submission's transient rejection is final")
	}
	// 1 + 2 + 4 + 8 minutes between the five submissions.
	require.Equal(t, 15*time.Minute, took)
}

func TestTransientRejectionThenAccepted(t *testing.T) {
	u := &uploadRun{verdicts: []string{taxupload.StateSubmitting, taxupload.StateAccepted}}
	st, took := runUpload(t, u)
	require.Equal(t, taxupload.StateAccepted, st.State)
	require.Equal(t, 2, st.Attempts)
	require.Equal(t, "F2", st.FeedID)
	require.Equal(t, time.Minute, took)
}

func TestAnAcceptedDocumentIsNotSubmittedAgain(t *testing.T) {
	u := &uploadRun{before: taxupload.StateAccepted}
	st, _ := runUpload(t, u)
	require.Equal(t, taxupload.StateAccepted, st.State)
	require.Empty(t, u.awaits, "nothing to wait for")
}

func TestLifecycleStartsTheUploadOfAnIssuedInvoice(t *testing.T) {
	r := newRun(t)
	r.facts.SealLevel = activities.SealLevel
	r.invoice = &activities.InvoiceRef{Number: "INV-000007", Kind: "full", Upload: true}
	asked := 0
	r.env.OnGetVersion(mock.Anything, workflow.DefaultVersion, 1).Return(func(string, workflow.Version, workflow.Version) workflow.Version {
		asked++
		return 1
	}).Maybe()
	r.at(time.Hour, func() {
		st := r.status()
		require.Equal(t, &InvoiceUpload{WorkflowID: "tax-document-upload-INV-000007", State: taxupload.StateSubmitting}, st.InvoiceUpload)
	})
	r.execute(input())
	require.Equal(t, []activities.TaxDocumentInput{{AmazonOrderID: testOrder, DocumentNumber: "INV-000007",
		DocumentType: spapi.DocumentTypeInvoice}}, r.uploads)
	require.Zero(t, asked, "sealed at level 2: no version marker")
}

func TestNoUploadWhenOffOrInvoicedByAmazon(t *testing.T) {
	for name, inv := range map[string]*activities.InvoiceRef{
		"off":       {Number: "INV-000007", Kind: "full"},
		"by-amazon": {Kind: activities.InvoiceByAmazon, Upload: true},
	} {
		r := newRun(t)
		r.invoice = inv
		r.execute(input())
		require.Empty(t, r.uploads, name)
		require.Nil(t, r.status().InvoiceUpload, name)
	}
}

func TestARunSealedBeforeLevel2AsksGetVersionForTheUpload(t *testing.T) {
	r := newRun(t)
	r.facts.SealLevel = 1
	r.invoice = &activities.InvoiceRef{Number: "INV-000007", Kind: "full", Upload: true}
	var asked []string
	r.env.OnGetVersion(mock.Anything, workflow.DefaultVersion, 1).Return(func(id string, _, _ workflow.Version) workflow.Version {
		asked = append(asked, id)
		return workflow.DefaultVersion // as in a history recorded before the change
	}).Maybe()
	r.execute(input())
	require.Contains(t, asked, versionUploadInvoice)
	require.Empty(t, r.uploads, "a run that had no upload keeps having none")
}

func TestBadUploadInputFailsAtOnceNamingTheField(t *testing.T) {
	for input, want := range map[string]string{
		`{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV-000042","documentType":"Receipt"}`: `field "documentType" must be "Invoice" or "CreditNote"`,
		`{"amazonOrderId":"205-1234567-7654321","documentType":"Invoice"}`:                               `field "documentNumber" is missing`,
		`{"amazonOrderId":"205-1234567-7654321","documentNumber":"INV-000007","documentType":"Invoice"}`: `documentNumber does not match the workflow ID`,
	} {
		env := newTestEnv(testOptions.TaxDocumentUpload, TaxDocumentUploadName, TaxDocumentUploadWorkflowID(testInvoice))
		registerActivities(env)
		env.ExecuteWorkflow(TaxDocumentUploadName, json.RawMessage(input))
		require.True(t, env.IsWorkflowCompleted())
		err := env.GetWorkflowError()
		require.Error(t, err, input)
		require.Contains(t, err.Error(), want)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr)
		require.Equal(t, ErrInvalidInput, appErr.Type())
	}
}
