package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

const testOrder = "205-1234567-7654321"

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

const retention = 720 * time.Hour

// testOptions configure the workflows as DPP_OPERATORS=dpo,legal would.
var testOptions = Options{Operators: []string{"dpo", "legal"}}

type run struct {
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	facts    activities.OrderFacts
	purge    *activities.PurgeInput
	purgedAt time.Time
	invoices int
	seals    int
	// invoiceErr, when set, is what IssueInvoice fails with.
	invoiceErr error
	// invoice is what IssueInvoice returns (nil: a simplified invoice INV-000001).
	invoice *activities.InvoiceRef
	// uploads are the TaxDocumentUpload starts the lifecycle asked for.
	uploads []activities.TaxDocumentInput
	// records are the retention states written to the database, in order.
	records  []activities.RetentionRecord
	problems []activities.OrderProblemInput
	notes    []activities.NoteInput
	// credits are the credit notes asked of IssueCreditNote, repeats included;
	// creditErr, when set, is what it fails with.
	credits   []activities.CreditNoteInput
	creditErr error
	// creditAfterPurge: a credit note was asked for once the PII was purged.
	creditAfterPurge bool
}

func newRun(t *testing.T) *run {
	env := newTestEnv(testOptions.OrderLifecycle, OrderLifecycleName, OrderWorkflowID(testOrder))
	r := &run{t: t, env: env, facts: activities.OrderFacts{
		AmazonOrderID: testOrder, MarketplaceID: "A1F83G8C2ARO7P", PurchasedAt: t0,
		LatestDeliveryAt: t0.Add(72 * time.Hour), Currency: "GBP", GrandTotalMinor: 2399,
		SealedFields: 9, PIIRetention: retention,
	}}
	a := registerActivities(env)
	env.OnActivity(a.FetchAndSeal, mock.Anything, activities.FetchAndSealInput{AmazonOrderID: testOrder}).
		Return(func(context.Context, activities.FetchAndSealInput) (*activities.OrderFacts, error) {
			r.seals++
			f := r.facts
			return &f, nil
		}).Maybe()
	env.OnActivity(a.IssueInvoice, mock.Anything, activities.IssueInvoiceInput{AmazonOrderID: testOrder}).
		Return(func(context.Context, activities.IssueInvoiceInput) (*activities.InvoiceRef, error) {
			r.invoices++
			if r.invoiceErr != nil {
				return nil, r.invoiceErr
			}
			if r.invoice != nil {
				return r.invoice, nil
			}
			return &activities.InvoiceRef{Number: "INV-000001", Kind: "simplified", IssuedAt: env.Now()}, nil
		}).Maybe()
	env.OnActivity(a.StartTaxDocumentUpload, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.TaxDocumentInput) (bool, error) {
			r.uploads = append(r.uploads, in)
			return true, nil
		}).Maybe()
	env.OnActivity(a.RecordRetention, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.RetentionRecord) error {
			r.records = append(r.records, in)
			return nil
		}).Maybe()
	env.OnActivity(a.SealNote, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.NoteInput) error {
			r.notes = append(r.notes, in)
			return nil
		}).Maybe()
	env.OnActivity(a.RecordOrderProblem, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.OrderProblemInput) (*activities.OrderProblemResult, error) {
			r.problems = append(r.problems, in)
			return &activities.OrderProblemResult{EvidenceSeq: 3}, nil
		}).Maybe()
	env.OnActivity(a.IssueCreditNote, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.CreditNoteInput) (*activities.CreditNoteRef, error) {
			r.credits = append(r.credits, in)
			r.creditAfterPurge = r.creditAfterPurge || r.purge != nil
			if r.creditErr != nil {
				return nil, r.creditErr
			}
			return &activities.CreditNoteRef{Number: fmt.Sprintf("CRN-%06d", len(r.credits)), InvoiceNumber: "INV-000001",
				SourceID: in.SourceID, Currency: "GBP", TotalGrossMinor: 100, TotalVATMinor: 17, IssuedAt: env.Now(),
				Upload: r.invoice != nil && r.invoice.Upload}, nil
		}).Maybe()
	env.OnActivity(a.PurgeOrder, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.PurgeInput) (*activities.PurgeResult, error) {
			r.purge, r.purgedAt = &in, env.Now().UTC()
			return &activities.PurgeResult{PurgedAt: env.Now(), FieldsErased: 9, CertificateSeq: 7}, nil
		}).Maybe()
	return r
}

