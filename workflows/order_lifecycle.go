package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/taxupload"
)

// Purge reasons, recorded on the certificate of sanitization.
const (
	PurgeReasonRetention = "retention-expired"
	PurgeReasonPurgeNow  = "purge-now"
	PurgeReasonCancelled = "cancelled"
)

// Where the delivery time came from, shown by the status query.
const (
	DeliveryFromSPAPI    = "sp-api"
	DeliveryFromSignal   = "signal"
	DeliveryFromPromise  = "latest-delivery-date"
	maxRejectedSignals   = 20
	maxDeliveredInFuture = 24 * time.Hour
)

// versionUnchangedSignalKeepsTimer: a signal that changes nothing no longer
// restarts the retention timer.
const versionUnchangedSignalKeepsTimer = "unchanged-signal-keeps-timer"

// versionReasonCodes: reasons are codes, "by" a configured operator, notes are
// sealed; runs that began before keep the free text they were sent.
const versionReasonCodes = "reason-codes"

// versionRecordRetention: the workflow writes each change of the purge due time
// and of the hold state to the database (RetentionAudit relies on it); runs that
// began before do not.
const versionRecordRetention = "record-retention"

// Each workflow.GetVersion call records a marker and the SDK's
// TemporalChangeVersion search-attribute upsert: two history events, and a
// visibility write on the server, for an answer that is known once the order is
// sealed. FetchAndSeal returns recordedPurgeDueAt since code that already had
// all three changes above, and the workflow code that handles the run after that
// seal has them too: for such a run the answer is version 1 without asking.
// Replay agrees either way: the SDK skips version markers (and the upsert
// beside them) when it compares a history with the commands the code makes, so
// a run whose history holds a marker from an earlier call replays the same.
func (lc *lifecycle) hasChange(ctx workflow.Context, changeID string) bool {
	if lc.facts != nil && lc.facts.RecordedPurgeDueAt != nil {
		return true
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

// since is hasChange for the changes made after those three: each has a
// level (activities.SealLevel). A run sealed by code at that level or later
// has the change without a marker; a run sealed before asks GetVersion, so
// its history decides. Only call it once the order is sealed.
func (lc *lifecycle) since(ctx workflow.Context, changeID string, level int) bool {
	if lc.facts != nil && lc.facts.SealLevel >= level {
		return true
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

// versionUploadInvoice (seal level 2): an invoice issued with
// DPP_UPLOAD_INVOICES on goes to Amazon in its own TaxDocumentUpload.
const versionUploadInvoice = "upload-invoice"

// versionUploadCreditNotes (seal level 4): a credit note issued with
// DPP_UPLOAD_INVOICES on goes to Amazon like the invoice. Level 3 (credit
// notes) recorded runs that issued credit notes and started no upload.
const versionUploadCreditNotes = "upload-credit-notes"

// Steps that can fail for good without stopping the order's purge.
const (
	stepInvoice          = "invoice"
	stepInvoiceUpload    = "invoice-upload"
	stepCreditNoteUpload = "credit-note-upload"
)

// errUnchanged marks a valid signal that changes nothing.
var errUnchanged = errors.New("signal changes nothing")

// OrderStatus answers the `status` query. It holds no PII.
type OrderStatus struct {
	AmazonOrderID   string           `json:"amazonOrderId"`
	Stage           string           `json:"stage"`
	DeliveredAt     *time.Time       `json:"deliveredAt,omitempty"`
	DeliverySource  string           `json:"deliverySource,omitempty"`
	PurgeDueAt      *time.Time       `json:"purgeDueAt,omitempty"`
	OnHold          bool             `json:"onHold"`
	Holds           []Hold           `json:"holds"`
	PurgeRequest    *PurgeRequest    `json:"purgeRequest,omitempty"`
	InvoiceNumber   string           `json:"invoiceNumber,omitempty"`
	Cancelled       bool             `json:"cancelled"`
	PurgedAt        *time.Time       `json:"purgedAt,omitempty"`
	CertificateSeq  int64            `json:"certificateSeq,omitempty"`
	RejectedSignals []RejectedSignal `json:"rejectedSignals,omitempty"`
	// Problem is a step that failed for good (the invoice): the order still goes
	// on to its purge, and the problem is in the evidence log.
	Problem *OrderProblem `json:"problem,omitempty"`
	// CreditNotes issued by this run (refunds, a cancellation after the invoice).
	CreditNotes []CreditNoteStatus `json:"creditNotes,omitempty"`
	// InvoiceUpload is the invoice's upload to Amazon (DPP_UPLOAD_INVOICES), as
	// last known to the lifecycle: it starts the upload, which then runs on its
	// own (query the upload's workflow for where it stands now).
	InvoiceUpload *InvoiceUpload `json:"invoiceUpload,omitempty"`
}

// InvoiceUpload names a tax document's TaxDocumentUpload workflow (the
// invoice's, or a credit note's).
type InvoiceUpload struct {
	WorkflowID string `json:"workflowId"`
	// State is submitting once started (the upload's own states follow in its status).
	State string `json:"state"`
}

// OrderProblem is a step that failed for good, by code (never free text).
type OrderProblem struct {
	Step string    `json:"step"`
	Code string    `json:"code"`
	At   time.Time `json:"at"`
	// EvidenceSeq is the problem's entry in the evidence log (0 until recorded).
	EvidenceSeq int64 `json:"evidenceSeq,omitempty"`
}

// Hold is one legal hold, with who placed and released it.
type Hold struct {
	Reason     string     `json:"reason"`
	By         string     `json:"by"`
	At         time.Time  `json:"at"`
	ReleasedBy string     `json:"releasedBy,omitempty"`
	ReleasedAt *time.Time `json:"releasedAt,omitempty"`
}

// PurgeRequest is an early purge: purge-now or a cancellation.
type PurgeRequest struct {
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
}

// RejectedSignal records a signal whose payload was refused, and why.
type RejectedSignal struct {
	Signal string    `json:"signal"`
	At     time.Time `json:"at"`
	Error  string    `json:"error"`
}

// OrderResult is OrderLifecycle's result.
type OrderResult struct {
	AmazonOrderID  string    `json:"amazonOrderId"`
	InvoiceNumber  string    `json:"invoiceNumber,omitempty"`
	PurgeReason    string    `json:"purgeReason"`
	PurgedAt       time.Time `json:"purgedAt"`
	CertificateSeq int64     `json:"certificateSeq,omitempty"`
}

// OrderLifecycle keeps the policy's promises for one order: fetch and seal its PII,
// issue the VAT invoice, wait for delivery, keep the PII for the retention period
// (holds, purge-now and cancellation change that), then crypto-erase it with a
// certificate. The invoice, a tax record, is left to TaxRecordSweep, so no order
// workflow stays open for years.
func (o Options) OrderLifecycle(ctx workflow.Context, in OrderInput) (*OrderResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	if id := workflow.GetInfo(ctx).WorkflowExecution.ID; id != OrderWorkflowID(in.AmazonOrderID) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"OrderLifecycle input: amazonOrderId does not match the workflow ID %q; start it with ID %q",
			id, OrderWorkflowID(in.AmazonOrderID)), ErrInvalidInput, nil)
	}
	lc := &lifecycle{status: OrderStatus{AmazonOrderID: in.AmazonOrderID, Holds: []Hold{}}, operators: o.Operators,
		spapiTaskQueue: o.SPAPITaskQueue}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (OrderStatus, error) {
		return lc.status, nil
	}); err != nil {
		return nil, err
	}
	if err := lc.setUpdateHandlers(ctx); err != nil {
		return nil, err
	}
	if err := lc.setRefundUpdate(ctx); err != nil {
		return nil, err
	}
	workflow.Go(ctx, lc.background)
	return lc.run(ctx)
}

