package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/taxupload"
)

func TestCancellationAfterTheInvoiceGetsAFullCreditNoteBeforeThePurge(t *testing.T) {
	r := newRun(t)
	r.at(10*time.Hour, func() { r.signal(SignalCancelled, map[string]string{"reason": "buyer-cancelled"}) })
	res := r.execute(input())
	require.Equal(t, PurgeReasonCancelled, res.PurgeReason)
	require.Equal(t, []activities.CreditNoteInput{{AmazonOrderID: testOrder, SourceID: "cancellation", Reason: "cancelled",
		By: actor.CreditNotes, Full: true}}, r.credits)
	require.False(t, r.creditAfterPurge, "the credit note comes before the purge")
	st := r.status()
	require.Len(t, st.CreditNotes, 1)
	require.Equal(t, CreditNoteStatus{Number: "CRN-000001", InvoiceNumber: "INV-000001", SourceID: "cancellation",
		Currency: "GBP", TotalGrossMinor: 100, TotalVATMinor: 17, IssuedAt: t0.Add(10 * time.Hour)}, st.CreditNotes[0])
}

func TestOrderCancelledBeforeItsInvoiceGetsNoCreditNote(t *testing.T) {
	r := newRun(t)
	r.facts.Cancelled = true
	r.execute(input())
	require.Empty(t, r.credits)
}

func TestRefundSignalsIssueOneCreditNoteEachAndRepeatsNothing(t *testing.T) {
	r := newRun(t)
	partial := map[string]any{"refundId": "R-1", "reason": "damaged", "by": "dpo",
		"lines": []map[string]any{{"orderItemId": "11", "quantity": 1}, {"orderItemId": "12", "amount": "2.50"}}}
	r.at(1*time.Hour, func() { r.signal(SignalRefund, partial) })
	r.at(2*time.Hour, func() { r.signal(SignalRefund, partial) }) // the same refund again
	r.at(3*time.Hour, func() {
		r.signal(SignalRefund, map[string]any{"refundId": "R-1", "reason": "damaged", "by": "mallory", "full": true})
	})
	r.at(4*time.Hour, func() {
		r.signal(SignalRefund, map[string]any{"refundId": "R-2", "reason": "free text", "by": "dpo", "full": true})
	})
	r.at(5*time.Hour, func() {
		r.signal(SignalRefund, map[string]any{"refundId": "R-3", "reason": "goodwill", "by": "dpo", "full": true})
	})
	r.at(6*time.Hour, func() { r.signal(SignalPurgeNow, map[string]string{"reason": "no-longer-needed", "by": "dpo"}) })
	r.execute(input())
	require.Equal(t, []activities.CreditNoteInput{
		{AmazonOrderID: testOrder, SourceID: "refund/R-1", Reason: "damaged", By: "dpo",
			Lines: []activities.CreditNoteLine{{OrderItemID: "11", Quantity: 1}, {OrderItemID: "12", AmountMinor: 250}}},
		{AmazonOrderID: testOrder, SourceID: "refund/R-3", Reason: "goodwill", By: "dpo", Full: true},
	}, r.credits)
	st := r.status()
	require.Len(t, st.CreditNotes, 2)
	require.Len(t, st.RejectedSignals, 2)
	require.Contains(t, st.RejectedSignals[0].Error, `"by" is not a configured operator`)
	require.Contains(t, st.RejectedSignals[1].Error, `"reason" must be one of`)
}

func TestRefundBeforeTheInvoiceWaitsForIt(t *testing.T) {
	r := newRun(t)
	r.at(0, func() {
		r.signal(SignalRefund, map[string]any{"refundId": "R-9", "reason": "goodwill", "by": "dpo", "full": true})
	})
	r.at(time.Hour, func() { r.signal(SignalPurgeNow, map[string]string{"reason": "no-longer-needed", "by": "dpo"}) })
	r.execute(input())
	require.Equal(t, 1, r.invoices)
	require.Len(t, r.credits, 1)
	require.Len(t, r.status().CreditNotes, 1)
}

func TestRefusedCreditNoteIsRecordedAndNeverStopsThePurge(t *testing.T) {
	r := newRun(t)
	r.creditErr = temporal.NewNonRetryableApplicationError("issue credit note: credits more than is left of the invoiced amount",
		activities.ErrCreditNoteRefused, nil)
	r.at(time.Hour, func() {
		r.signal(SignalRefund, map[string]any{"refundId": "R-1", "reason": "goodwill", "by": "dpo", "full": true})
	})
	r.at(2*time.Hour, func() { r.signal(SignalCancelled, map[string]string{"reason": "buyer-cancelled"}) })
	res := r.execute(input())
	require.Equal(t, PurgeReasonCancelled, res.PurgeReason)
	require.Len(t, r.credits, 2)
	st := r.status()
	require.Empty(t, st.CreditNotes)
	require.Len(t, st.RejectedSignals, 1)
	require.Contains(t, st.RejectedSignals[0].Error, "credits more than is left")
}

