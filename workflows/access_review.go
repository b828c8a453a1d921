package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/actor"
	"github.com/plusranger/dpp/internal/freetext"
)

// Access workflows: types, IDs, signals, updates and the query.
const (
	AccessReviewName       = "AccessReview"
	OffboardingName        = "Offboarding"
	AccessReviewScheduleID = "access-review"

	// SignalDecision {"itemId","decision":"keep|revoke","by","reason"}: a
	// reviewer's decision on an item (AccessReview).
	SignalDecision = "decision"
	// SignalExtend {"by","until"}: the DPO moves the campaign's deadline (AccessReview).
	SignalExtend = "extend"
	// SignalConfirmDisabled {"system","account","by"}: a person disabled a registry
	// account by hand (AccessReview, Offboarding).
	SignalConfirmDisabled = "confirm-disabled"
	// Updates of the same names and payloads, for callers that want an answer (the
	// Slack buttons): a refused one returns the validator's error and leaves no
	// trace in the history.
	UpdateDecision        = SignalDecision
	UpdateExtend          = SignalExtend
	UpdateConfirmDisabled = SignalConfirmDisabled
)

const accessReviewIDPrefix = "access-review-"

// AccessReviewWorkflowID is the ID of a campaign's review: one per campaign, so
// starting it twice is a no-op.
func AccessReviewWorkflowID(campaign string) string { return accessReviewIDPrefix + campaign }

// OffboardingWorkflowID is the ID of a leaver's offboarding: one per person.
func OffboardingWorkflowID(personID string) string { return "offboarding-" + personID }

// CampaignOf is the campaign of the quarter t falls in, e.g. "2026-Q4".
func CampaignOf(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
}

var campaignPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// AccessReviewInput is AccessReview's input: {"campaign": "2026-Q4"}; empty means
// the quarter the run starts in (the schedule sends that).
type AccessReviewInput struct {
	Campaign string `json:"campaign,omitempty"`
	problem  error
}

// Validate names what is wrong with the input.
func (in AccessReviewInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf(`AccessReview input: %w; want {} or {"campaign": "2026-Q4"}`, in.problem)
	}
	if in.Campaign != "" && !campaignPattern.MatchString(in.Campaign) {
		return errors.New(`AccessReview input: field "campaign" must be 1-64 letters, digits, '.', '_' or '-', e.g. "2026-Q4"`)
	}
	return nil
}

// DecisionSignal is a reviewer's decision on one item.
type DecisionSignal struct {
	ItemID   string `json:"itemId"`
	Decision string `json:"decision"`
	By       string `json:"by"`
	Reason   string `json:"reason,omitempty"`
	// ReasonRef names a reason sealed where it was written (the Slack form,
	// internal/freetext), so the text never enters this workflow's history.
	ReasonRef string `json:"reasonRef,omitempty"`
	problem   error
}

// maxReason bounds a written reason (it goes into history and evidence).
const maxReason = 1000

// Validate checks the decision's form; the review checks it against its items.
func (d DecisionSignal) Validate() error {
	switch {
	case d.problem != nil:
		return d.problem
	case d.ItemID == "":
		return errors.New(`field "itemId" is missing`)
	case d.Decision != access.DecisionKeep && d.Decision != access.DecisionRevoke:
		return errors.New(`field "decision" must be "keep" or "revoke"`)
	case !access.ValidPersonID(d.By):
		return errors.New(`field "by" must be a person id`)
	case utf8.RuneCountInString(d.Reason) > maxReason:
		return fmt.Errorf(`field "reason" is longer than %d characters`, maxReason)
	case d.ReasonRef != "" && !freetext.RefPattern.MatchString(d.ReasonRef):
		return errors.New(`field "reasonRef" must be a sealed reason's ref (letters, digits and . _ : / -)`)
	case d.ReasonRef != "" && d.Reason != "":
		return errors.New(`fields "reason" and "reasonRef" exclude each other`)
	}
	return nil
}

// ExtendSignal moves a campaign's deadline to Until.
type ExtendSignal struct {
	By      string    `json:"by"`
	Until   time.Time `json:"until"`
	problem error
}

// Validate checks the extension's form.
func (e ExtendSignal) Validate() error {
	switch {
	case e.problem != nil:
		return e.problem
	case !access.ValidPersonID(e.By):
		return errors.New(`field "by" must be a person id`)
	case e.Until.IsZero():
		return errors.New(`field "until" is missing (RFC 3339)`)
	}
	return nil
}