type lifecycle struct {
	status OrderStatus
	// changed is set by every accepted signal so waits re-evaluate.
	changed bool
	// facts of the sealed order, once FetchAndSeal has returned.
	facts *activities.OrderFacts
	// recorded is the retention state the database holds for the order.
	recorded retentionState
	// operators may sign signals (Options.Operators).
	operators []string
	// spapiTaskQueue is where FetchAndSeal runs (Options.SPAPITaskQueue).
	spapiTaskQueue string
	// codes is the versionReasonCodes decision, made at the first signal that needs it.
	codes *bool
	// notes wait to be sealed with the order's PII; nextNote numbers them.
	notes    []activities.NoteInput
	nextNote int
	// writing is set once the order is sealed: from then on the background
	// coroutine records retention changes and seals notes.
	writing bool
	// credits are the credit notes asked for and not yet issued, in order;
	// creditsOn is the changeCreditNotes decision; invoiceSettled is set once
	// the invoice step is over (issued, failed or skipped): credit notes wait
	// for it.
	credits        []*pendingCredit
	creditsOn      *bool
	invoiceSettled bool
}

// retentionState is what the database must know for RetentionAudit.
type retentionState struct {
	dueAt  time.Time
	onHold bool
}

func (a retentionState) same(b retentionState) bool {
	return a.onHold == b.onHold && a.dueAt.Equal(b.dueAt)
}

