package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/internal/freetext"
)

// ComplianceCalendarInput names the duty a calendar schedule starts.
type ComplianceCalendarInput struct {
	Duty    string `json:"duty"`
	problem error
}

// Validate names the bad field.
func (in ComplianceCalendarInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf("ComplianceCalendar input: %w", in.problem)
	}
	if !calendar.Known(in.Duty) {
		return fmt.Errorf(`ComplianceCalendar input: field "duty" must be one of %v`, calendar.Duties)
	}
	return nil
}

// ComplianceCalendarResult is the occurrence a run started (or found running).
type ComplianceCalendarResult struct {
	WorkflowID string    `json:"workflowId,omitempty"`
	DueAt      time.Time `json:"dueAt,omitempty"`
	// NotYet: nothing is due this time (the LWA secret is far from expiry).
	NotYet bool `json:"notYet,omitempty"`
}

// ComplianceCalendar is what each duty's schedule (DutyScheduleID) runs: it
// plans the duty's occurrence for now and starts its ComplianceDuty workflow
// (ID duty-<duty>-<period>), which outlives it. Starting an occurrence that
// already runs or ran changes nothing, so the schedule may fire as often as it
// likes (the LWA rotation checks daily; its period is the secret's issue date).
func ComplianceCalendar(ctx workflow.Context, in ComplianceCalendarInput) (*ComplianceCalendarResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	var a *activities.Calendar
	var plan activities.DutyPlan
	if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.PlanDuty,
		activities.PlanDutyInput{Duty: in.Duty, Now: workflow.Now(ctx).UTC()}).Get(ctx, &plan); err != nil {
		return nil, err
	}
	if plan.NotYet {
		return &ComplianceCalendarResult{NotYet: true, DueAt: plan.DueAt}, nil
	}
	id := calendar.WorkflowID(plan.Duty, plan.Period)
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(ComplianceDeadlineKey.ValueSet(plan.DueAt)),
	})
	err := workflow.ExecuteChildWorkflow(child, ComplianceDutyName, plan).GetChildWorkflowExecution().Get(ctx, nil)
	if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return nil, err
	}
	return &ComplianceCalendarResult{WorkflowID: id, DueAt: plan.DueAt}, nil
}

// CompleteDutyRequest is the complete signal's and update's payload.
type CompleteDutyRequest struct {
	// By is who did the duty: a person, operator or Slack user id.
	By   string `json:"by"`
	Note string `json:"note,omitempty"`
	// NoteRef names a note sealed before the update was sent
	// (internal/freetext), so its text never enters this workflow's history.
	NoteRef string `json:"noteRef,omitempty"`
	// ReportSHA256 names an attached report (required for vulnerability-scan).
	ReportSHA256 string `json:"reportSha256,omitempty"`
	// RotatedAt is when the new LWA client secret was issued (required for
	// lwa-secret-rotation; not in the future).
	RotatedAt *time.Time `json:"rotatedAt,omitempty"`
	problem   error
}

// DutyStatus is the status query's answer and the workflow's result.
type DutyStatus struct {
	Duty      string               `json:"duty"`
	Period    string               `json:"period"`
	DueAt     time.Time            `json:"dueAt"`
	Reminders int                  `json:"reminders"`
	Overdue   bool                 `json:"overdue"`
	Completed *calendar.Occurrence `json:"completed,omitempty"`
}

