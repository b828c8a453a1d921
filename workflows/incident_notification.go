package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/incident"
)

// Who acts when nobody does.
const (
	incidentAutoSend = "system:auto-send"
	incidentClock    = "system:clock"
)

// NotificationState is one notification's progress (Amazon's, the ICO's).
type NotificationState struct {
	DueAt       time.Time  `json:"dueAt"`
	ApprovedBy  string     `json:"approvedBy,omitempty"`
	ApprovedAt  *time.Time `json:"approvedAt,omitempty"`
	SentAt      *time.Time `json:"sentAt,omitempty"`
	MessageID   string     `json:"messageId,omitempty"`
	Preliminary bool       `json:"preliminary,omitempty"`
	Sending     bool       `json:"sending,omitempty"`
	Reference   string     `json:"reference,omitempty"` // the ICO's reference number
	ReportedAt  *time.Time `json:"reportedAt,omitempty"`
	Breached    bool       `json:"breached,omitempty"`
}

// IncidentStatus answers the `status` query. It holds ids, codes and times only.
type IncidentStatus struct {
	IncidentID    string             `json:"incidentId"`
	Stage         string             `json:"stage"`
	Severity      string             `json:"severity"`
	PersonalData  bool               `json:"personalData"`
	DetectedAt    time.Time          `json:"detectedAt"`
	DeclaredAt    time.Time          `json:"declaredAt"`
	Amazon        NotificationState  `json:"amazon"`
	ICO           *NotificationState `json:"ico,omitempty"`
	OpenApprovals []string           `json:"openApprovals"`
	NextDeadline  *time.Time         `json:"nextDeadline,omitempty"`
	// FalsePositiveProposedBy waits for a second approver's confirmation.
	FalsePositiveProposedBy string     `json:"falsePositiveProposedBy,omitempty"`
	Closed                  bool       `json:"closed"`
	ClosedAt                *time.Time `json:"closedAt,omitempty"`
	Outcome                 string     `json:"outcome,omitempty"`
	RefusedSignals          int        `json:"refusedSignals"`
}

// clockEvent is a moment the incident's clocks act at.
type clockEvent struct {
	at     time.Time
	kind   string // reminder | auto-send | deadline
	target string // amazon | ico
	n      int
}

func (e clockEvent) key() string { return fmt.Sprintf("%s-%s-%d", e.target, e.kind, e.n) }

type incidentRun struct {
	ctx    workflow.Context
	id     string
	wfID   string
	clocks activities.IncidentClocks
	status IncidentStatus
	events []clockEvent
	done   map[string]bool
	steps  int
	// dirty asks the publisher to bring the Slack message up to date; busy
	// says it is at it.
	dirty   bool
	busy    bool
	notices []activities.IncidentNotice
	sending workflow.Future
	// wake tells the loop an Update changed the state: its clock is
	// chosen again.
	wake workflow.Channel
}

var incidentAct *activities.Incident

// Incident activities: the record and the e-mail retry until they succeed;
// Slack is best effort (the timeline has everything), so a Slack outage never
// holds the clocks up.
var (
	incidentRecordOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry()}
	// The e-mail is retried for a week: long past the deadline (which is
	// recorded as breached meanwhile), short of forever.
	incidentSendOptions = workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute, ScheduleToCloseTimeout: 7 * 24 * time.Hour, RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute, MaximumAttempts: 2000}}
	incidentSlackOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5}}
)