func (lc *lifecycle) run(ctx workflow.Context) (*OrderResult, error) {
	var a *activities.Lifecycle
	id := lc.status.AmazonOrderID
	lc.setStage(ctx, StageSealing)

	var facts activities.OrderFacts
	if err := workflow.ExecuteActivity(withSummary(ctx, onQueue(sealOptions, lc.spapiTaskQueue), "fetch the order from SP-API and seal its PII"), a.FetchAndSeal,
		activities.FetchAndSealInput{AmazonOrderID: id}).Get(ctx, &facts); err != nil {
		return nil, err
	}
	if facts.AlreadyPurged {
		lc.setStage(ctx, StagePurged)
		return &OrderResult{AmazonOrderID: id, PurgeReason: "already-purged"}, nil
	}
	if facts.Cancelled {
		_ = lc.requestPurge(PurgeRequest{Reason: PurgeReasonCancelled, Detail: "cancelled when fetched", At: workflow.Now(ctx)})
	}
	if facts.DeliveredAt != nil && lc.status.DeliveredAt == nil {
		lc.status.DeliveredAt, lc.status.DeliverySource = facts.DeliveredAt, DeliveryFromSPAPI
	}
	// The seal recorded the due time from these facts; from here on every change
	// (delivery report, hold, release, purge request) is written as it happens.
	lc.facts = &facts
	lc.recorded = retentionState{dueAt: sealedDue(facts)}
	lc.resume(ctx, facts)
	lc.writing = true // the background coroutine records retention changes and seals notes from now on

	// A cancelled order was never supplied: no tax point, no invoice.
	if !lc.status.Cancelled {
		lc.setStage(ctx, StageInvoicing)
		var inv activities.InvoiceRef
		err := workflow.ExecuteActivity(withSummary(ctx, invoiceOptions, "issue the VAT invoice (a sealed tax record)"), a.IssueInvoice,
			activities.IssueInvoiceInput{AmazonOrderID: id}).Get(ctx, &inv)
		switch {
		case err == nil:
			lc.status.InvoiceNumber = inv.Number
			// Uploads off: not even the version check, so the history is unchanged.
			if inv.Upload && inv.Kind != activities.InvoiceByAmazon && inv.Number != "" && lc.since(ctx, versionUploadInvoice, 2) {
				if err := lc.startInvoiceUpload(ctx, inv.Number); err != nil {
					return nil, err
				}
			}
		case temporal.IsCanceledError(err):
			return nil, err
		default:
			// No invoice, but the PII must still be purged on time: record the
			// problem and go on.
			if err := lc.recordProblem(ctx, stepInvoice, invoiceProblemCode(err)); err != nil {
				return nil, err
			}
		}
	}
	lc.invoiceSettled = true

	if lc.status.DeliveredAt == nil && lc.status.PurgeRequest == nil {
		lc.setStage(ctx, StageAwaitingDelivery)
		wait := facts.LatestDeliveryAt.Sub(workflow.Now(ctx))
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: max(wait, 0), TimerOptions: workflow.TimerOptions{
			Summary: "wait for delivery, latest " + facts.LatestDeliveryAt.UTC().Format(time.RFC3339)}}, func() bool {
			return lc.status.DeliveredAt != nil || lc.status.PurgeRequest != nil
		})
		if err != nil {
			return nil, err
		}
		if !ok {
			assumed := facts.LatestDeliveryAt
			lc.status.DeliveredAt, lc.status.DeliverySource = &assumed, DeliveryFromPromise
		}
	}

	reason, by, due, err := lc.retain(ctx, facts.PIIRetention)
	if err != nil {
		return nil, err
	}
	if err := lc.creditCancellation(ctx); err != nil {
		return nil, err
	}
	detail := ""
	if r := lc.status.PurgeRequest; r != nil && lc.codesOn() {
		detail = r.Detail // a code: certificates are kept for years
	}

	lc.setStage(ctx, StagePurging)
	var purged activities.PurgeResult
	if err := workflow.ExecuteActivity(withSummary(ctx, purgeOptions, "crypto-erase the PII and sign the certificate ("+reason+")"), a.PurgeOrder, activities.PurgeInput{
		AmazonOrderID: id, Reason: reason, Detail: detail, RequestedBy: by, DueAt: due,
	}).Get(ctx, &purged); err != nil {
		return nil, err
	}
	lc.status.PurgedAt, lc.status.CertificateSeq = &purged.PurgedAt, purged.CertificateSeq
	lc.setStage(ctx, StagePurged)
	if err := lc.awaitCredits(ctx); err != nil {
		return nil, err
	}
	return &OrderResult{AmazonOrderID: id, InvoiceNumber: lc.status.InvoiceNumber, PurgeReason: reason,
		PurgedAt: purged.PurgedAt, CertificateSeq: purged.CertificateSeq}, nil
}