func TestRefundUpdateAnswersWithTheCreditNoteOrWhyNot(t *testing.T) {
	r := newRun(t)
	type answer struct {
		st       OrderStatus
		rejected error
		failed   error
		done     bool
	}
	answers := make([]answer, 3)
	ask := func(at time.Duration, i int, payload map[string]any) {
		r.at(at, func() {
			r.env.UpdateWorkflow(UpdateRefund, "", &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { answers[i].rejected, answers[i].done = err, true },
				OnComplete: func(v any, err error) {
					answers[i].failed, answers[i].done = err, true
					if err == nil {
						answers[i].st = v.(OrderStatus)
					}
				},
			}, payload)
		})
	}
	ask(time.Hour, 0, map[string]any{"refundId": "R-1", "reason": "goodwill", "by": "dpo", "full": true})
	ask(2*time.Hour, 1, map[string]any{"refundId": "R-2", "reason": "goodwill", "by": "dpo", "full": false})
	ask(3*time.Hour, 2, map[string]any{"refundId": "R-1", "reason": "goodwill", "by": "dpo", "full": true})
	r.at(4*time.Hour, func() { r.signal(SignalPurgeNow, map[string]string{"reason": "no-longer-needed", "by": "dpo"}) })
	r.execute(input())
	for i, a := range answers {
		require.True(t, a.done, "update %d never answered", i)
	}
	require.NoError(t, answers[0].rejected)
	require.NoError(t, answers[0].failed)
	require.Equal(t, "CRN-000001", answers[0].st.CreditNotes[0].Number)
	require.ErrorContains(t, answers[1].rejected, `field "full" must be true`)
	require.NoError(t, answers[2].failed)
	require.Len(t, answers[2].st.CreditNotes, 1, "a repeated refund answers with the note issued first")
	require.Len(t, r.credits, 1)
	require.Empty(t, r.status().RejectedSignals)
}

func TestRefundUpdateAtThePurgeStillGetsItsAnswer(t *testing.T) {
	r := newRun(t)
	var answered bool
	var failed error
	r.at(time.Hour, func() {
		r.signal(SignalPurgeNow, map[string]string{"reason": "no-longer-needed", "by": "dpo"})
		r.env.UpdateWorkflow(UpdateRefund, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { failed, answered = err, true },
			OnComplete: func(_ any, err error) { failed, answered = err, true },
		}, map[string]any{"refundId": "R-7", "reason": "goodwill", "by": "dpo", "full": true})
	})
	r.execute(input())
	require.True(t, answered)
	require.NoError(t, failed)
	require.Len(t, r.credits, 1)
}

// With uploads on, each credit note goes to Amazon like the invoice: a run
// sealed at level 4 starts its upload without a version marker, a run sealed
// before asks GetVersion and (recorded before the change) starts none.
func TestCreditNotesGoToAmazonLikeTheInvoice(t *testing.T) {
	for _, level := range []int{activities.SealLevel, 3} {
		r := newRun(t)
		r.facts.SealLevel = level
		r.invoice = &activities.InvoiceRef{Number: "INV-000001", Kind: "full", Upload: true}
		var asked []string
		r.env.OnGetVersion(mock.Anything, workflow.DefaultVersion, 1).Return(func(id string, _, _ workflow.Version) workflow.Version {
			asked = append(asked, id)
			return workflow.DefaultVersion
		}).Maybe()
		r.at(10*time.Hour, func() { r.signal(SignalCancelled, map[string]string{"reason": "buyer-cancelled"}) })
		r.execute(input())
		invoiceUpload := activities.TaxDocumentInput{AmazonOrderID: testOrder, DocumentNumber: "INV-000001", DocumentType: spapi.DocumentTypeInvoice}
		st := r.status()
		require.Len(t, st.CreditNotes, 1)
		if level == activities.SealLevel {
			require.NotContains(t, asked, versionUploadCreditNotes, "sealed at level 4: no version marker")
			require.Equal(t, []activities.TaxDocumentInput{invoiceUpload,
				{AmazonOrderID: testOrder, DocumentNumber: "CRN-000001", DocumentType: spapi.DocumentTypeCreditNote}}, r.uploads)
			require.Equal(t, &InvoiceUpload{WorkflowID: "tax-document-upload-CRN-000001", State: taxupload.StateSubmitting}, st.CreditNotes[0].Upload)
			continue
		}
		require.Contains(t, asked, versionUploadCreditNotes)
		require.Equal(t, []activities.TaxDocumentInput{invoiceUpload}, r.uploads, "a run that uploaded no credit note keeps uploading none")
		require.Nil(t, st.CreditNotes[0].Upload)
	}
}