// IncidentNotification runs one security incident's clocks: Amazon must be
// notified within DPP_INCIDENT_AMAZON_DEADLINE of detection (reminders, an
// automatic preliminary notification, a recorded breach past it), the ICO
// within DPP_INCIDENT_ICO_DEADLINE when personal data is involved. People
// approve, advance the runbook and close by signal or Slack button. Its
// history carries the declaration's title and summary only in its input: the
// first activity seals them.
func IncidentNotification(ctx workflow.Context, in IncidentInput) (*IncidentStatus, error) {
	info := workflow.GetInfo(ctx)
	declaredAt := workflow.Now(ctx).UTC()
	detectedAt, err := in.Validate(declaredAt)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	id := in.ID
	if id == "" {
		var ok bool
		if id, ok = IncidentIDFromWorkflowID(info.WorkflowExecution.ID); !ok || !incidentIDPattern.MatchString(id) {
			return nil, temporal.NewNonRetryableApplicationError(`IncidentNotification input: field "id" is missing and the workflow ID is not incident-<id>`, ErrInvalidInput, nil)
		}
	} else if info.WorkflowExecution.ID != IncidentWorkflowID(id) {
		return nil, temporal.NewNonRetryableApplicationError(`IncidentNotification input: the workflow ID must be incident-<id> for field "id"`, ErrInvalidInput, nil)
	}
	reportedBy := in.ReportedBy
	if reportedBy == "" {
		reportedBy = "unknown"
	}
	r := &incidentRun{ctx: ctx, id: id, wfID: info.WorkflowExecution.ID, done: map[string]bool{}, wake: workflow.NewBufferedChannel(ctx, 1)}
	r.status = IncidentStatus{IncidentID: id, Severity: in.Severity, PersonalData: in.PersonalData,
		DetectedAt: detectedAt, DeclaredAt: declaredAt}
	// The query answers from the first workflow task on, before the record exists.
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (IncidentStatus, error) { return r.snapshot(), nil }); err != nil {
		return nil, err
	}
	if err := r.setUpdateHandlers(); err != nil {
		return nil, err
	}
	rctx := withOptions(ctx, incidentRecordOptions)
	if err := workflow.ExecuteActivity(rctx, incidentAct.DeclareIncident, activities.DeclareIncidentInput{
		ID: id, WorkflowID: r.wfID, Title: in.Title, Summary: in.Summary, Severity: in.Severity, ReportedBy: reportedBy,
		PersonalData: in.PersonalData, DetectedAt: detectedAt, DeclaredAt: declaredAt,
	}).Get(ctx, &r.clocks); err != nil {
		return nil, err
	}
	r.status.Stage = r.clocks.Stages[0]
	r.status.Amazon = NotificationState{DueAt: detectedAt.Add(r.clocks.AmazonDeadline)}
	if in.PersonalData {
		r.status.ICO = &NotificationState{DueAt: detectedAt.Add(r.clocks.ICODeadline)}
	}
	r.plan()
	workflow.Go(ctx, r.publisher)
	r.touch()
	return r.loop()
}

// plan lists the clock events: reminders, auto-send and the deadline for
// Amazon; for the ICO its reminders (the Amazon ones scaled to its deadline)
// and its deadline.
func (r *incidentRun) plan() {
	c, d := r.clocks, r.status.DetectedAt
	for i, rem := range c.Reminders {
		r.events = append(r.events, clockEvent{at: d.Add(rem), kind: "reminder", target: incident.TargetAmazon, n: i + 1})
	}
	if c.AutoSend > 0 {
		r.events = append(r.events, clockEvent{at: d.Add(c.AutoSend), kind: "auto-send", target: incident.TargetAmazon})
	}
	r.events = append(r.events, clockEvent{at: d.Add(c.AmazonDeadline), kind: "deadline", target: incident.TargetAmazon})
	if r.status.ICO != nil {
		for i, rem := range c.Reminders {
			scaled := time.Duration(float64(rem) * float64(c.ICODeadline) / float64(c.AmazonDeadline)).Round(time.Second)
			r.events = append(r.events, clockEvent{at: d.Add(scaled), kind: "reminder", target: incident.TargetICO, n: i + 1})
		}
		r.events = append(r.events, clockEvent{at: d.Add(c.ICODeadline), kind: "deadline", target: incident.TargetICO})
	}
	sort.SliceStable(r.events, func(i, j int) bool { return r.events[i].at.Before(r.events[j].at) })
}