// newTestEnv is a time-skipping environment at t0 with the workflow registered
// under name, started with workflow ID id.
func newTestEnv(wf any, name, id string) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterWorkflowWithOptions(wf, registerOpts(name))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	return env
}

func (r *run) at(d time.Duration, f func()) { r.env.RegisterDelayedCallback(f, d) }

func (r *run) signal(name string, payload any) { r.env.SignalWorkflow(name, payload) }

func (r *run) status() OrderStatus {
	v, err := r.env.QueryWorkflow(QueryStatus)
	require.NoError(r.t, err)
	var s OrderStatus
	require.NoError(r.t, v.Get(&s))
	return s
}

func (r *run) execute(input any) *OrderResult {
	r.env.ExecuteWorkflow(OrderLifecycleName, input)
	require.True(r.t, r.env.IsWorkflowCompleted())
	require.NoError(r.t, r.env.GetWorkflowError())
	var res OrderResult
	require.NoError(r.t, r.env.GetWorkflowResult(&res))
	return &res
}

func input() map[string]string { return map[string]string{"amazonOrderId": testOrder} }

func TestPurgesThirtyDaysAfterPromisedDeliveryWhenNoDeliveryIsReported(t *testing.T) {
	r := newRun(t)
	var mid OrderStatus
	r.at(100*time.Hour, func() { mid = r.status() })
	res := r.execute(input())
	require.Equal(t, PurgeReasonRetention, res.PurgeReason)
	require.Equal(t, r.facts.LatestDeliveryAt.Add(retention), r.purgedAt)
	require.Equal(t, r.facts.LatestDeliveryAt.Add(retention), r.purge.DueAt)
	require.Equal(t, "INV-000001", res.InvoiceNumber)
	require.Equal(t, StageRetained, mid.Stage)
	require.Equal(t, DeliveryFromPromise, mid.DeliverySource)
	require.Equal(t, StagePurged, r.status().Stage)
}

func TestDeliverySignalEarlierThanPromiseMovesPurgeEarlier(t *testing.T) {
	r := newRun(t)
	delivered := t0.Add(30 * time.Hour)
	r.at(31*time.Hour, func() { r.signal(SignalDelivered, DeliveredSignal{DeliveredAt: delivered}) })
	r.execute(input())
	require.Equal(t, delivered.Add(retention), r.purgedAt)
}

func TestDeliverySignalLaterThanPromiseMovesPurgeLater(t *testing.T) {
	r := newRun(t)
	delivered := r.facts.LatestDeliveryAt.Add(48 * time.Hour)
	r.at(delivered.Sub(t0)+time.Minute, func() { r.signal(SignalDelivered, map[string]any{"deliveredAt": delivered}) })
	r.execute(input())
	require.Equal(t, delivered.Add(retention), r.purgedAt)
}

func TestDeliveryReportedBySPAPIStartsTheClockAtOnce(t *testing.T) {
	r := newRun(t)
	delivered := t0.Add(-time.Hour)
	r.facts.DeliveredAt = &delivered
	r.execute(input())
	require.Equal(t, delivered.Add(retention), r.purgedAt)
}

func TestLegalHoldPausesPurgeUntilReleased(t *testing.T) {
	r := newRun(t)
	due := r.facts.LatestDeliveryAt.Add(retention)
	release := due.Add(10 * 24 * time.Hour)
	var held OrderStatus
	r.at(200*time.Hour, func() { r.signal(SignalLegalHold, map[string]string{"reason": "tax-enquiry", "by": "dpo"}) })
	r.at(due.Sub(t0)+time.Hour, func() { held = r.status() })
	r.at(release.Sub(t0), func() { r.signal(SignalReleaseHold, map[string]string{"by": "dpo"}) })
	r.execute(input())
	require.Equal(t, StageOnHold, held.Stage)
	require.True(t, held.OnHold)
	require.Equal(t, release, r.purgedAt)
	st := r.status()
	require.Len(t, st.Holds, 1)
	require.Equal(t, "tax-enquiry", st.Holds[0].Reason)
	require.Equal(t, "dpo", st.Holds[0].ReleasedBy)
	require.True(t, release.Equal(*st.Holds[0].ReleasedAt))
}