// retain waits on the durable timer until the PII is due for purge, honouring
// legal holds, purge requests and late delivery reports. It returns why the purge
// happens, who asked for it and when it was due.
func (lc *lifecycle) retain(ctx workflow.Context, retention time.Duration) (reason, by string, due time.Time, err error) {
	for {
		// A changed due time goes to the Web UI with the stage, in one upsert.
		var dueUpdate []temporal.SearchAttributeUpdate
		if lc.status.DeliveredAt != nil {
			d := lc.status.DeliveredAt.Add(retention)
			if lc.status.PurgeDueAt == nil || !lc.status.PurgeDueAt.Equal(d) {
				lc.status.PurgeDueAt = &d
				dueUpdate = append(dueUpdate, PurgeDueAtKey.ValueSet(d))
			}
		}
		if lc.status.OnHold {
			lc.setStage(ctx, StageOnHold, dueUpdate...)
			lc.changed = false
			if err := workflow.Await(ctx, func() bool { return !lc.status.OnHold }); err != nil {
				return "", "", due, err
			}
			continue
		}
		lc.setStage(ctx, StageRetained, dueUpdate...)
		now := workflow.Now(ctx)
		if r := lc.status.PurgeRequest; r != nil {
			return r.Reason, r.By, now, nil
		}
		if lc.status.PurgeDueAt == nil { // unreachable: no delivery means a purge request
			return PurgeReasonPurgeNow, "", now, nil
		}
		if !lc.status.PurgeDueAt.After(now) {
			return PurgeReasonRetention, "", *lc.status.PurgeDueAt, nil
		}
		lc.changed = false
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: lc.status.PurgeDueAt.Sub(now),
			TimerOptions: workflow.TimerOptions{Summary: "retention until " + lc.status.PurgeDueAt.UTC().Format(time.RFC3339)}},
			func() bool { return lc.changed }); err != nil {
			return "", "", due, err
		}
	}
}

func (lc *lifecycle) setStage(ctx workflow.Context, stage string, more ...temporal.SearchAttributeUpdate) {
	if lc.status.Stage == stage && len(more) == 0 {
		return
	}
	lc.status.Stage = stage
	workflow.SetCurrentDetails(ctx, lc.details())
	updates := append([]temporal.SearchAttributeUpdate{OrderStageKey.ValueSet(stage)}, more...)
	if stage == StageSealing {
		// Starts by hand (temporal CLI) carry no search attributes: add the order id once.
		updates = append(updates, AmazonOrderIDKey.ValueSet(lc.status.AmazonOrderID))
	}
	// Failing to upsert only affects Web UI search; never fail the order for it.
	_ = workflow.UpsertTypedSearchAttributes(ctx, updates...)
}

// requestPurge records an early purge; the first request wins. It returns
// errUnchanged when the order already had one.
func (lc *lifecycle) requestPurge(r PurgeRequest) error {
	unchanged := lc.status.PurgeRequest != nil && (r.Reason != PurgeReasonCancelled || lc.status.Cancelled)
	if r.Reason == PurgeReasonCancelled {
		lc.status.Cancelled = true
	}
	if lc.status.PurgeRequest == nil {
		lc.status.PurgeRequest = &r
	}
	if unchanged {
		return errUnchanged
	}
	lc.changed = true
	return nil
}

// background runs beside the main flow for the whole run: it handles signals
// whatever stage the order is in and, once the order is sealed, writes each
// retention change to the database and seals each note. One coroutine does
// what three did: each holds a goroutine whose stack (about 7 KB) the worker
// keeps for every open order, as much memory as the rest of the order's state.
// Within a workflow task it works in the order the three did (signals, then
// the retention record, then the note), so it makes the same commands in the
// same order and histories recorded with three replay unchanged.
func (lc *lifecycle) background(ctx workflow.Context) {
	sel := lc.signalSelector(ctx)
	var w writer
	for {
		err := workflow.Await(ctx, func() bool { return sel.HasPending() || lc.writerReady(&w) || lc.creditWork(&w) })
		if err != nil {
			break // cancelled: the writes end, signals are still taken
		}
		for sel.HasPending() {
			sel.Select(ctx)
		}
		lc.writeRetention(ctx, &w)
		lc.writeNote(ctx, &w)
		lc.writeCredit(ctx, &w)
	}
	for {
		sel.Select(ctx)
	}
}