// relevant tells whether a clock event still has something to do.
func (r *incidentRun) relevant(e clockEvent) bool {
	if r.done[e.key()] || r.status.Closed {
		return false
	}
	if e.target == incident.TargetAmazon {
		return r.status.Amazon.SentAt == nil && !(e.kind == "auto-send" && r.status.Amazon.Sending)
	}
	return r.status.ICO.ReportedAt == nil
}

func (r *incidentRun) next() *clockEvent {
	for i := range r.events {
		if r.relevant(r.events[i]) {
			return &r.events[i]
		}
	}
	return nil
}

// loop waits for the next clock event, a signal or the e-mail's outcome until
// the incident is closed.
func (r *incidentRun) loop() (*IncidentStatus, error) {
	ctx := r.ctx
	chans := map[string]workflow.ReceiveChannel{}
	names := []string{SignalApproveNotification, SignalAdvanceStage, SignalICOReported, SignalClose, SignalConfirmFalsePositive}
	for _, n := range names {
		chans[n] = workflow.GetSignalChannel(ctx, n)
	}
	for !r.status.Closed {
		r.searchAttributes()
		sel := workflow.NewSelector(ctx)
		for _, n := range names {
			sel.AddReceive(chans[n], func(c workflow.ReceiveChannel, more bool) {
				var raw json.RawMessage
				c.Receive(ctx, &raw)
				r.signal(c.Name(), raw)
			})
		}
		sel.AddReceive(r.wake, func(c workflow.ReceiveChannel, more bool) { c.ReceiveAsync(nil) })
		if r.sending != nil {
			sel.AddFuture(r.sending, r.sent)
		}
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		if e := r.next(); e != nil {
			ev := *e
			wait := ev.at.Sub(workflow.Now(ctx))
			if wait < 0 {
				wait = 0
			}
			sel.AddFuture(workflow.NewTimer(timerCtx, wait), func(f workflow.Future) {
				if f.Get(ctx, nil) == nil {
					r.fire(ev)
				}
			})
		}
		sel.Select(ctx)
		cancelTimer()
	}
	// Let the last Slack update go out before the run ends.
	_ = workflow.Await(ctx, func() bool {
		return !r.dirty && !r.busy && len(r.notices) == 0 && workflow.AllHandlersFinished(ctx)
	})
	r.searchAttributes()
	st := r.snapshot()
	return &st, nil
}

// fire acts on a clock event.
func (r *incidentRun) fire(e clockEvent) {
	ctx := r.ctx
	r.done[e.key()] = true
	due := r.status.Amazon.DueAt
	if e.target == incident.TargetICO {
		due = r.status.ICO.DueAt
	}
	switch e.kind {
	case "reminder":
		r.record(ctx, activities.IncidentEvent{Kind: "reminder", Actor: incidentClock, Detail: map[string]any{"target": e.target, "n": e.n}})
		r.notices = append(r.notices, activities.IncidentNotice{IncidentID: r.id, Kind: "reminder", Target: e.target, DueAt: due})
	case "auto-send":
		r.record(ctx, activities.IncidentEvent{Kind: "auto-send", Actor: incidentClock, Detail: map[string]any{"target": e.target}})
		r.send(ctx, incidentAutoSend, "", true)
	case "deadline":
		st := &r.status.Amazon
		if e.target == incident.TargetICO {
			st = r.status.ICO
		}
		st.Breached = true
		r.record(ctx, activities.IncidentEvent{Kind: "deadline-breached", Actor: incidentClock,
			Detail: map[string]any{"target": e.target, "dueAt": due, "sending": st.Sending}})
		r.notices = append(r.notices, activities.IncidentNotice{IncidentID: r.id, Kind: "breach", Target: e.target, DueAt: due})
	}
	r.touch()
}