func TestPurgeNowPurgesAtOnceAndRecordsWho(t *testing.T) {
	r := newRun(t)
	r.at(5*time.Hour, func() {
		r.signal(SignalPurgeNow, map[string]string{"reason": "buyer-erasure-request", "by": "dpo"})
	})
	res := r.execute(input())
	require.Equal(t, t0.Add(5*time.Hour), r.purgedAt)
	require.Equal(t, PurgeReasonPurgeNow, res.PurgeReason)
	require.Equal(t, "dpo", r.purge.RequestedBy)
	require.Equal(t, "buyer-erasure-request", r.purge.Detail)
}

func TestPurgeNowDuringLegalHoldWaitsForRelease(t *testing.T) {
	r := newRun(t)
	r.at(1*time.Hour, func() { r.signal(SignalLegalHold, map[string]string{"reason": "litigation", "by": "legal"}) })
	r.at(2*time.Hour, func() { r.signal(SignalPurgeNow, map[string]string{"reason": "amazon-deletion-request", "by": "dpo"}) })
	r.at(50*time.Hour, func() { r.signal(SignalReleaseHold, map[string]string{"by": "legal"}) })
	r.execute(input())
	require.Equal(t, t0.Add(50*time.Hour), r.purgedAt)
	require.Equal(t, PurgeReasonPurgeNow, r.purge.Reason)
}

func TestCancellationSignalPurgesAtOnce(t *testing.T) {
	r := newRun(t)
	r.at(10*time.Hour, func() { r.signal(SignalCancelled, map[string]string{"reason": "buyer-cancelled"}) })
	res := r.execute(input())
	require.Equal(t, t0.Add(10*time.Hour), r.purgedAt)
	require.Equal(t, PurgeReasonCancelled, res.PurgeReason)
	require.True(t, r.status().Cancelled)
}

func TestOrderCancelledWhenFetchedIsPurgedWithoutInvoice(t *testing.T) {
	r := newRun(t)
	r.facts.Cancelled = true
	res := r.execute(input())
	require.Equal(t, 0, r.invoices)
	require.Equal(t, "", res.InvoiceNumber)
	require.Equal(t, t0, r.purgedAt)
	require.Equal(t, PurgeReasonCancelled, res.PurgeReason)
}

func TestAlreadyPurgedOrderCompletesWithoutWork(t *testing.T) {
	r := newRun(t)
	r.facts.AlreadyPurged = true
	res := r.execute(input())
	require.Equal(t, "already-purged", res.PurgeReason)
	require.Equal(t, 0, r.invoices)
	require.Nil(t, r.purge)
}

func TestBadSignalsAreRejectedAndRecorded(t *testing.T) {
	r := newRun(t)
	var mid OrderStatus
	r.at(time.Hour, func() { r.signal(SignalLegalHold, map[string]string{"reason": "x"}) })
	r.at(2*time.Hour, func() { r.signal(SignalDelivered, map[string]string{"deliveredAt": "yesterday"}) })
	r.at(3*time.Hour, func() { r.signal(SignalPurgeNow, map[string]string{"reason": "r", "by": "b", "extra": "?"}) })
	r.at(4*time.Hour, func() { r.signal(SignalDelivered, "not an object") })
	r.at(5*time.Hour, func() { r.signal(SignalReleaseHold, map[string]string{"by": "dpo"}) })
	r.at(6*time.Hour, func() { mid = r.status() })
	res := r.execute(input())
	require.Equal(t, PurgeReasonRetention, res.PurgeReason, "bad signals must change nothing")
	require.False(t, mid.OnHold)
	require.Len(t, mid.RejectedSignals, 5)
	for i, want := range []string{`"by" is required`, "RFC 3339", `unknown field; the fields are: "reason", "by"`, "JSON object", "no legal hold"} {
		require.Contains(t, mid.RejectedSignals[i].Error, want)
	}
}

func TestBadInputFailsAtOnceNamingTheField(t *testing.T) {
	for name, tc := range map[string]struct {
		in   any
		want string
	}{
		"missing":      {map[string]string{}, `field "amazonOrderId" is missing or empty`},
		"wrong type":   {map[string]int{"amazonOrderId": 12}, `field "amazonOrderId" must be a string, not a JSON number`},
		"unknown":      {map[string]string{"amazonOrderId": testOrder, "orderId": "x"}, `unknown field; the fields are: "amazonOrderId"`},
		"not an order": {map[string]string{"amazonOrderId": "hello"}, `field "amazonOrderId" is not an Amazon order id`},
		"not object":   {[]int{1}, "payload must be a JSON object, not a JSON array"},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRun(t)
			r.env.ExecuteWorkflow(OrderLifecycleName, tc.in)
			err := r.env.GetWorkflowError()
			var app *temporal.ApplicationError
			require.True(t, errors.As(err, &app), "want an application error, got %v", err)
			require.True(t, app.NonRetryable())
			require.Equal(t, ErrInvalidInput, app.Type())
			require.Contains(t, app.Message(), tc.want)
			require.Equal(t, 0, r.seals, "nothing may be fetched for a bad input")
		})
	}
}