// signalSelector receives every signal of the order.
func (lc *lifecycle) signalSelector(ctx workflow.Context) workflow.Selector {
	sel := workflow.NewSelector(ctx)
	handle := func(name string, accept func(raw json.RawMessage) error) {
		sel.AddReceive(workflow.GetSignalChannel(ctx, name), func(c workflow.ReceiveChannel, _ bool) {
			var raw json.RawMessage
			c.Receive(ctx, &raw)
			err := accept(raw)
			if errors.Is(err, errUnchanged) {
				// A repeated report (OrderSync's overlap, a second click) changes
				// nothing, so the retention timer runs on; runs that began before
				// this rule keep restarting it, as their histories say.
				if !lc.hasChange(ctx, versionUnchangedSignalKeepsTimer) {
					lc.changed = true
				}
				return
			}
			if err != nil {
				lc.reject(ctx, name, err)
				return
			}
			lc.changed = true
		})
	}
	handle(SignalDelivered, func(raw json.RawMessage) error {
		var s DeliveredSignal
		if err := decodeSignal(raw, &s); err != nil {
			return err
		}
		now := workflow.Now(ctx)
		if s.DeliveredAt.After(now.Add(maxDeliveredInFuture)) {
			return errors.New(`field "deliveredAt" is more than a day in the future`)
		}
		// The first real report wins; a later one only replaces an assumption.
		if lc.status.DeliveredAt != nil && lc.status.DeliverySource != DeliveryFromPromise {
			return errUnchanged
		}
		at := s.DeliveredAt.UTC()
		lc.status.DeliveredAt, lc.status.DeliverySource = &at, DeliveryFromSignal
		return nil
	})
	handle(SignalLegalHold, func(raw json.RawMessage) error { return lc.acceptHold(ctx, raw) })
	handle(SignalReleaseHold, func(raw json.RawMessage) error { return lc.acceptRelease(ctx, raw) })
	handle(SignalPurgeNow, func(raw json.RawMessage) error { return lc.acceptPurgeNow(ctx, raw) })
	handle(SignalCancelled, func(raw json.RawMessage) error {
		var s CancelledSignal
		if err := lc.decodeCoded(ctx, raw, &s); err != nil {
			return err
		}
		return lc.requestPurge(PurgeRequest{Reason: PurgeReasonCancelled, Detail: s.Reason, At: workflow.Now(ctx)})
	})
	// A refund changes nothing the waits depend on: it only queues a credit note.
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalRefund), func(c workflow.ReceiveChannel, _ bool) {
		var raw json.RawMessage
		c.Receive(ctx, &raw)
		if _, err := lc.acceptRefund(ctx, raw); err != nil && !errors.Is(err, errUnchanged) {
			lc.reject(ctx, SignalRefund, err)
		}
	})
	return sel
}

func (lc *lifecycle) acceptHold(ctx workflow.Context, raw json.RawMessage) error {
	var s HoldSignal
	if err := lc.decodeCoded(ctx, raw, &s); err != nil {
		return err
	}
	lc.status.Holds = append(lc.status.Holds, Hold{Reason: s.Reason, By: s.By, At: workflow.Now(ctx)})
	lc.status.OnHold = true
	lc.addNote(ctx, SignalLegalHold, s.Note)
	return nil
}

func (lc *lifecycle) acceptRelease(ctx workflow.Context, raw json.RawMessage) error {
	var s ReleaseSignal
	if err := lc.decodeCoded(ctx, raw, &s); err != nil {
		return err
	}
	if !lc.status.OnHold {
		return errNoHold
	}
	lc.addNote(ctx, SignalReleaseHold, s.Note)
	now := workflow.Now(ctx)
	for i := range lc.status.Holds {
		if lc.status.Holds[i].ReleasedAt == nil {
			lc.status.Holds[i].ReleasedBy, lc.status.Holds[i].ReleasedAt = s.By, &now
		}
	}
	lc.status.OnHold = false
	return nil
}

func (lc *lifecycle) acceptPurgeNow(ctx workflow.Context, raw json.RawMessage) error {
	var s PurgeNowSignal
	if err := lc.decodeCoded(ctx, raw, &s); err != nil {
		return err
	}
	err := lc.requestPurge(PurgeRequest{Reason: PurgeReasonPurgeNow, Detail: s.Reason, By: s.By, At: workflow.Now(ctx)})
	if err == nil {
		lc.addNote(ctx, SignalPurgeNow, s.Note)
	}
	return err
}

var errNoHold = errors.New("no legal hold is in place")

// setUpdateHandlers offers legal-hold, release-hold and purge-now as Updates
// too: a person who wants an answer gets it (the order's status, or why the
// request was refused), and a refused request leaves no trace in the history
// because the validator refuses it before it is recorded. The signals stay for
// scripts and Slack.
func (lc *lifecycle) setUpdateHandlers(ctx workflow.Context) error {
	for _, u := range []struct {
		name     string
		validate func(raw json.RawMessage) error
		accept   func(workflow.Context, json.RawMessage) error
	}{
		{UpdateLegalHold, func(raw json.RawMessage) error { return lc.validateCoded(raw, &HoldSignal{}) }, lc.acceptHold},
		{UpdateReleaseHold, func(raw json.RawMessage) error {
			if err := lc.validateCoded(raw, &ReleaseSignal{}); err != nil {
				return err
			}
			if !lc.status.OnHold {
				return errNoHold
			}
			return nil
		}, lc.acceptRelease},
		{UpdatePurgeNow, func(raw json.RawMessage) error { return lc.validateCoded(raw, &PurgeNowSignal{}) }, lc.acceptPurgeNow},
	} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context, raw json.RawMessage) (OrderStatus, error) {
				err := u.accept(ctx, raw)
				if err != nil && !errors.Is(err, errUnchanged) {
					return OrderStatus{}, err
				}
				if err == nil {
					lc.changed = true
				}
				return lc.status, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, raw json.RawMessage) error { return u.validate(raw) }})
		if err != nil {
			return err
		}
	}
	return nil
}