// send starts the e-mail to Amazon in the background: the clocks keep running
// while the SMTP server is down.
func (r *incidentRun) send(ctx workflow.Context, by, text string, preliminary bool) {
	if r.status.Amazon.SentAt != nil || r.status.Amazon.Sending {
		return
	}
	r.status.Amazon.Sending, r.status.Amazon.Preliminary = true, preliminary
	r.sending = workflow.ExecuteActivity(withOptions(ctx, incidentSendOptions), incidentAct.SendIncidentNotification,
		activities.SendIncidentNotificationInput{IncidentID: r.id, Key: r.wfID + "/sent-" + incident.TargetAmazon, By: by,
			Text: text, Preliminary: preliminary})
}

// sent records the e-mail's outcome (it only fails if the run is cancelled).
func (r *incidentRun) sent(f workflow.Future) {
	r.sending = nil
	r.status.Amazon.Sending = false
	var s incident.Sent
	if err := f.Get(r.ctx, &s); err != nil {
		workflow.GetLogger(r.ctx).Error("Amazon notification not sent", "incident", r.id, "error", err.Error())
		return
	}
	at := s.At.UTC()
	r.status.Amazon.SentAt, r.status.Amazon.MessageID = &at, s.MessageID
	r.touch()
}

// signal applies one signal; a bad one is refused and recorded, as is a
// refusal of a known person.
func (r *incidentRun) signal(name string, raw json.RawMessage) {
	ctx := r.ctx
	apply, err := r.decide(ctx, name, raw, r.approver)
	var refused *refusal
	var unchanged unchangedError
	switch {
	case errors.As(err, &refused):
		r.refuse(ctx, refused.kind, refused.actor, refused.detail)
		err = nil
	case errors.As(err, &unchanged):
		err = nil
	case err == nil:
		apply(ctx)
	}
	if err != nil {
		r.status.RefusedSignals++
		r.record(ctx, activities.IncidentEvent{Kind: "signal-refused", Actor: "unknown",
			Detail: map[string]any{"signal": name, "reason": err.Error()}})
	}
	r.touch()
}

// whoFunc resolves "by" to the id recorded for it, and whether it may approve.
type whoFunc func(ctx workflow.Context, by string) (activities.ApproverCheck, error)

// refusal is a decision refused to a known person: a signal's is recorded on
// the timeline, an Update's is the caller's answer.
type refusal struct {
	kind, actor string
	detail      map[string]any
	msg         string
}

func (e *refusal) Error() string { return e.msg }

// unchangedError: the decision is already in effect. A signal is then a
// no-op; an Update is refused with the message.
type unchangedError string

func (e unchangedError) Error() string { return string(e) }

// decide decodes the decision name carries and checks it against the run's
// state; apply carries it out. Only who may run an activity, so decide is
// deterministic and changes nothing when who does not.
func (r *incidentRun) decide(ctx workflow.Context, name string, raw json.RawMessage, who whoFunc) (apply func(ctx workflow.Context), err error) {
	switch name {
	case SignalApproveNotification:
		var s ApproveNotificationSignal
		if err = decodeIncidentSignal(raw, &s); err == nil {
			return r.decideApprove(ctx, s, who)
		}
	case SignalAdvanceStage:
		var s AdvanceStageSignal
		if err = decodeIncidentSignal(raw, &s); err == nil {
			return r.decideAdvance(ctx, s, who)
		}
	case SignalICOReported:
		var s ICOReportedSignal
		if err = decodeIncidentSignal(raw, &s); err == nil {
			return r.decideICOReported(ctx, s, who)
		}
	case SignalClose:
		var s CloseSignal
		if err = decodeIncidentSignal(raw, &s); err == nil {
			return r.decideClose(ctx, s, who)
		}
	case SignalConfirmFalsePositive:
		var s ConfirmFalsePositiveSignal
		if err = decodeIncidentSignal(raw, &s); err == nil {
			return r.decideConfirmFalsePositive(ctx, s, who)
		}
	default:
		err = fmt.Errorf("unknown decision %q", name)
	}
	return nil, err
}