func TestInputMustMatchWorkflowID(t *testing.T) {
	r := newRun(t)
	r.env.ExecuteWorkflow(OrderLifecycleName, map[string]string{"amazonOrderId": "205-0000000-0000000"})
	require.ErrorContains(t, r.env.GetWorkflowError(), "does not match the workflow ID")
}

func TestTransientActivityFailuresAreRetried(t *testing.T) {
	for _, step := range []string{"FetchAndSeal", "IssueInvoice", "PurgeOrder"} {
		t.Run(step, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(t0)
			env.RegisterWorkflowWithOptions(testOptions.OrderLifecycle, registerOpts(OrderLifecycleName))
			env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: OrderWorkflowID(testOrder)})
			a := registerActivities(env)
			attempts := map[string]int{}
			fail := func(name string) error {
				attempts[name]++
				if name == step && attempts[name] < 3 {
					return errors.New("KMS unavailable")
				}
				return nil
			}
			env.OnActivity(a.FetchAndSeal, mock.Anything, mock.Anything).Return(
				func(context.Context, activities.FetchAndSealInput) (*activities.OrderFacts, error) {
					return &activities.OrderFacts{AmazonOrderID: testOrder, LatestDeliveryAt: t0, PIIRetention: time.Hour}, fail("FetchAndSeal")
				})
			env.OnActivity(a.IssueInvoice, mock.Anything, mock.Anything).Return(
				func(context.Context, activities.IssueInvoiceInput) (*activities.InvoiceRef, error) {
					return &activities.InvoiceRef{Number: "INV-1"}, fail("IssueInvoice")
				})
			env.OnActivity(a.PurgeOrder, mock.Anything, mock.Anything).Return(
				func(context.Context, activities.PurgeInput) (*activities.PurgeResult, error) {
					return &activities.PurgeResult{CertificateSeq: 1}, fail("PurgeOrder")
				})
			env.ExecuteWorkflow(OrderLifecycleName, input())
			require.NoError(t, env.GetWorkflowError())
			require.Equal(t, 3, attempts[step])
		})
	}
}

func TestInvalidOrderFromSPAPIFailsTheWorkflow(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(testOptions.OrderLifecycle, registerOpts(OrderLifecycleName))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: OrderWorkflowID(testOrder)})
	a := registerActivities(env)
	calls := 0
	env.OnActivity(a.FetchAndSeal, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.FetchAndSealInput) (*activities.OrderFacts, error) {
			calls++
			return nil, temporal.NewNonRetryableApplicationError("spapi getOrder: order.orderItems: missing", activities.ErrInvalidOrder, nil)
		})
	env.ExecuteWorkflow(OrderLifecycleName, input())
	require.ErrorContains(t, env.GetWorkflowError(), "order.orderItems: missing")
	require.Equal(t, 1, calls)
}

func TestRepeatedDeliveryReportKeepsTheTimerRunning(t *testing.T) {
	r := newRun(t)
	timers := 0
	r.env.SetOnTimerScheduledListener(func(string, time.Duration) { timers++ })
	delivered := t0.Add(30 * time.Hour)
	for _, at := range []time.Duration{31 * time.Hour, 40 * time.Hour, 200 * time.Hour} {
		r.at(at, func() { r.signal(SignalDelivered, DeliveredSignal{DeliveredAt: delivered}) })
	}
	r.execute(input())
	require.Equal(t, delivered.Add(retention), r.purgedAt)
	// The wait for delivery, then one retention timer: repeats restart nothing.
	require.Equal(t, 2, timers)
	require.Empty(t, r.status().RejectedSignals)
}