// validateCoded is decodeCoded without commands (an update validator may not
// record anything): the codes, and "by" among the configured operators and
// system names.
func (lc *lifecycle) validateCoded(raw json.RawMessage, s codedSignal) error {
	if err := decodeSignal(raw, s); err != nil {
		return err
	}
	if err := s.CheckCodes(); err != nil {
		return err
	}
	if by := signer(s); by != "" && !slices.Contains(lc.operators, by) && !slices.Contains(SystemActors, by) {
		return errNotOperator
	}
	return nil
}

var errNotOperator = errors.New(`field "by" is not a configured operator (DPP_OPERATORS) or a system name`)

type validator interface{ Validate() error }

// codedSignal is a signal whose reason is a code and whose "by" is an operator.
type codedSignal interface {
	validator
	CheckCodes() error
}

// decodeCoded decodes and validates a signal that carries reason codes, and
// checks its signer.
func (lc *lifecycle) decodeCoded(ctx workflow.Context, raw json.RawMessage, s codedSignal) error {
	if err := decodeSignal(raw, s); err != nil {
		return err
	}
	if !lc.reasonCodes(ctx) {
		return nil
	}
	if err := s.CheckCodes(); err != nil {
		return err
	}
	if by := signer(s); by != "" && !lc.knownActor(ctx, by) {
		return errNotOperator
	}
	return nil
}

// signer is the signal's "by", if it has one.
func signer(s codedSignal) string {
	switch v := s.(type) {
	case *HoldSignal:
		return v.By
	case *ReleaseSignal:
		return v.By
	case *PurgeNowSignal:
		return v.By
	case *RefundSignal:
		return v.By
	}
	return ""
}

// reasonCodes reports whether this run takes reasons as codes (versionReasonCodes).
func (lc *lifecycle) reasonCodes(ctx workflow.Context) bool {
	if lc.codes == nil {
		v := lc.hasChange(ctx, versionReasonCodes)
		lc.codes = &v
	}
	return *lc.codes
}

// knownActor tells whether by is a configured operator or a system name. The
// answer is recorded in the history, so a change of DPP_OPERATORS never changes
// what a replay decides.
func (lc *lifecycle) knownActor(ctx workflow.Context, by string) bool {
	var known bool
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		return slices.Contains(lc.operators, by) || slices.Contains(SystemActors, by)
	}).Get(&known)
	return err == nil && known
}

// addNote queues a signal's note to be sealed with the order's PII. Its field
// names the run, so a run started again after a terminated one never takes the
// name of an earlier run's note (sealing keeps the first value of a name).
func (lc *lifecycle) addNote(ctx workflow.Context, signal, note string) {
	if note == "" || !lc.codesOn() {
		return
	}
	lc.nextNote++
	lc.notes = append(lc.notes, activities.NoteInput{AmazonOrderID: lc.status.AmazonOrderID,
		Field: fmt.Sprintf("note.%s.%s.%d", signal, runTag(ctx), lc.nextNote), Text: note})
}

func (lc *lifecycle) codesOn() bool { return lc.codes != nil && *lc.codes }

// writer is the background coroutine's writing in flight: at most one
// retention record and one note at a time, each waited for before the next.
type writer struct {
	record workflow.Future // the RecordRetention local activity in flight
	want   retentionState  // what it writes
	note   workflow.Future // the SealNote activity in flight
	credit workflow.Future // the IssueCreditNote activity in flight
	// versioned: the run records retention changes (asked once);
	// recordsDone, notesDone: that part has ended (a run from before
	// record-retention, or a cancelled workflow).
	versioned, recordsDone, notesDone bool
}

// writerReady tells whether the writer has something to do: a result to take
// or a change to write.
func (lc *lifecycle) writerReady(w *writer) bool {
	if !lc.writing {
		return false
	}
	if w.record != nil && w.record.IsReady() || w.note != nil && w.note.IsReady() {
		return true
	}
	return w.record == nil && !w.recordsDone && !lc.retentionNow().same(lc.recorded) ||
		w.note == nil && !w.notesDone && len(lc.notes) > 0
}