var (
	dutyActorRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	shaRE       = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// validateCompletion checks a completion without echoing any value.
func validateCompletion(duty string, now time.Time, r CompleteDutyRequest) error {
	switch {
	case r.problem != nil:
		return r.problem
	case !dutyActorRE.MatchString(r.By):
		return errors.New(`field "by" must be a person, operator or Slack user id`)
	case utf8.RuneCountInString(r.Note) > 500:
		return errors.New(`field "note" must be at most 500 characters`)
	case r.NoteRef != "" && !freetext.RefPattern.MatchString(r.NoteRef):
		return errors.New(`field "noteRef" must be a sealed note's ref (letters, digits and . _ : / -)`)
	case r.NoteRef != "" && r.Note != "":
		return errors.New(`fields "note" and "noteRef" exclude each other`)
	case r.ReportSHA256 != "" && !shaRE.MatchString(r.ReportSHA256):
		return errors.New(`field "reportSha256" must be 64 lower-case hex digits`)
	case duty == calendar.VulnerabilityScan && r.ReportSHA256 == "":
		return errors.New(`field "reportSha256" is required: a vulnerability scan is done when its report is attached`)
	case duty == calendar.LWASecretRotation && r.RotatedAt == nil:
		return errors.New(`field "rotatedAt" is required: when the new LWA client secret was issued`)
	case r.RotatedAt != nil && r.RotatedAt.After(now.Add(time.Minute)):
		return errors.New(`field "rotatedAt" must not be in the future`)
	}
	return nil
}

// completion is one request waiting for the main loop to record it.
type completion struct {
	req  CompleteDutyRequest
	done bool
	err  error
}

// ComplianceDuty is one occurrence of a periodic duty (ID duty-<duty>-<period>).
// It records the occurrence, keeps ComplianceDeadline on its due time, posts a
// reminder to the DPO channel when it opens and DutyPlan.Reminders before the
// due time, escalates at the due time and every OverdueEvery after, and ends
// when the duty is completed (complete update, complete signal, or the Slack
// button) with its evidence in the evidence log.
func ComplianceDuty(ctx workflow.Context, input ComplianceDutyInput) (*DutyStatus, error) {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := input.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	in := input.DutyPlan
	if id != calendar.WorkflowID(in.Duty, in.Period) {
		return nil, temporal.NewNonRetryableApplicationError(`ComplianceDuty input: field "period" must be a period label and the workflow ID duty-<duty>-<period>`, ErrInvalidInput, nil)
	}
	var a *activities.Calendar
	st := &DutyStatus{Duty: in.Duty, Period: in.Period, DueAt: in.DueAt}
	var queue []*completion
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (DutyStatus, error) { return *st, nil }); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCompleteDuty,
		func(ctx workflow.Context, r CompleteDutyRequest) (DutyStatus, error) {
			if st.Completed != nil {
				return *st, nil
			}
			c := &completion{req: r}
			queue = append(queue, c)
			if err := workflow.Await(ctx, func() bool { return c.done }); err != nil {
				return DutyStatus{}, err
			}
			return *st, c.err
		}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r CompleteDutyRequest) error {
			return validateCompletion(in.Duty, workflow.Now(ctx), r)
		}}); err != nil {
		return nil, err
	}
	signals := workflow.GetSignalChannel(ctx, SignalCompleteDuty)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var r CompleteDutyRequest
			signals.Receive(ctx, &r)
			if err := validateCompletion(in.Duty, workflow.Now(ctx), r); err != nil {
				workflow.GetLogger(ctx).Warn("Ignored a complete signal", "workflowId", id, "problem", err.Error())
				continue
			}
			queue = append(queue, &completion{req: r})
		}
	})

	start := workflow.Now(ctx).UTC()
	if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.OpenDuty, activities.DutyOpen{
		Duty: in.Duty, Period: in.Period, OpenedAt: start, DueAt: in.DueAt}).Get(ctx, nil); err != nil {
		return nil, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ComplianceDeadlineKey.ValueSet(in.DueAt)); err != nil {
		return nil, err
	}
	times := reminderTimes(start, in)
	for next := 0; st.Completed == nil; {
		at := reminderAt(times, in, next)
		if len(queue) == 0 {
			if _, err := workflow.AwaitWithTimeout(ctx, at.Sub(workflow.Now(ctx)), func() bool { return len(queue) > 0 }); err != nil {
				return nil, err
			}
		}
		if len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			var o calendar.Occurrence
			c.err = workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.CompleteDuty, calendar.Completion{
				Duty: in.Duty, Period: in.Period, By: c.req.By, At: workflow.Now(ctx).UTC(), Note: c.req.Note, NoteRef: c.req.NoteRef,
				ReportSHA256: c.req.ReportSHA256, RotatedAt: c.req.RotatedAt}).Get(ctx, &o)
			if c.err == nil {
				st.Completed = &o
			}
			c.done = true
			continue
		}
		if workflow.Now(ctx).Before(at) {
			continue
		}
		st.Overdue = !workflow.Now(ctx).Before(in.DueAt)
		var sent bool
		if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.RemindDuty, activities.DutyReminder{
			WorkflowID: id, Duty: in.Duty, Period: in.Period, DueAt: in.DueAt, Overdue: st.Overdue, N: next + 1,
		}).Get(ctx, &sent); err != nil {
			// A reminder that cannot be posted must not stop the duty; the
			// deadline alert still fires from ComplianceDeadline.
			workflow.GetLogger(ctx).Warn("Duty reminder not posted", "workflowId", id, "error", err)
		}
		st.Reminders++
		next++
	}
	// Fail every request still queued: the duty is already done.
	for _, c := range queue {
		c.done = true
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ComplianceDeadlineKey.ValueUnset()); err != nil {
		return nil, err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return nil, err
	}
	return st, nil
}

// reminderTimes are the reminders before the due time: when the duty opens,
// then DueAt minus each of in.Reminders still ahead, then the due time itself,
// in time order.
func reminderTimes(start time.Time, in activities.DutyPlan) []time.Time {
	times := []time.Time{start}
	for _, r := range in.Reminders {
		if t := in.DueAt.Add(-r); t.After(start) && t.Before(in.DueAt) {
			times = append(times, t)
		}
	}
	if in.DueAt.After(start) {
		times = append(times, in.DueAt)
	}
	slices.SortFunc(times, time.Time.Compare)
	return times
}

// reminderAt is the time of reminder i: one of times, then every OverdueEvery
// after the due time.
func reminderAt(times []time.Time, in activities.DutyPlan, i int) time.Time {
	if i < len(times) {
		return times[i]
	}
	last := times[len(times)-1]
	return last.Add(time.Duration(i-len(times)+1) * in.OverdueEvery)
}