func TestFinalInvoiceFailureIsRecordedAndTheOrderIsStillPurged(t *testing.T) {
	r := newRun(t)
	r.invoiceErr = temporal.NewNonRetryableApplicationError("order has no buyer name or address",
		activities.ErrInvoiceNotIssuable, nil, "invoice-no-buyer-address")
	var mid OrderStatus
	r.at(100*time.Hour, func() { mid = r.status() })
	res := r.execute(input())
	require.Equal(t, 1, r.invoices, "a final failure is not retried")
	require.Equal(t, "", res.InvoiceNumber)
	require.Equal(t, PurgeReasonRetention, res.PurgeReason)
	require.Equal(t, r.facts.LatestDeliveryAt.Add(retention), r.purgedAt, "the purge keeps its time")
	require.Equal(t, []activities.OrderProblemInput{{AmazonOrderID: testOrder, Step: "invoice", Code: "invoice-no-buyer-address"}}, r.problems)
	require.NotNil(t, mid.Problem)
	require.Equal(t, "invoice-no-buyer-address", mid.Problem.Code)
	require.Equal(t, int64(3), mid.Problem.EvidenceSeq)
	require.Equal(t, StageRetained, mid.Stage)
}

func TestInvoiceFailureWithoutACodeIsRecordedAsInvoiceFailed(t *testing.T) {
	r := newRun(t)
	r.invoiceErr = temporal.NewNonRetryableApplicationError("boom", activities.ErrInvalidOrder, nil)
	res := r.execute(input())
	require.Equal(t, PurgeReasonRetention, res.PurgeReason)
	require.Len(t, r.problems, 1)
	require.Equal(t, "invoice-failed", r.problems[0].Code)
}

func TestRetentionChangesAreWrittenToTheDatabase(t *testing.T) {
	r := newRun(t)
	delivered := t0.Add(30 * time.Hour)
	r.at(31*time.Hour, func() { r.signal(SignalDelivered, DeliveredSignal{DeliveredAt: delivered}) })
	r.at(40*time.Hour, func() { r.signal(SignalLegalHold, map[string]string{"reason": "litigation", "by": "dpo"}) })
	r.at(50*time.Hour, func() { r.signal(SignalReleaseHold, map[string]string{"by": "dpo"}) })
	r.at(60*time.Hour, func() { r.signal(SignalPurgeNow, map[string]string{"reason": "amazon-deletion-request", "by": "dpo"}) })
	r.execute(input())
	due := delivered.Add(retention)
	// The writer writes the state as it is when it gets to run: on a busy
	// machine the test clock may skip a change while a write is in flight, so
	// the writes are the changes in order, the last one always among them.
	requireWritesInOrder(t, r.records, []activities.RetentionRecord{
		{AmazonOrderID: testOrder, PurgeDueAt: due},
		{AmazonOrderID: testOrder, PurgeDueAt: due, OnHold: true},
		{AmazonOrderID: testOrder, PurgeDueAt: due},
		{AmazonOrderID: testOrder, PurgeDueAt: t0.Add(60 * time.Hour)},
	})
	// The release is written before the purge-now comes; the purge-now's own
	// due time may not be: the purge it asks for can finish the run first, and
	// a purged order's due time no longer matters (RetentionAudit looks only at
	// orders not purged).
	last := r.records[len(r.records)-1]
	require.False(t, last.OnHold, "the release is written")
	require.Contains(t, []time.Time{due, t0.Add(60 * time.Hour)}, last.PurgeDueAt)
	require.NotNil(t, r.purge, "purged")
	require.Equal(t, PurgeReasonPurgeNow, r.purge.Reason)
}

// requireWritesInOrder: got holds only states of want, in want's order.
func requireWritesInOrder(t *testing.T, got, want []activities.RetentionRecord) {
	t.Helper()
	require.NotEmpty(t, got)
	i := 0
	for _, g := range got {
		for i < len(want) && !(want[i].AmazonOrderID == g.AmazonOrderID && want[i].OnHold == g.OnHold && want[i].PurgeDueAt.Equal(g.PurgeDueAt)) {
			i++
		}
		require.Less(t, i, len(want), "write %+v is not one of the changes, in order: %+v", g, want)
		i++
	}
}

