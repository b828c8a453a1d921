package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/internal/slackapp"
)

// CalendarPolicy is the compliance calendar's configuration (DPP_DUTY_*,
// DPP_LWA_SECRET_ISSUED_AT, DPP_DPO_CHANNEL; see internal/config).
type CalendarPolicy struct {
	// Channel is where reminders and escalations are posted.
	Channel string
	// Window is how long a person has to do a duty after it opens.
	Window time.Duration
	// Reminders are how long before the due time reminders go out (besides
	// the one when the duty opens), longest first.
	Reminders []time.Duration
	// OverdueEvery is how often an overdue duty is escalated again.
	OverdueEvery time.Duration
	// LWAIssuedAt is when the current LWA client secret was issued (the
	// setting); a completed rotation recorded later wins.
	LWAIssuedAt time.Time
	// LWARotateBefore is how long before the secret's expiry the rotation opens.
	LWARotateBefore time.Duration
}

// Calendar holds what the compliance calendar's activities use.
type Calendar struct {
	Duties *calendar.Service
	// Slack is nil when Slack is not configured: reminders are then skipped
	// (the duty still escalates, through the alerts' metrics).
	Slack  *slackapp.Messenger
	Policy CalendarPolicy
}

// Register registers the calendar activities.
func (x *Calendar) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(x, registerOptions)
}

// PlanDutyInput asks for the occurrence of a duty that starts at Now.
type PlanDutyInput struct {
	Duty string    `json:"duty"`
	Now  time.Time `json:"now"`
}

// DutyPlan is one occurrence of a duty: its workflow's input.
type DutyPlan struct {
	Duty   string    `json:"duty"`
	Period string    `json:"period"`
	DueAt  time.Time `json:"dueAt"`
	// Reminders: how long before DueAt to remind, longest first.
	Reminders    []time.Duration `json:"reminders,omitempty"`
	OverdueEvery time.Duration   `json:"overdueEvery"`
	// NotYet: nothing is due in this period (an LWA secret far from expiry).
	NotYet bool `json:"notYet,omitempty"`
}

// PlanDuty works out the occurrence of a duty that starts now: its period
// label and due time, and for the LWA secret whether its rotation is due yet.
func (x *Calendar) PlanDuty(ctx context.Context, in PlanDutyInput) (DutyPlan, error) {
	p := x.Policy
	now := in.Now.UTC()
	plan := DutyPlan{Duty: in.Duty, DueAt: now.Add(p.Window), Reminders: p.Reminders, OverdueEvery: p.OverdueEvery}
	switch in.Duty {
	case calendar.RiskAssessment:
		plan.Period = now.Format("2006")
	case calendar.IncidentPlanReview:
		half := "H1"
		if now.Month() > 6 {
			half = "H2"
		}
		plan.Period = now.Format("2006") + "-" + half
	case calendar.VulnerabilityScan:
		plan.Period = now.Format("2006-01-02")
	case calendar.LWASecretRotation:
		issued, err := x.Duties.LastRotation(ctx)
		if err != nil {
			return plan, err
		}
		if p.LWAIssuedAt.After(issued) {
			issued = p.LWAIssuedAt.UTC()
		}
		if issued.IsZero() {
			// Nobody recorded when the secret was issued: the duty is to rotate
			// it (and so record it) now.
			plan.Period, plan.DueAt = "unrecorded", now
			return plan, nil
		}
		expiry := issued.Add(calendar.LWASecretLifetime)
		plan.Period, plan.DueAt = issued.Format("2006-01-02"), expiry
		plan.NotYet = now.Before(expiry.Add(-p.LWARotateBefore))
	default:
		return plan, final(ErrInvalidInput, fmt.Errorf("PlanDuty: field \"duty\" must be one of %v", calendar.Duties))
	}
	return plan, nil
}

// OpenDuty records that the occurrence started (idempotent).
func (x *Calendar) OpenDuty(ctx context.Context, in DutyOpen) error {
	err := x.Duties.Open(ctx, in.Duty, in.Period, in.OpenedAt, in.DueAt)
	if errors.Is(err, calendar.ErrUnknownDuty) {
		return final(ErrInvalidInput, err)
	}
	return err
}

// DutyOpen is an occurrence that started.
type DutyOpen struct {
	Duty     string    `json:"duty"`
	Period   string    `json:"period"`
	OpenedAt time.Time `json:"openedAt"`
	DueAt    time.Time `json:"dueAt"`
}

// DutyReminder is one reminder or escalation of an occurrence.
type DutyReminder struct {
	WorkflowID string    `json:"workflowId"`
	Duty       string    `json:"duty"`
	Period     string    `json:"period"`
	DueAt      time.Time `json:"dueAt"`
	// Overdue: an escalation (the due time passed).
	Overdue bool `json:"overdue,omitempty"`
	// N numbers the reminders of the occurrence (message text only).
	N int `json:"n"`
}

// ActionDutyComplete is the action id of the "Mark done" button; its value is
// the occurrence's workflow ID.
const ActionDutyComplete = "duty:complete"

// RemindDuty posts the reminder to the DPO channel and says whether it went out
// (false: Slack or the channel not configured).
func (x *Calendar) RemindDuty(ctx context.Context, in DutyReminder) (bool, error) {
	if x.Slack == nil || x.Policy.Channel == "" {
		return false, nil
	}
	title := calendar.Titles[in.Duty]
	text := fmt.Sprintf(":calendar: *%s* (%s) is due by %s.", title, in.Period, in.DueAt.UTC().Format(time.RFC1123))
	if in.Overdue {
		text = fmt.Sprintf(":rotating_light: *Overdue:* %s (%s) was due by %s and is not recorded as done.",
			title, in.Period, in.DueAt.UTC().Format(time.RFC1123))
	}
	how := "Mark it done here, or record it with `starter duty complete " + in.Duty + " " + in.Period + "`."
	if in.Duty == calendar.VulnerabilityScan {
		how = "Attach the scan report: `starter duty complete " + in.Duty + " " + in.Period + " --report FILE`, or the scanner's webhook."
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text+"\n"+how, false, false), nil, nil),
	}
	if in.Duty != calendar.VulnerabilityScan {
		btn := slack.NewButtonBlockElement(ActionDutyComplete, in.WorkflowID, slack.NewTextBlockObject(slack.PlainTextType, "Mark done", false, false))
		btn.Style = slack.StylePrimary
		blocks = append(blocks, slack.NewActionBlock("duty-actions", btn))
	}
	if _, _, err := x.Slack.Post(ctx, x.Policy.Channel, blocks, text); err != nil {
		return false, err
	}
	return true, nil
}

// CompleteDuty records the completion and its evidence (idempotent).
func (x *Calendar) CompleteDuty(ctx context.Context, in calendar.Completion) (calendar.Occurrence, error) {
	if in.ReportSHA256 != "" {
		ok, err := x.Duties.HasReport(ctx, in.ReportSHA256)
		if err != nil {
			return calendar.Occurrence{}, err
		}
		if !ok {
			return calendar.Occurrence{}, final(ErrInvalidInput, errors.New(`CompleteDuty: field "reportSha256" names no stored report`))
		}
	}
	o, err := x.Duties.Complete(ctx, in)
	if errors.Is(err, calendar.ErrNoOpenDuty) {
		return o, final(ErrInvalidInput, err)
	}
	return o, err
}