// finished takes the result of a write in flight once it is ready: done tells
// that it finished, err its final error (transient ones are retried). A
// cancelled write ends its part of the writer.
func finished(ctx workflow.Context, f *workflow.Future, ended *bool) (done bool, err error) {
	if *f == nil || !(*f).IsReady() {
		return false, nil
	}
	err = (*f).Get(ctx, nil)
	*f = nil
	if temporal.IsCanceledError(err) {
		*ended = true
		return false, nil
	}
	return true, err
}

// writeNote seals each note into the sealed store under the order's PII key,
// so the purge erases it.
func (lc *lifecycle) writeNote(ctx workflow.Context, w *writer) {
	if !lc.writing {
		return
	}
	if done, err := finished(ctx, &w.note, &w.notesDone); done {
		if err != nil {
			workflow.GetLogger(ctx).Error("Cannot seal a signal's note", "field", lc.notes[0].Field, "error", err.Error())
		}
		lc.notes = lc.notes[1:]
	}
	if w.note == nil && !w.notesDone && len(lc.notes) > 0 {
		var a *activities.Lifecycle
		w.note = workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.SealNote, lc.notes[0])
	}
}

// decodeSignal decodes a raw signal payload into s and validates it. A missing
// payload decodes to the zero value, which Validate then names.
func decodeSignal[T validator](raw json.RawMessage, s T) error {
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, s); err != nil {
			return err
		}
	}
	return s.Validate()
}

func (lc *lifecycle) reject(ctx workflow.Context, signal string, err error) {
	workflow.GetLogger(ctx).Warn("Rejected signal", "signal", signal, "error", err.Error())
	lc.status.RejectedSignals = append(lc.status.RejectedSignals,
		RejectedSignal{Signal: signal, At: workflow.Now(ctx), Error: err.Error()})
	if n := len(lc.status.RejectedSignals); n > maxRejectedSignals {
		lc.status.RejectedSignals = lc.status.RejectedSignals[n-maxRejectedSignals:]
	}
}

// sealedDue is the purge due time FetchAndSeal recorded with the order: its
// reported or promised delivery plus the retention.
func sealedDue(f activities.OrderFacts) time.Time {
	if f.DeliveredAt != nil {
		return f.DeliveredAt.Add(f.PIIRetention)
	}
	return f.LatestDeliveryAt.Add(f.PIIRetention)
}

// retentionNow is the retention state as the workflow knows it now.
func (lc *lifecycle) retentionNow() retentionState {
	st := retentionState{onHold: lc.status.OnHold}
	switch {
	case lc.status.PurgeRequest != nil:
		st.dueAt = lc.status.PurgeRequest.At
	case lc.status.DeliveredAt != nil:
		st.dueAt = lc.status.DeliveredAt.Add(lc.facts.PIIRetention)
	default:
		st.dueAt = lc.facts.LatestDeliveryAt.Add(lc.facts.PIIRetention)
	}
	return st
}

// writeRetention writes every change of the order's purge due time or hold
// state to the database, so the RetentionAudit can purge the order on time if
// this workflow never does.
func (lc *lifecycle) writeRetention(ctx workflow.Context, w *writer) {
	if !lc.writing {
		return
	}
	if done, err := finished(ctx, &w.record, &w.recordsDone); done {
		if err != nil {
			// Only a final error gets here (transient ones are retried): the
			// workflow's own purge still happens; the audit is the safety net.
			workflow.GetLogger(ctx).Error("Cannot record the retention state", "error", err.Error())
		}
		lc.recorded = w.want
	}
	if w.record != nil || w.recordsDone || lc.retentionNow().same(lc.recorded) {
		return
	}
	if !w.versioned {
		if !lc.hasChange(ctx, versionRecordRetention) {
			w.recordsDone = true
			return
		}
		w.versioned = true
	}
	var a *activities.Retention
	w.want = lc.retentionNow()
	w.record = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, retentionRecordOptions), a.RecordRetention,
		activities.RetentionRecord{AmazonOrderID: lc.status.AmazonOrderID, PurgeDueAt: w.want.dueAt, OnHold: w.want.onHold})
}

// invoiceProblemCode is the problem code an IssueInvoice failure carries, or the
// generic one.
func invoiceProblemCode(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrInvoiceNotIssuable && appErr.HasDetails() {
		var code string
		if appErr.Details(&code) == nil && code != "" {
			return code
		}
	}
	return problemInvoiceFailed
}

// problemInvoiceFailed is the code of an invoice failure that carries none
// (orders.ProblemInvoiceFailed; workflows do not import the store).
const problemInvoiceFailed = "invoice-failed"