// A run whose seal recorded its due time was sealed by code that has every
// version change: it takes them without asking GetVersion, which would cost
// two history events each. The mock answers DefaultVersion to any question, so
// a run that asked would neither write nor check codes, nor keep its timer.
func TestASealedRunTakesEveryChangeWithoutAskingGetVersion(t *testing.T) {
	r := newRun(t)
	sealedDue := r.facts.LatestDeliveryAt.Add(retention)
	r.facts.RecordedPurgeDueAt = &sealedDue
	asked := 0
	r.env.OnGetVersion(mock.Anything, workflow.DefaultVersion, 1).Return(func(string, workflow.Version, workflow.Version) workflow.Version {
		asked++
		return workflow.DefaultVersion
	}).Maybe()
	timers := 0
	r.env.SetOnTimerScheduledListener(func(string, time.Duration) { timers++ })
	delivered := t0.Add(30 * time.Hour)
	r.at(31*time.Hour, func() { r.signal(SignalDelivered, DeliveredSignal{DeliveredAt: delivered}) })
	r.at(32*time.Hour, func() { r.signal(SignalDelivered, DeliveredSignal{DeliveredAt: delivered}) })
	r.at(40*time.Hour, func() { r.signal(SignalLegalHold, map[string]string{"reason": "not-a-code", "by": "dpo"}) })
	r.execute(input())
	require.Zero(t, asked, "no GetVersion call")
	require.Equal(t, activities.RetentionRecord{AmazonOrderID: testOrder, PurgeDueAt: delivered.Add(retention)}, r.records[0])
	require.Equal(t, 2, timers, "the repeated report kept the timer running")
	require.Len(t, r.status().RejectedSignals, 1, "the reason is checked as a code")
}

func TestNothingIsWrittenWhenTheSealedDueTimeHolds(t *testing.T) {
	r := newRun(t)
	r.execute(input())
	require.Empty(t, r.records, "the seal recorded promise + retention; nothing changed it")
}

func TestReasonsAreCodesAndSignersConfiguredOperators(t *testing.T) {
	r := newRun(t)
	var mid OrderStatus
	email := "jane.buyer@example.com"
	for i, sig := range []struct {
		name    string
		payload map[string]string
	}{
		{SignalLegalHold, map[string]string{"reason": "buyer " + email + " asked", "by": "dpo"}},
		{SignalLegalHold, map[string]string{"reason": "litigation", "by": email}},
		{SignalLegalHold, map[string]string{"reason": "litigation", "by": "mallory"}},
		{SignalLegalHold, map[string]string{"reason": "litigation", "by": "order-sync", "note": strings.Repeat("x", MaxNoteLength+1)}},
		{SignalPurgeNow, map[string]string{"reason": "Amazon deletion request", "by": "dpo"}},
		{SignalCancelled, map[string]string{"reason": "cancelled by " + email}},
	} {
		r.at(time.Duration(i+1)*time.Hour, func() { r.signal(sig.name, sig.payload) })
	}
	r.at(10*time.Hour, func() { mid = r.status() })
	res := r.execute(input())
	require.Equal(t, PurgeReasonRetention, res.PurgeReason, "refused signals change nothing")
	require.False(t, mid.OnHold)
	require.Len(t, mid.RejectedSignals, 6)
	for i, want := range []string{`"reason" must be one of: litigation,`, `"by" must be an operator identifier`,
		`"by" is not a configured operator`, `"note" is longer than 280`, `"reason" must be one of: amazon-deletion-request,`,
		`"reason" must be one of: cancelled-on-amazon,`} {
		require.Contains(t, mid.RejectedSignals[i].Error, want)
		require.NotContains(t, mid.RejectedSignals[i].Error, "jane", "a refusal never repeats the value")
	}
	require.Empty(t, r.notes)
}

func TestNotesAreSealedWithThePIIAndNeverShown(t *testing.T) {
	r := newRun(t)
	note := "Per call with J. Smith, keep until the claim closes"
	r.at(time.Hour, func() {
		r.signal(SignalLegalHold, map[string]string{"reason": "dispute", "by": "legal", "note": note})
	})
	r.at(2*time.Hour, func() { r.signal(SignalReleaseHold, map[string]string{"by": "order-sync"}) })
	r.execute(input())
	require.Equal(t, []activities.NoteInput{{AmazonOrderID: testOrder, Field: "note.legal-hold.defaulttestr.1", Text: note}}, r.notes)
	b, err := json.Marshal(r.status())
	require.NoError(t, err)
	require.NotContains(t, string(b), "Smith")
	require.Equal(t, "order-sync", r.status().Holds[0].ReleasedBy, "a system name signs too")
}