// approver resolves "by" with the CheckIncidentApprover activity.
func (r *incidentRun) approver(ctx workflow.Context, by string) (activities.ApproverCheck, error) {
	if err := checkIncidentBy(by); err != nil {
		return activities.ApproverCheck{}, err
	}
	var c activities.ApproverCheck
	err := workflow.ExecuteActivity(withOptions(ctx, incidentRecordOptions), incidentAct.CheckIncidentApprover, by).Get(ctx, &c)
	return c, err
}

// refuse records a refusal by a known person (no signal-refused count: the
// payload was fine).
func (r *incidentRun) refuse(ctx workflow.Context, kind, actor string, detail map[string]any) {
	r.record(ctx, activities.IncidentEvent{Kind: kind, Actor: actor, Detail: detail})
}

const msgNotApprover = "only the incident approvers (DPP_INCIDENT_APPROVERS) may do this"

func (r *incidentRun) notification(target string) *NotificationState {
	if target == incident.TargetICO {
		return r.status.ICO
	}
	return &r.status.Amazon
}

func (r *incidentRun) decideApprove(ctx workflow.Context, s ApproveNotificationSignal, who whoFunc) (func(workflow.Context), error) {
	if s.Target == incident.TargetICO && r.status.ICO == nil {
		return nil, errors.New(`field "target" is ico, but no personal data is involved`)
	}
	c, err := who(ctx, s.By)
	if err != nil {
		return nil, err
	}
	if !c.Approver {
		return nil, &refusal{kind: "approval-refused", actor: c.Ref, detail: map[string]any{"target": s.Target, "reason": "not-an-approver"}, msg: msgNotApprover}
	}
	if st := r.notification(s.Target); st.ApprovedAt != nil || st.SentAt != nil {
		return nil, &refusal{kind: "approval-ignored", actor: c.Ref, detail: map[string]any{"target": s.Target, "reason": "already-approved"},
			msg: "the notification to " + s.Target + " is already approved or sent"}
	}
	return func(ctx workflow.Context) {
		st := r.notification(s.Target)
		now := workflow.Now(ctx).UTC()
		st.ApprovedBy, st.ApprovedAt = c.Ref, &now
		r.record(ctx, activities.IncidentEvent{Kind: "approved", Actor: c.Ref, Detail: map[string]any{"target": s.Target, "edited": s.Text != ""},
			Note: s.Text})
		if s.Target == incident.TargetAmazon {
			r.send(ctx, c.Ref, s.Text, false)
		}
	}, nil
}

func (r *incidentRun) decideAdvance(ctx workflow.Context, s AdvanceStageSignal, who whoFunc) (func(workflow.Context), error) {
	stage := s.Stage
	if stage == "" {
		if stage = r.nextStage(); stage == "" {
			return nil, errors.New(`field "stage" is empty and the incident is at the last stage`)
		}
	}
	if !slices.Contains(r.clocks.Stages, stage) {
		return nil, errors.New(`field "stage" is not one of DPP_INCIDENT_STAGES`)
	}
	if stage == r.status.Stage {
		return nil, unchangedError(`the incident is already at stage ` + stage)
	}
	c, err := who(ctx, s.By)
	if err != nil {
		return nil, err
	}
	return func(ctx workflow.Context) {
		from := r.status.Stage
		r.status.Stage = stage
		r.record(ctx, activities.IncidentEvent{Kind: "stage-advanced", Actor: c.Ref, Stage: stage, Note: s.Note, NoteRef: s.NoteRef,
			Detail: map[string]any{"stage": stage, "from": from}})
	}, nil
}

func (r *incidentRun) nextStage() string {
	i := slices.Index(r.clocks.Stages, r.status.Stage)
	if i < 0 || i+1 >= len(r.clocks.Stages) {
		return ""
	}
	return r.clocks.Stages[i+1]
}