// ConfirmDisabledSignal says a person disabled a registry account by hand.
type ConfirmDisabledSignal struct {
	System  string `json:"system"`
	Account string `json:"account"`
	By      string `json:"by"`
	problem error
}

// Validate checks the confirmation's form.
func (c ConfirmDisabledSignal) Validate() error {
	switch {
	case c.problem != nil:
		return c.problem
	case c.System == "" || c.Account == "":
		return errors.New(`fields "system" and "account" are required`)
	case !access.ValidPersonID(c.By):
		return errors.New(`field "by" must be a person id`)
	}
	return nil
}

// decodeAccess decodes a signal or update payload (strictly: access_input.go)
// and validates it.
func decodeAccess[T validator](raw json.RawMessage, v T) error {
	if len(raw) == 0 {
		return errors.New("no payload; a JSON object is required")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	return v.Validate()
}

// AccessTimings are the access settings a run uses, recorded once in its history
// (a SideEffect), so a changed setting affects new runs only.
type AccessTimings struct {
	Reminders   []time.Duration `json:"reminders"`
	Escalation  time.Duration   `json:"escalation"`
	Deadline    time.Duration   `json:"deadline"`
	SLA         time.Duration   `json:"sla"`
	Escalations []time.Duration `json:"escalations"`
	DPO         string          `json:"dpo"`
}

// AccessOptions are the access settings (internal/config: DPP_REVIEW_*,
// DPP_OFFBOARDING_*, DPP_DPO_PERSON_ID).
type AccessOptions = AccessTimings

func (o Options) accessTimings(ctx workflow.Context) (AccessTimings, error) {
	var t AccessTimings
	err := workflow.SideEffect(ctx, func(workflow.Context) any { return o.Access }).Get(&t)
	if err == nil && t.DPO == "" {
		err = errors.New("access workflows need the DPO's person id: set DPP_DPO_PERSON_ID")
	}
	return t, err
}

// ReviewItemStatus is an item and what became of it.
type ReviewItemStatus struct {
	access.Item
	Decision string `json:"decision,omitempty"`
	By       string `json:"by,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// ReasonRef names the sealed reason (the text is not in the workflow).
	ReasonRef  string     `json:"reasonRef,omitempty"`
	DecidedAt  *time.Time `json:"decidedAt,omitempty"`
	ExecutedAt *time.Time `json:"executedAt,omitempty"`
	VerifiedAt *time.Time `json:"verifiedAt,omitempty"`
	// Manual: a registry account, disabled by hand; VerifiedAt is set once confirmed.
	Manual bool `json:"manual,omitempty"`
	// Problem: the revocation failed or could not be verified; the DPO was told.
	Problem string `json:"problem,omitempty"`
}

// settled: nothing more will happen to the item without a person.
func (s *ReviewItemStatus) settled() bool {
	switch {
	case s.Decision == "":
		return false
	case s.Decision == access.DecisionKeep, s.Problem != "", s.VerifiedAt != nil:
		return true
	}
	return false
}

// AccessReviewStatus answers the status query.
type AccessReviewStatus struct {
	Campaign       string             `json:"campaign"`
	Items          []ReviewItemStatus `json:"items"`
	Open           int                `json:"open"`
	Deadline       time.Time          `json:"deadline"`
	Extended       bool               `json:"extended,omitempty"`
	DeadlinePassed bool               `json:"deadlinePassed,omitempty"`
	Done           bool               `json:"done"`
}

// Retries of the access steps. Connectors are retried for about a week at
// 10-minute intervals (an outage must not turn into a revocation nobody
// verified; escalations tell the DPO meanwhile); the bound is explicit so that a
// connector that never recovers ends as a problem the DPO is told about. A
// review's revocation that keeps failing, or failing verification, is escalated
// after a few minutes instead: the campaign must not wait a week for it.
var (
	accessOptions = workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute, MaximumAttempts: 1000,
		NonRetryableErrorTypes: []string{activities.ErrUnknownPerson, activities.ErrProtected, activities.ErrSlackNotConfigured},
	}}
	revokeOptions = workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute, MaximumAttempts: 8,
		NonRetryableErrorTypes: []string{activities.ErrUnknownPerson, activities.ErrProtected, activities.ErrSlackNotConfigured},
	}}
)

type review struct {
	timings  AccessTimings
	wfID     string
	status   AccessReviewStatus
	pending  []string // items decided, not yet recorded and executed
	confirms []ConfirmDisabledSignal
	dirty    []string // reviewers whose message must be updated
	busy     bool
	showing  bool // a reviewer's message is being sent
	extended bool // the deadline moved while the main loop waited
	// setsDeadline: this run keeps ComplianceDeadline on its deadline.
	setsDeadline bool
	over         bool // the deadline passed
}

var acts *activities.Access

// AccessReview runs one campaign of the quarterly access review: it collects every
// connector's accounts, sends each reviewer one Slack message, takes decisions
// (update or signal `decision`), revokes and verifies, reminds and escalates, and
// at the deadline revokes what nobody decided (service and protected accounts
// are escalated instead).
func (o Options) AccessReview(ctx workflow.Context, in AccessReviewInput) (*AccessReviewStatus, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	info := workflow.GetInfo(ctx)
	campaign := in.Campaign
	if campaign == "" {
		campaign = CampaignOf(workflow.Now(ctx))
	}
	if want := AccessReviewWorkflowID(campaign); info.WorkflowExecution.ID != want {
		return nil, startCampaign(ctx, campaign, want)
	}
	t, err := o.accessTimings(ctx)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	start := workflow.Now(ctx)
	r := &review{timings: t, wfID: info.WorkflowExecution.ID,
		status: AccessReviewStatus{Campaign: campaign, Deadline: start.Add(t.Deadline), Items: []ReviewItemStatus{}}}
	if err := r.handlers(ctx); err != nil {
		return nil, err
	}
	// Runs started before this change found their deadline through the status
	// query (the alert check still does so for them); a marker keeps them replaying.
	r.setsDeadline = workflow.GetVersion(ctx, versionComplianceDeadline, workflow.DefaultVersion, 1) == 1
	if err := r.showDeadline(ctx); err != nil {
		return nil, err
	}

	actx := withOptions(ctx, accessOptions)
	var items []access.Item
	if err := workflow.ExecuteActivity(actx, acts.CollectAccessReview, activities.CollectAccessReviewInput{Campaign: campaign}).Get(ctx, &items); err != nil {
		return nil, err
	}
	for _, it := range items {
		r.status.Items = append(r.status.Items, ReviewItemStatus{Item: it})
	}
	r.status.Open = len(items)
	r.dirty = r.reviewers(func(*ReviewItemStatus) bool { return true })

	workflow.Go(ctx, r.process)
	workflow.Go(ctx, r.showMessages)
	workflow.Go(ctx, func(ctx workflow.Context) { r.remind(ctx, start) })

	for !r.over {
		wait := r.status.Deadline.Sub(workflow.Now(ctx))
		if wait > 0 {
			allDecided, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.status.Open == 0 || r.extended })
			if err != nil {
				return nil, err
			}
			if r.extended {
				r.extended = false
				if err := r.showDeadline(ctx); err != nil {
					return nil, err
				}
				continue
			}
			if allDecided {
				break
			}
		}
		r.atDeadline(ctx)
	}
	if err := workflow.Await(ctx, r.finished); err != nil {
		return nil, err
	}
	r.status.Done = true
	return &r.status, nil
}

// versionComplianceDeadline: AccessReview and Offboarding set the
// ComplianceDeadline search attribute, as the other promise workflows do, so
// the Web UI and the alert check find them by it.
const versionComplianceDeadline = "compliance-deadline"

// showDeadline sets ComplianceDeadline to the campaign's deadline (again after
// an extension).
func (r *review) showDeadline(ctx workflow.Context) error {
	if !r.setsDeadline {
		return nil
	}
	return workflow.UpsertTypedSearchAttributes(ctx, ComplianceDeadlineKey.ValueSet(r.status.Deadline))
}

// startCampaign starts the campaign's review under its own ID,
// access-review-<campaign>, and leaves it running: the schedule's runs get IDs
// with a timestamp, and a campaign already started is left alone (a no-op).
func startCampaign(ctx workflow.Context, campaign, id string) error {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        id,
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		// One run per campaign, ever: a finished campaign is not reviewed again.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	})
	var exec workflow.Execution
	err := workflow.ExecuteChildWorkflow(cctx, AccessReviewName, AccessReviewInput{Campaign: campaign}).GetChildWorkflowExecution().Get(ctx, &exec)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		workflow.GetLogger(ctx).Info("Campaign already started", "workflowId", id)
		return nil
	}
	return err
}

// finished: every item settled and nothing left to do.
func (r *review) finished() bool {
	if r.busy || r.showing || len(r.pending) > 0 || len(r.confirms) > 0 || len(r.dirty) > 0 {
		return false
	}
	for i := range r.status.Items {
		if !r.status.Items[i].settled() {
			return false
		}
	}
	return true
}

func (r *review) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (AccessReviewStatus, error) { return r.status, nil }); err != nil {
		return err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecision,
		func(ctx workflow.Context, raw json.RawMessage) (ReviewItemStatus, error) {
			var d DecisionSignal
			_ = decodeAccess(raw, &d) // the validator accepted it
			return r.decide(ctx, d), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, raw json.RawMessage) error {
			var d DecisionSignal
			if err := decodeAccess(raw, &d); err != nil {
				return err
			}
			return r.check(d)
		}})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UpdateExtend,
		func(ctx workflow.Context, raw json.RawMessage) (AccessReviewStatus, error) {
			var e ExtendSignal
			_ = decodeAccess(raw, &e)
			r.extend(ctx, e)
			return r.status, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, raw json.RawMessage) error {
			var e ExtendSignal
			if err := decodeAccess(raw, &e); err != nil {
				return err
			}
			return r.checkExtend(e)
		}})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UpdateConfirmDisabled,
		func(ctx workflow.Context, raw json.RawMessage) (AccessReviewStatus, error) {
			var c ConfirmDisabledSignal
			_ = decodeAccess(raw, &c)
			r.confirms = append(r.confirms, c)
			return r.status, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, raw json.RawMessage) error {
			var c ConfirmDisabledSignal
			if err := decodeAccess(raw, &c); err != nil {
				return err
			}
			return r.checkConfirm(c)
		}})
	if err != nil {
		return err
	}
	// Signals carry the same payloads; a refused one is logged (ids only) and dropped.
	workflow.Go(ctx, func(ctx workflow.Context) {
		decisions := workflow.GetSignalChannel(ctx, SignalDecision)
		extends := workflow.GetSignalChannel(ctx, SignalExtend)
		confirms := workflow.GetSignalChannel(ctx, SignalConfirmDisabled)
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(decisions, func(c workflow.ReceiveChannel, _ bool) {
				var raw json.RawMessage
				c.Receive(ctx, &raw)
				var d DecisionSignal
				if err := decodeAccess(raw, &d); err != nil || r.check(d) != nil {
					rejectAccess(ctx, SignalDecision, errors.Join(err, r.check(d)))
					return
				}
				r.decide(ctx, d)
			})
			sel.AddReceive(extends, func(c workflow.ReceiveChannel, _ bool) {
				var raw json.RawMessage
				c.Receive(ctx, &raw)
				var e ExtendSignal
				if err := decodeAccess(raw, &e); err != nil || r.checkExtend(e) != nil {
					rejectAccess(ctx, SignalExtend, errors.Join(err, r.checkExtend(e)))
					return
				}
				r.extend(ctx, e)
			})
			sel.AddReceive(confirms, func(c workflow.ReceiveChannel, _ bool) {
				var raw json.RawMessage
				c.Receive(ctx, &raw)
				var cs ConfirmDisabledSignal
				if err := decodeAccess(raw, &cs); err != nil || r.checkConfirm(cs) != nil {
					rejectAccess(ctx, SignalConfirmDisabled, errors.Join(err, r.checkConfirm(cs)))
					return
				}
				r.confirms = append(r.confirms, cs)
			})
			sel.Select(ctx)
		}
	})
	return nil
}

func rejectAccess(ctx workflow.Context, signal string, err error) {
	workflow.GetLogger(ctx).Warn("Rejected signal", "signal", signal, "error", err.Error())
}

func (r *review) item(id string) *ReviewItemStatus {
	for i := range r.status.Items {
		if r.status.Items[i].ID == id {
			return &r.status.Items[i]
		}
	}
	return nil
}

// check refuses a decision the review cannot take; the message goes back to the
// person who clicked.
func (r *review) check(d DecisionSignal) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if r.status.Done {
		return fmt.Errorf("campaign %s is finished", r.status.Campaign)
	}
	if len(r.status.Items) == 0 {
		return fmt.Errorf("campaign %s has no items yet; try again in a moment", r.status.Campaign)
	}
	it := r.item(d.ItemID)
	switch {
	case it == nil:
		return fmt.Errorf("campaign %s has no item %s", r.status.Campaign, d.ItemID)
	case it.Decision != "":
		return fmt.Errorf("item %s was already decided: %s by %s", it.ID, it.Decision, it.By)
	case d.By != it.Reviewer && d.By != r.timings.DPO:
		return fmt.Errorf("item %s is not yours to decide: its reviewer is %s", it.ID, it.Reviewer)
	case d.Decision == access.DecisionKeep && it.Flagged() && strings.TrimSpace(d.Reason) == "" && d.ReasonRef == "":
		return fmt.Errorf(`item %s is flagged (%s): keeping it needs a written reason (field "reason")`, it.ID, strings.Join(it.Flags, ", "))
	case d.Decision == access.DecisionRevoke && it.Has(access.FlagProtected):
		return fmt.Errorf("item %s is protected (a superuser, the connector's own role or a role the DPP runs as), which the connector never disables: change it by hand and keep it with a reason", it.ID)
	}
	return nil
}

func (r *review) decide(ctx workflow.Context, d DecisionSignal) ReviewItemStatus {
	it := r.item(d.ItemID)
	now := workflow.Now(ctx)
	it.Decision, it.By, it.Reason, it.ReasonRef, it.DecidedAt = d.Decision, d.By, strings.TrimSpace(d.Reason), d.ReasonRef, &now
	r.status.Open--
	r.pending = append(r.pending, it.ID)
	return *it
}

func (r *review) checkExtend(e ExtendSignal) error {
	if err := e.Validate(); err != nil {
		return err
	}
	switch {
	case e.By != r.timings.DPO:
		return errors.New("only the DPO (DPP_DPO_PERSON_ID) extends a campaign")
	case r.over || r.status.Done:
		return fmt.Errorf("campaign %s is past its deadline", r.status.Campaign)
	case !e.Until.After(r.status.Deadline):
		return fmt.Errorf(`field "until" must be later than the deadline %s`, r.status.Deadline.Format(time.RFC3339))
	}
	return nil
}

func (r *review) extend(ctx workflow.Context, e ExtendSignal) {
	old := r.status.Deadline
	r.status.Deadline, r.status.Extended, r.extended = e.Until.UTC(), true, true
	workflow.Go(ctx, func(ctx workflow.Context) {
		ev := activities.AccessEventInput{Kind: access.KindExtension, WorkflowID: r.wfID,
			Step: "extend/" + e.Until.UTC().Format(time.RFC3339),
			Body: map[string]any{"by": e.By, "from": old, "until": e.Until.UTC()}}
		if err := workflow.ExecuteActivity(withOptions(ctx, accessOptions), acts.RecordAccessEvent, ev).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("Cannot record the extension", "error", err.Error())
		}
	})
}

func (r *review) checkConfirm(c ConfirmDisabledSignal) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for i := range r.status.Items {
		it := &r.status.Items[i]
		if it.System == c.System && it.Account == c.Account {
			switch {
			case !it.Manual || it.Decision != access.DecisionRevoke:
				return fmt.Errorf("%s/%s has no task to disable it by hand", c.System, c.Account)
			case it.VerifiedAt != nil:
				return fmt.Errorf("%s/%s is already confirmed disabled", c.System, c.Account)
			case c.By != it.Reviewer && c.By != it.By && c.By != r.timings.DPO:
				return fmt.Errorf("the task for %s/%s is not yours", c.System, c.Account)
			}
			return nil
		}
	}
	return fmt.Errorf("campaign %s has no account %s/%s", r.status.Campaign, c.System, c.Account)
}

// reviewers lists, in item order, the reviewers of the items match selects.
func (r *review) reviewers(match func(*ReviewItemStatus) bool) []string {
	var out []string
	for i := range r.status.Items {
		if it := &r.status.Items[i]; match(it) && !slices.Contains(out, it.Reviewer) {
			out = append(out, it.Reviewer)
		}
	}
	return out
}

func (r *review) markDirty(reviewer string) {
	if !slices.Contains(r.dirty, reviewer) {
		r.dirty = append(r.dirty, reviewer)
	}
}

// process records and carries out decisions one at a time.
func (r *review) process(ctx workflow.Context) {
	for {
		_ = workflow.Await(ctx, func() bool { return len(r.pending) > 0 || len(r.confirms) > 0 })
		r.busy = true
		if len(r.pending) > 0 {
			it := r.item(r.pending[0])
			r.pending = r.pending[1:]
			r.execute(ctx, it)
			r.markDirty(it.Reviewer)
		} else {
			c := r.confirms[0]
			r.confirms = r.confirms[1:]
			for i := range r.status.Items {
				if it := &r.status.Items[i]; it.System == c.System && it.Account == c.Account && it.VerifiedAt == nil {
					r.verify(ctx, it, c.By)
					r.markDirty(it.Reviewer)
				}
			}
		}
		r.busy = false
	}
}

// showMessages keeps the reviewers' messages up to date, apart from process:
// a Slack outage delays the messages, never the revocations.
func (r *review) showMessages(ctx workflow.Context) {
	actx := withOptions(ctx, accessOptions)
	for {
		_ = workflow.Await(ctx, func() bool { return len(r.dirty) > 0 })
		// Taken off first: a decision arriving while the message is sent marks
		// the reviewer again, and the next round shows it.
		reviewer := r.dirty[0]
		r.dirty = r.dirty[1:]
		r.showing = true
		var lines []access.ReviewLine
		for i := range r.status.Items {
			if it := &r.status.Items[i]; it.Reviewer == reviewer {
				lines = append(lines, access.ReviewLine{Item: it.Item, Decision: it.Decision, By: it.By, Problem: it.Problem})
			}
		}
		in := activities.ShowAccessReviewInput{Campaign: r.status.Campaign, Reviewer: reviewer, Lines: lines}
		if err := workflow.ExecuteActivity(actx, acts.ShowAccessReview, in).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("Cannot show a reviewer's message", "reviewer", reviewer, "error", err.Error())
		}
		r.showing = false
	}
}

func (r *review) disableInput(it *ReviewItemStatus) activities.DisableAccountInput {
	// A registry account's task goes to whoever revoked it; at the deadline, to its reviewer.
	owner := it.By
	if owner == actor.AccessReview {
		owner = it.Reviewer
	}
	return activities.DisableAccountInput{WorkflowID: r.wfID, Step: "item/" + it.ID, System: it.System, Account: it.Account,
		TaskOwner: owner, Why: "access review " + r.status.Campaign + ", item " + it.ID, Kind: access.KindExecution}
}

// execute records a decision and, for a revocation, disables and verifies.
func (r *review) execute(ctx workflow.Context, it *ReviewItemStatus) {
	actx := withOptions(ctx, accessOptions)
	rec := activities.AccessDecisionInput{WorkflowID: r.wfID, Item: it.Item, Decision: it.Decision, By: it.By, Reason: it.Reason, ReasonRef: it.ReasonRef, At: *it.DecidedAt}
	if err := workflow.ExecuteActivity(actx, acts.RecordAccessDecision, rec).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("Cannot record a decision", "item", it.ID, "error", err.Error())
	}
	if it.Decision != access.DecisionRevoke {
		return
	}
	var res access.DisableResult
	err := workflow.ExecuteActivity(withOptions(ctx, revokeOptions), acts.DisableAccount, r.disableInput(it)).Get(ctx, &res)
	if err != nil {
		r.fail(ctx, it, "revoking failed: "+errorMessage(err))
		return
	}
	r.settle(it, res)
}

func (r *review) verify(ctx workflow.Context, it *ReviewItemStatus, by string) {
	in := r.disableInput(it)
	in.ConfirmedBy = by
	in.Result = access.DisableResult{Manual: true, ExecutedAt: *it.ExecutedAt}
	var res access.DisableResult
	if err := workflow.ExecuteActivity(withOptions(ctx, revokeOptions), acts.VerifyAccountDisabled, in).Get(ctx, &res); err != nil {
		r.fail(ctx, it, "verifying the confirmation failed: "+errorMessage(err))
		return
	}
	r.settle(it, res)
}

func (r *review) settle(it *ReviewItemStatus, res access.DisableResult) {
	executed := res.ExecutedAt
	it.ExecutedAt, it.VerifiedAt, it.Manual = &executed, res.VerifiedAt, res.Manual
}

// fail escalates an item whose revocation did not happen or was not verified: it
// is never counted as done.
func (r *review) fail(ctx workflow.Context, it *ReviewItemStatus, problem string) {
	it.Problem = problem
	escalate(ctx, r.timings.DPO, r.wfID, "item/"+it.ID+"/problem",
		fmt.Sprintf("Access review %s: item %s (%s %s) needs you: %s", r.status.Campaign, it.ID, it.System, it.Account, problem),
		map[string]any{"itemId": it.ID, "system": it.System, "account": it.Account, "problem": problem})
}

// escalate tells the DPO and records the escalation as evidence.
func escalate(ctx workflow.Context, dpo, wfID, step, text string, body map[string]any) {
	actx := withOptions(ctx, accessOptions)
	notify := workflow.ExecuteActivity(actx, acts.NotifyPerson, activities.NotifyPersonInput{PersonID: dpo, Text: text})
	body["to"] = dpo
	record := workflow.ExecuteActivity(actx, acts.RecordAccessEvent, activities.AccessEventInput{
		Kind: access.KindEscalation, WorkflowID: wfID, Step: step, Body: body})
	for _, f := range []workflow.Future{notify, record} {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("Cannot escalate", "step", step, "error", err.Error())
		}
	}
}

// errorMessage is an activity error's own message, without the SDK's wrapping.
func errorMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

func sleepUntil(ctx workflow.Context, at time.Time) error {
	if d := at.Sub(workflow.Now(ctx)); d > 0 {
		return workflow.Sleep(ctx, d)
	}
	return nil
}

// remind sends reviewers with open items a reminder at each DPP_REVIEW_REMINDERS,
// then escalates what is still open to the DPO at DPP_REVIEW_ESCALATION.
func (r *review) remind(ctx workflow.Context, start time.Time) {
	actx := withOptions(ctx, accessOptions)
	open := func(it *ReviewItemStatus) bool { return it.Decision == "" }
	for _, after := range r.timings.Reminders {
		if sleepUntil(ctx, start.Add(after)) != nil || r.over {
			return
		}
		var fs []workflow.Future
		for _, reviewer := range r.reviewers(open) {
			n := 0
			for i := range r.status.Items {
				if it := &r.status.Items[i]; open(it) && it.Reviewer == reviewer {
					n++
				}
			}
			fs = append(fs, workflow.ExecuteActivity(actx, acts.NotifyPerson, activities.NotifyPersonInput{PersonID: reviewer,
				Text: fmt.Sprintf("Reminder: access review %s has %d account(s) waiting for your decision. Undecided ones are revoked at %s.",
					r.status.Campaign, n, r.status.Deadline.Format(time.RFC3339))}))
		}
		for _, f := range fs {
			if err := f.Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Error("Cannot send a reminder", "error", err.Error())
			}
		}
	}
	if sleepUntil(ctx, start.Add(r.timings.Escalation)) != nil || r.over || r.status.Open == 0 {
		return
	}
	var ids []string
	for i := range r.status.Items {
		if it := &r.status.Items[i]; open(it) {
			ids = append(ids, it.ID)
		}
	}
	escalate(ctx, r.timings.DPO, r.wfID, "escalation",
		fmt.Sprintf("Access review %s: %d item(s) are still undecided (items %s; reviewers %s). They are revoked at %s unless you extend the campaign.",
			r.status.Campaign, len(ids), strings.Join(ids, ", "), strings.Join(r.reviewers(open), ", "), r.status.Deadline.Format(time.RFC3339)),
		map[string]any{"open": ids, "reviewers": r.reviewers(open), "deadline": r.status.Deadline})
}

// atDeadline revokes every undecided item (fail closed), except service and
// protected accounts, which go to the DPO: nobody may lose a production service
// to silence.
func (r *review) atDeadline(ctx workflow.Context) {
	r.over, r.status.DeadlinePassed = true, true
	var held []string
	for i := range r.status.Items {
		it := &r.status.Items[i]
		if it.Decision != "" {
			continue
		}
		if it.Service || it.Has(access.FlagProtected) {
			held = append(held, it.ID)
			continue
		}
		r.decide(ctx, DecisionSignal{ItemID: it.ID, Decision: access.DecisionRevoke, By: actor.AccessReview,
			Reason: "no decision by the deadline"})
	}
	if len(held) > 0 {
		escalate(ctx, r.timings.DPO, r.wfID, "deadline",
			fmt.Sprintf("Access review %s: deadline passed; %d service or protected account(s) stay until you decide (items %s).",
				r.status.Campaign, len(held), strings.Join(held, ", ")),
			map[string]any{"held": held})
	}
}