func TestARunStartedAgainResumesTheRecordedHoldAndDueTime(t *testing.T) {
	r := newRun(t)
	due := t0.Add(10 * 24 * time.Hour) // a delivery reported to the terminated run moved it before the promise
	r.facts.RecordedPurgeDueAt, r.facts.OnHold = &due, true
	var held OrderStatus
	r.at(due.Sub(t0)+time.Hour, func() { held = r.status() })
	r.at(due.Sub(t0)+2*time.Hour, func() { r.signal(SignalReleaseHold, map[string]string{"by": "dpo"}) })
	r.execute(input())
	require.True(t, held.OnHold, "the hold the database holds must survive a restart")
	require.Equal(t, HoldRestored, held.Holds[0].Reason)
	require.Equal(t, DeliveryFromDatabase, held.DeliverySource)
	require.Equal(t, due, *held.PurgeDueAt)
	require.Equal(t, due.Add(2*time.Hour), r.purgedAt, "purged at the release, the recorded due time having passed")
	// Only the release may be written (the purge right after it may end the run first).
	require.LessOrEqual(t, len(r.records), 1)
	if len(r.records) == 1 {
		require.Equal(t, activities.RetentionRecord{AmazonOrderID: testOrder, PurgeDueAt: due}, r.records[0])
	}
}

// updateAnswer is what an Update answered: the status, or why it was refused.
type updateAnswer struct {
	st       OrderStatus
	rejected error
	done     bool
}

// update sends an Update; its answer arrives in a (the callbacks run later).
func (r *run) update(name string, payload any, a *updateAnswer) {
	r.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { a.rejected, a.done = err, true },
		OnComplete: func(v any, err error) {
			require.NoError(r.t, err)
			a.st, a.done = v.(OrderStatus), true
		},
	}, payload)
}

func TestUpdatesAnswerAndRefuseBeforeAnythingIsRecorded(t *testing.T) {
	r := newRun(t)
	answers := make([]updateAnswer, 6)
	n := 0
	ask := func(at time.Duration, name string, payload map[string]string) {
		a := &answers[n]
		n++
		r.at(at, func() { r.update(name, payload, a) })
	}
	ask(1*time.Hour, UpdateReleaseHold, map[string]string{"by": "dpo"})                                 // nothing to release
	ask(2*time.Hour, UpdateLegalHold, map[string]string{"reason": "litigation", "by": "mallory"})       // not an operator
	ask(3*time.Hour, UpdateLegalHold, map[string]string{"reason": "HMRC enquiry", "by": "dpo"})         // free text
	ask(4*time.Hour, UpdateLegalHold, map[string]string{"reason": "litigation", "by": "legal"})         // accepted
	ask(5*time.Hour, UpdateReleaseHold, map[string]string{"by": "dpo"})                                 // accepted
	ask(6*time.Hour, UpdatePurgeNow, map[string]string{"reason": "buyer-erasure-request", "by": "dpo"}) // accepted
	res := r.execute(input())

	for i, a := range answers {
		require.True(t, a.done, "update %d was never answered", i)
	}
	require.ErrorContains(t, answers[0].rejected, "no legal hold is in place")
	require.ErrorContains(t, answers[1].rejected, `"by" is not a configured operator`)
	require.ErrorContains(t, answers[2].rejected, `"reason" must be one of`)
	require.NoError(t, answers[3].rejected)
	require.True(t, answers[3].st.OnHold, "the answer is the status after the hold")
	require.NoError(t, answers[4].rejected)
	require.False(t, answers[4].st.OnHold)
	require.NoError(t, answers[5].rejected)
	require.Equal(t, "buyer-erasure-request", answers[5].st.PurgeRequest.Detail)
	require.Equal(t, PurgeReasonPurgeNow, res.PurgeReason)
	require.Equal(t, t0.Add(6*time.Hour), r.purgedAt)
	require.Empty(t, r.status().RejectedSignals, "refused updates are answered, not recorded")
}

// testActivities names every concern's activities for mocks, as one value.
type testActivities struct {
	*activities.Lifecycle
	*activities.Retention
	*activities.Sync
	*activities.TaxUpload
}

// registerActivities registers every concern the way the worker does.
func registerActivities(env *testsuite.TestWorkflowEnvironment) testActivities {
	a := testActivities{&activities.Lifecycle{}, &activities.Retention{}, &activities.Sync{}, &activities.TaxUpload{}}
	a.TaxUpload.Register(env)
	a.Lifecycle.Register(env)
	a.Retention.Register(env)
	a.Sync.Register(env)
	return a
}
