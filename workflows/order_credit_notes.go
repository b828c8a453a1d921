package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/internal/spapi"
)

// changeCreditNotes: the lifecycle issues credit notes (the refund signal and
// update, a cancellation after the invoice). Level 3 of activities.SealLevel.
const changeCreditNotes = "credit-notes"

// creditNotesLevel is the seal level of changeCreditNotes.
const creditNotesLevel = 3

// CreditNoteStatus is an issued credit note as the status query shows it: no PII.
type CreditNoteStatus struct {
	Number          string    `json:"number"`
	InvoiceNumber   string    `json:"invoiceNumber"`
	SourceID        string    `json:"sourceId"` // "cancellation" or "refund/<refundId>"
	Currency        string    `json:"currency"`
	TotalGrossMinor int64     `json:"totalGross"`
	TotalVATMinor   int64     `json:"totalVat"`
	IssuedAt        time.Time `json:"issuedAt"`
	// Upload is the credit note's upload to Amazon (DPP_UPLOAD_INVOICES).
	Upload *InvoiceUpload `json:"upload,omitempty"`
}

// pendingCredit is a credit note asked for and not yet issued.
type pendingCredit struct {
	in     activities.CreditNoteInput
	signal string // where it came from, for a refused signal's record
	done   bool
	err    error
}

// creditsEnabled tells whether this run issues credit notes (changeCreditNotes),
// asked once, after the seal.
func (lc *lifecycle) creditsEnabled(ctx workflow.Context) bool {
	if lc.creditsOn == nil {
		v := lc.since(ctx, changeCreditNotes, creditNotesLevel)
		lc.creditsOn = &v
	}
	return *lc.creditsOn
}

// errCreditsBeforeThisRun: the run began before credit notes; the operator
// issues the note from the starter instead.
var errCreditsBeforeThisRun = errors.New("this order's workflow began before credit notes: issue it with `starter credit-note issue`")

// knownCredit tells whether a credit note from this source was issued or is queued.
func (lc *lifecycle) knownCredit(source string) bool {
	for _, c := range lc.status.CreditNotes {
		if c.SourceID == source {
			return true
		}
	}
	for _, p := range lc.credits {
		if p.in.SourceID == source {
			return true
		}
	}
	return false
}

// acceptRefund queues a refund's credit note. The returned pending credit is
// nil when the refund is already known (a repeat changes nothing).
func (lc *lifecycle) acceptRefund(ctx workflow.Context, raw json.RawMessage) (*pendingCredit, error) {
	var s RefundSignal
	if err := lc.decodeCoded(ctx, raw, &s); err != nil {
		return nil, err
	}
	in := activities.CreditNoteInput{AmazonOrderID: lc.status.AmazonOrderID, SourceID: "refund/" + s.RefundID,
		Reason: s.Reason, By: s.By, Full: s.Full}
	for _, l := range s.Lines {
		in.Lines = append(in.Lines, activities.CreditNoteLine{OrderItemID: l.OrderItemID, Quantity: l.Quantity, AmountMinor: l.AmountMinor()})
	}
	if lc.knownCredit(in.SourceID) {
		return nil, errUnchanged
	}
	p := &pendingCredit{in: in, signal: SignalRefund}
	lc.credits = append(lc.credits, p)
	return p, nil
}

// creditWork tells whether the background coroutine has a credit note to
// issue or a result to take.
func (lc *lifecycle) creditWork(w *writer) bool {
	if w.credit != nil {
		return w.credit.IsReady()
	}
	return lc.writing && lc.invoiceSettled && len(lc.credits) > 0
}