func (r *incidentRun) decideICOReported(ctx workflow.Context, s ICOReportedSignal, who whoFunc) (func(workflow.Context), error) {
	if r.status.ICO == nil {
		return nil, errors.New("no personal data is involved: there is no ICO report to record")
	}
	if r.status.ICO.ReportedAt != nil {
		return nil, unchangedError("the ICO report is already recorded")
	}
	c, err := who(ctx, s.By)
	if err != nil {
		return nil, err
	}
	return func(ctx workflow.Context) {
		now := workflow.Now(ctx).UTC()
		r.status.ICO.ReportedAt, r.status.ICO.Reference = &now, s.Reference
		r.record(ctx, activities.IncidentEvent{Kind: "ico-reported", Actor: c.Ref, ICOReference: s.Reference,
			Detail: map[string]any{"reference": s.Reference}})
	}, nil
}

func (r *incidentRun) decideClose(ctx workflow.Context, s CloseSignal, who whoFunc) (func(workflow.Context), error) {
	if s.FalsePositive {
		if s.Reason == "" && s.ReasonRef == "" {
			return nil, errors.New(`field "reason" is required to close as a false positive`)
		}
		c, err := who(ctx, s.By)
		if err != nil {
			return nil, err
		}
		if !c.Approver {
			return nil, &refusal{kind: "close-refused", actor: c.Ref, detail: map[string]any{"reason": "not-an-approver"}, msg: msgNotApprover}
		}
		return func(ctx workflow.Context) {
			r.status.FalsePositiveProposedBy = c.Ref
			r.record(ctx, activities.IncidentEvent{Kind: "false-positive-proposed", Actor: c.Ref, Note: s.Reason, NoteRef: s.ReasonRef})
		}, nil
	}
	if s.Lessons == "" && s.LessonsRef == "" {
		return nil, errors.New(`field "lessons" is required to close (a lessons-learned note)`)
	}
	c, err := who(ctx, s.By)
	if err != nil {
		return nil, err
	}
	var missing []string
	if r.status.Amazon.SentAt == nil {
		missing = append(missing, "amazon-not-notified")
	}
	if r.status.ICO != nil && r.status.ICO.ReportedAt == nil {
		missing = append(missing, "ico-not-reported")
	}
	if len(missing) > 0 {
		return nil, &refusal{kind: "close-refused", actor: c.Ref, detail: map[string]any{"reason": missing},
			msg: "not closed: " + strings.Join(missing, ", ") + " (close it as a false positive if it was one)"}
	}
	return func(ctx workflow.Context) { r.finish(ctx, c.Ref, incident.OutcomeResolved, s.Lessons, s.LessonsRef) }, nil
}

func (r *incidentRun) decideConfirmFalsePositive(ctx workflow.Context, s ConfirmFalsePositiveSignal, who whoFunc) (func(workflow.Context), error) {
	if r.status.FalsePositiveProposedBy == "" {
		return nil, errors.New("nobody proposed closing as a false positive")
	}
	c, err := who(ctx, s.By)
	if err != nil {
		return nil, err
	}
	if !c.Approver || c.Ref == r.status.FalsePositiveProposedBy {
		return nil, &refusal{kind: "close-refused", actor: c.Ref, detail: map[string]any{"reason": "needs-a-second-approver"},
			msg: "a second approver, not the one who proposed it, must confirm a false positive"}
	}
	return func(ctx workflow.Context) { r.finish(ctx, c.Ref, incident.OutcomeFalsePositive, "", "") }, nil
}

func (r *incidentRun) finish(ctx workflow.Context, by, outcome, lessons, lessonsRef string) {
	now := workflow.Now(ctx).UTC()
	r.status.Closed, r.status.ClosedAt, r.status.Outcome = true, &now, outcome
	r.record(ctx, activities.IncidentEvent{Kind: "closed", Actor: by, Outcome: outcome, Note: lessons, NoteRef: lessonsRef,
		Detail: map[string]any{"outcome": outcome}})
}

// record writes a timeline entry with an idempotency key from the run's steps.
func (r *incidentRun) record(ctx workflow.Context, e activities.IncidentEvent) {
	r.steps++
	e.IncidentID, e.Key = r.id, fmt.Sprintf("%s/%s/%d", r.wfID, e.Kind, r.steps)
	if e.At.IsZero() {
		e.At = workflow.Now(ctx).UTC()
	}
	if err := workflow.ExecuteActivity(withOptions(ctx, incidentRecordOptions), incidentAct.RecordIncidentEvent, e).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("Cannot record an incident event", "incident", r.id, "kind", e.Kind, "error", err.Error())
	}
}