// recordProblem records a step that failed for good: in the status query, the
// OrderProblem search attribute, a metric and the evidence log.
func (lc *lifecycle) recordProblem(ctx workflow.Context, step, code string) error {
	var a *activities.Retention
	lc.status.Problem = &OrderProblem{Step: step, Code: code, At: workflow.Now(ctx)}
	workflow.GetLogger(ctx).Warn("Order step failed for good; the order goes on to its purge", "step", step, "code", code)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"step": step, "code": code}).
		Counter("dpp_order_problems").Inc(1)
	_ = workflow.UpsertTypedSearchAttributes(ctx, OrderProblemKey.ValueSet(code))
	var res activities.OrderProblemResult
	err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.RecordOrderProblem, activities.OrderProblemInput{
		AmazonOrderID: lc.status.AmazonOrderID, Step: step, Code: code}).Get(ctx, &res)
	if temporal.IsCanceledError(err) {
		return err
	}
	if err != nil {
		workflow.GetLogger(ctx).Error("Cannot record the problem in the evidence log", "step", step, "error", err.Error())
		return nil
	}
	lc.status.Problem.EvidenceSeq = res.EvidenceSeq
	return nil
}

// startInvoiceUpload starts the invoice's TaxDocumentUpload.
func (lc *lifecycle) startInvoiceUpload(ctx workflow.Context, number string) error {
	u, err := lc.startUpload(ctx, spapi.DocumentTypeInvoice, number, stepInvoiceUpload)
	if u != nil {
		lc.status.InvoiceUpload = u
	}
	return err
}

// startUpload starts a tax document's TaxDocumentUpload with a local
// activity: one marker event in the order's history, against a child
// workflow's initiated, started and completed events (and the workflow task
// its completion wakes). A second start of the same document is a no-op, so a
// replayed or retried start is harmless, and the upload outlives the order.
// A start that keeps failing is the order's problem (step), not a reason to
// keep its PII longer: the upload is nil then.
func (lc *lifecycle) startUpload(ctx workflow.Context, docType, number, step string) (*InvoiceUpload, error) {
	var a *activities.TaxUpload
	in := activities.TaxDocumentInput{AmazonOrderID: lc.status.AmazonOrderID, DocumentNumber: number, DocumentType: docType}
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, startUploadOptions), a.StartTaxDocumentUpload, in).Get(ctx, nil)
	if temporal.IsCanceledError(err) {
		return nil, err
	}
	if err != nil {
		return nil, lc.recordProblem(ctx, step, "upload-not-started")
	}
	return &InvoiceUpload{WorkflowID: TaxDocumentUploadWorkflowID(number), State: taxupload.StateSubmitting}, nil
}

// HoldRestored is the reason shown for a hold this run found in the database: an
// earlier run of the order's workflow placed it and was then terminated.
const HoldRestored = "restored-from-database"

// DeliveryFromDatabase: the due time an earlier run recorded, earlier than the
// promise, stands for the delivery it was told of.
const DeliveryFromDatabase = "recorded"

// resume takes over the retention state an earlier run of this order recorded
// (the run was terminated and the order started again): its hold, and a due
// time that a delivery report had moved before the promise.
func (lc *lifecycle) resume(ctx workflow.Context, f activities.OrderFacts) {
	if f.OnHold {
		lc.recorded.onHold = true
		if !lc.status.OnHold {
			lc.status.OnHold = true
			lc.status.Holds = append(lc.status.Holds, Hold{Reason: HoldRestored, At: workflow.Now(ctx)})
		}
	}
	if d := f.RecordedPurgeDueAt; d != nil && d.Before(sealedDue(f)) && lc.status.DeliveredAt == nil && !f.Cancelled {
		at := d.Add(-f.PIIRetention)
		lc.status.DeliveredAt, lc.status.DeliverySource = &at, DeliveryFromDatabase
		lc.recorded.dueAt = *d
	}
}

// details is what the Web UI shows on the order's page: the stage and what it
// waits for, in Temporal markdown; ids and dates only.
func (lc *lifecycle) details() string {
	st := lc.status
	d := "**" + st.Stage + "**"
	switch {
	case st.Stage == StageAwaitingDelivery && lc.facts != nil:
		d += ": waiting for delivery, latest " + lc.facts.LatestDeliveryAt.UTC().Format(time.RFC3339)
	case st.Stage == StageRetained && st.PurgeDueAt != nil:
		d += ": PII kept until " + st.PurgeDueAt.UTC().Format(time.RFC3339) + ", then crypto-erased"
	case st.Stage == StageOnHold:
		d += ": legal hold; the purge waits for release-hold"
	}
	if st.InvoiceNumber != "" {
		d += "  \ninvoice " + st.InvoiceNumber
	}
	if st.Problem != nil {
		d += "  \nproblem: " + st.Problem.Code
	}
	return d
}

// runTag is a short tag of this run (the start of its run id, in field-name characters).
func runTag(ctx workflow.Context) string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToLower(workflow.GetInfo(ctx).WorkflowExecution.RunID))
	return id[:min(len(id), 12)]
}