// writeCredit issues the queued credit notes one at a time, once the order is
// sealed and its invoice step is over.
func (lc *lifecycle) writeCredit(ctx workflow.Context, w *writer) {
	if w.credit != nil && w.credit.IsReady() {
		var ref activities.CreditNoteRef
		err := w.credit.Get(ctx, &ref)
		w.credit = nil
		p := lc.credits[0]
		lc.credits = lc.credits[1:]
		switch {
		case temporal.IsCanceledError(err):
			p.err = err
		case err != nil:
			p.err = errors.New(activityMessage(err))
		case ref.NoInvoice:
			p.err = errors.New("the order has no invoice: nothing to credit")
		case ref.FullyCredited:
			p.err = errors.New("the invoice has been credited in full already")
		default:
			lc.status.CreditNotes = append(lc.status.CreditNotes, CreditNoteStatus{Number: ref.Number,
				InvoiceNumber: ref.InvoiceNumber, SourceID: ref.SourceID, Currency: ref.Currency,
				TotalGrossMinor: ref.TotalGrossMinor, TotalVATMinor: ref.TotalVATMinor, IssuedAt: ref.IssuedAt})
			lc.startCreditNoteUpload(ctx, ref)
		}
		p.done = true
		if p.err != nil && p.signal != "" && !temporal.IsCanceledError(p.err) {
			lc.reject(ctx, p.signal, p.err)
		}
	}
	if w.credit != nil || !lc.creditWork(w) {
		return
	}
	if !lc.creditsEnabled(ctx) {
		for _, p := range lc.credits {
			p.done, p.err = true, errCreditsBeforeThisRun
			if p.signal != "" {
				lc.reject(ctx, p.signal, p.err)
			}
		}
		lc.credits = nil
		return
	}
	var a *activities.Lifecycle
	w.credit = workflow.ExecuteActivity(withSummary(ctx, invoiceOptions, "issue a credit note ("+lc.credits[0].in.SourceID+")"),
		a.IssueCreditNote, lc.credits[0].in)
}

// startCreditNoteUpload sends an issued credit note to Amazon like the
// invoice (document type CreditNote) when the activity that issued it says
// uploads are on. Checked in that order, so runs with uploads off, and the
// runs recorded before, make no version check.
func (lc *lifecycle) startCreditNoteUpload(ctx workflow.Context, ref activities.CreditNoteRef) {
	if !ref.Upload || !lc.since(ctx, versionUploadCreditNotes, 4) {
		return
	}
	u, err := lc.startUpload(ctx, spapi.DocumentTypeCreditNote, ref.Number, stepCreditNoteUpload)
	if err != nil || u == nil {
		return // cancelled, or the problem is recorded: the note itself stands
	}
	for i := range lc.status.CreditNotes {
		if lc.status.CreditNotes[i].Number == ref.Number {
			lc.status.CreditNotes[i].Upload = u
		}
	}
}

// creditCancellation issues the credit note of an order cancelled after its
// invoice, before its PII is purged, and waits for it.
func (lc *lifecycle) creditCancellation(ctx workflow.Context) error {
	if !lc.status.Cancelled || lc.status.InvoiceNumber == "" || !lc.creditsEnabled(ctx) ||
		lc.knownCredit(creditSourceCancellation) {
		return nil
	}
	p := &pendingCredit{in: activities.CreditNoteInput{AmazonOrderID: lc.status.AmazonOrderID,
		SourceID: creditSourceCancellation, Reason: "cancelled", By: actor.CreditNotes, Full: true}}
	lc.credits = append(lc.credits, p)
	if err := workflow.Await(ctx, func() bool { return p.done }); err != nil {
		return err
	}
	if p.err != nil && !temporal.IsCanceledError(p.err) {
		// A refused credit note (a full refund before, say) never stops the purge.
		workflow.GetLogger(ctx).Warn("No credit note for the cancellation", "error", p.err.Error())
	}
	return nil
}

// creditSourceCancellation is orders.SourceCancellation (workflows do not import the store).
const creditSourceCancellation = "cancellation"

// awaitCredits waits until every credit note asked for is issued or refused,
// and every refund Update has answered, so the run never ends with one still
// queued or a caller left without its answer.
func (lc *lifecycle) awaitCredits(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return len(lc.credits) == 0 && workflow.AllHandlersFinished(ctx) })
}

// setRefundUpdate offers the refund as an Update: the caller gets the order's
// status with the credit note, or why it was refused.
func (lc *lifecycle) setRefundUpdate(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRefund,
		func(ctx workflow.Context, raw json.RawMessage) (OrderStatus, error) {
			p, err := lc.acceptRefund(ctx, raw)
			if errors.Is(err, errUnchanged) {
				return lc.status, nil
			}
			if err != nil {
				return OrderStatus{}, err
			}
			p.signal = "" // the caller gets the answer; nothing to record as rejected
			if err := workflow.Await(ctx, func() bool { return p.done }); err != nil {
				return OrderStatus{}, err
			}
			if p.err != nil {
				return OrderStatus{}, temporal.NewNonRetryableApplicationError(p.err.Error(), activities.ErrCreditNoteRefused, nil)
			}
			return lc.status, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, raw json.RawMessage) error {
			return lc.validateCoded(raw, &RefundSignal{})
		}})
}

// activityMessage is the message of an activity's final error, without the
// SDK's wrapping.
func activityMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return fmt.Sprint(err)
}