func (r *incidentRun) touch() { r.dirty = true }

// publisher keeps the Slack message current and sends the notices, beside the
// main loop, so Slack's pace never delays a clock.
func (r *incidentRun) publisher(ctx workflow.Context) {
	sctx := withOptions(ctx, incidentSlackOptions)
	for {
		r.busy = false
		if err := workflow.Await(ctx, func() bool { return r.dirty || len(r.notices) > 0 }); err != nil {
			return
		}
		r.busy = true
		if len(r.notices) > 0 {
			n := r.notices[0]
			r.notices = r.notices[1:]
			if err := workflow.ExecuteActivity(sctx, incidentAct.NotifyIncidentPeople, n).Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Warn("Incident notice not delivered to Slack", "incident", r.id, "kind", n.Kind, "error", err.Error())
			}
			continue
		}
		r.dirty = false
		if err := workflow.ExecuteActivity(sctx, incidentAct.PublishIncident, activities.PublishIncidentInput{IncidentID: r.id, View: r.view()}).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("Incident message not updated in Slack", "incident", r.id, "error", err.Error())
		}
	}
}

func (r *incidentRun) view() incident.View {
	v := incident.View{Stage: r.status.Stage, NextStage: r.nextStage(), AmazonDueAt: r.status.Amazon.DueAt,
		AmazonSentAt: r.status.Amazon.SentAt, Closed: r.status.Closed, Outcome: r.status.Outcome,
		FalsePositiveProposed: r.status.FalsePositiveProposedBy != ""}
	if r.status.Amazon.Breached {
		v.Breaches = append(v.Breaches, incident.TargetAmazon)
	}
	if ico := r.status.ICO; ico != nil {
		due := ico.DueAt
		v.ICODueAt, v.ICOReportedAt, v.ICOApproved = &due, ico.ReportedAt, ico.ApprovedAt != nil
		if ico.Breached {
			v.Breaches = append(v.Breaches, incident.TargetICO)
		}
	}
	return v
}

// nextDeadline is the earliest deadline still open.
func (r *incidentRun) nextDeadline() *time.Time {
	if r.status.Closed || r.status.Amazon.DueAt.IsZero() {
		return nil
	}
	var next *time.Time
	if r.status.Amazon.SentAt == nil {
		d := r.status.Amazon.DueAt
		next = &d
	}
	if ico := r.status.ICO; ico != nil && ico.ReportedAt == nil && (next == nil || ico.DueAt.Before(*next)) {
		d := ico.DueAt
		next = &d
	}
	return next
}

// searchAttributes keeps ComplianceDeadline on the next open deadline, so the
// Web UI lists incidents by urgency; it is removed once none is open.
func (r *incidentRun) searchAttributes() {
	var u temporal.SearchAttributeUpdate
	if d := r.nextDeadline(); d != nil {
		u = ComplianceDeadlineKey.ValueSet(*d)
	} else {
		u = ComplianceDeadlineKey.ValueUnset()
	}
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, u)
}

func (r *incidentRun) snapshot() IncidentStatus {
	st := r.status
	st.NextDeadline = r.nextDeadline()
	st.OpenApprovals = []string{}
	if st.Amazon.ApprovedAt == nil && st.Amazon.SentAt == nil && !st.Closed {
		st.OpenApprovals = append(st.OpenApprovals, incident.TargetAmazon)
	}
	if st.ICO != nil && st.ICO.ApprovedAt == nil && st.ICO.ReportedAt == nil && !st.Closed {
		st.OpenApprovals = append(st.OpenApprovals, incident.TargetICO)
	}
	if st.ICO != nil {
		ico := *st.ICO
		st.ICO = &ico
	}
	return st
}
