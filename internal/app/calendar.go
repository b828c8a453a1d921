package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/alerts"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/metrics"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/workflows"
)

// DutyReportPath is the scanner webhook on the public listener (bearer
// DPP_INGEST_TOKEN): the body is the scan report, stored and attached to the
// open vulnerability-scan duty, which it completes.
const DutyReportPath = "/duties/vulnerability-scan/report"

// Duties is the calendar's database service (Database, Sealing).
func (a *App) Duties() *calendar.Service {
	return &calendar.Service{Pool: a.Pool, Signer: a.Signer, Texts: a.FreeTexts()}
}

// CalendarActivities are the compliance calendar's activities.
func (a *App) CalendarActivities() *activities.Calendar {
	c := a.Config
	return &activities.Calendar{Duties: a.Duties(), Slack: a.Slack, Policy: activities.CalendarPolicy{
		Channel: c.DPOChannel, Window: c.DutyWindow, Reminders: c.DutyReminders, OverdueEvery: c.DutyOverdueEvery,
		LWAIssuedAt: c.LWASecretIssuedAt, LWARotateBefore: c.LWARotateBefore,
	}}
}

// AlertActivities are the alert check's activities (Database, Temporal, Slack).
func (a *App) AlertActivities() *activities.Alerts {
	c := a.Config
	return &activities.Alerts{Slack: a.Slack, Channel: c.DPOChannel, Checker: &alerts.Checker{
		Store:    &alerts.Store{Pool: a.Pool},
		Temporal: &alertTemporal{c: a.Temporal},
		Limits: alerts.Thresholds{SyncLag: c.AlertSyncLag, DeadlineWarning: c.AlertDeadlineWarning,
			PurgeGrace: alerts.DefaultPurgeGrace, TaxGrace: alerts.DefaultTaxGrace},
	}}
}

// AmazonDataActivities are AmazonDataSweep's activities.
func (a *App) AmazonDataActivities() *activities.AmazonData {
	return &activities.AmazonData{Orders: a.Orders, Retention: a.Config.AmazonDataRetention}
}

// alertTemporal answers the alert check's questions with the Temporal client.
type alertTemporal struct{ c client.Client }

func (t *alertTemporal) Schedule(ctx context.Context, id string) (alerts.ScheduleState, error) {
	d, err := t.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return alerts.ScheduleState{Missing: true}, nil
	}
	if err != nil {
		return alerts.ScheduleState{}, err
	}
	s := alerts.ScheduleState{Skipped: int64(d.Info.NumActionsMissedCatchupWindow + d.Info.NumActionsSkippedOverlap)}
	if d.Schedule.State != nil {
		s.Paused = d.Schedule.State.Paused
	}
	if n := len(d.Info.RecentActions); n > 0 {
		last := d.Info.RecentActions[n-1]
		s.LastActionAt = last.ActualTime
		if last.StartWorkflowResult != nil {
			s.LastWorkflowID = last.StartWorkflowResult.WorkflowID
			run, err := t.c.DescribeWorkflow(ctx, last.StartWorkflowResult.WorkflowID, "") // the latest run: a continued-as-new chain ends there
			if err != nil && !errors.As(err, &nf) {
				return s, err
			}
			if err == nil {
				switch run.Status {
				case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
					enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
					s.LastRunFailed = true
				}
			}
		}
	}
	return s, nil
}

// deadlineQueried are the workflows whose deadline is read from their status
// query (their "deadline" field) when they have no ComplianceDeadline: runs
// started before AccessReview and Offboarding set it.
var deadlineQueried = []string{workflows.AccessReviewName, workflows.OffboardingName}

// Deadlines: every running workflow whose ComplianceDeadline is before the
// given time (incidents, duties, access reviews, offboardings), and the older
// running access reviews and offboardings whose status query's deadline is.
func (t *alertTemporal) Deadlines(ctx context.Context, before time.Time) ([]alerts.Deadline, error) {
	out, err := t.listDeadlines(ctx, fmt.Sprintf("ExecutionStatus = 'Running' AND %s < '%s'",
		workflows.ComplianceDeadlineKey.GetName(), before.UTC().Format(time.RFC3339)))
	if err != nil {
		return nil, err
	}
	queried, err := t.listDeadlines(ctx, fmt.Sprintf("ExecutionStatus = 'Running' AND WorkflowType IN ('%s') AND %s IS NULL",
		strings.Join(deadlineQueried, "', '"), workflows.ComplianceDeadlineKey.GetName()))
	if err != nil {
		return nil, err
	}
	for _, d := range queried {
		v, err := t.c.QueryWorkflow(ctx, d.WorkflowID, "", workflows.QueryStatus)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			continue // it ended meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", d.WorkflowID, err)
		}
		var st struct {
			Deadline time.Time `json:"deadline"`
			Done     bool      `json:"done"`
		}
		if err := v.Get(&st); err != nil {
			return nil, fmt.Errorf("status of %s: %w", d.WorkflowID, err)
		}
		if !st.Done && !st.Deadline.IsZero() && st.Deadline.Before(before) {
			d.Deadline = st.Deadline
			out = append(out, d)
		}
	}
	return out, nil
}

func (t *alertTemporal) listDeadlines(ctx context.Context, query string) ([]alerts.Deadline, error) {
	var out []alerts.Deadline
	var token []byte
	for {
		resp, err := t.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.Executions {
			var dl time.Time
			if p := e.GetSearchAttributes().GetIndexedFields()[workflows.ComplianceDeadlineKey.GetName()]; p != nil {
				if err := converter.GetDefaultDataConverter().FromPayload(p, &dl); err != nil {
					return nil, fmt.Errorf("workflow %s: ComplianceDeadline: %w", e.GetExecution().GetWorkflowId(), err)
				}
			}
			out = append(out, alerts.Deadline{WorkflowID: e.GetExecution().GetWorkflowId(), WorkflowType: e.GetType().GetName(), Deadline: dl})
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}

// mountCalendar adds the "Mark done" button and the scanner webhook.
func (a *App) mountCalendar(p *Public) {
	p.Router.OnAction(activities.ActionDutyComplete, a.dutyAction)
	p.Ingest(DutyReportPath, http.HandlerFunc(a.dutyReportIngest))
}

// dutyAction completes the duty whose button was clicked, as the clicking
// Slack user; a rotation is recorded as done at the click.
func (a *App) dutyAction(ctx context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
	req := workflows.CompleteDutyRequest{By: ic.User.ID, Note: "marked done in Slack"}
	o, err := a.Duties().Get(ctx, act.Value)
	if errors.Is(err, calendar.ErrNoOpenDuty) {
		return slackapp.Userf("This duty is unknown: nothing was done.")
	}
	if err != nil {
		return err
	}
	if o.Duty == calendar.LWASecretRotation {
		now := time.Now().UTC()
		req.RotatedAt = &now
	}
	_, err = a.CompleteDuty(ctx, act.Value, req)
	return err
}

// CompleteDuty sends the complete update to a duty's workflow and returns its
// status; the validator's refusal comes back as a user error.
//
// With sealing built, a note is sealed first and only its ref goes to the
// workflow; a refused or failed completion erases it again.
func (a *App) CompleteDuty(ctx context.Context, workflowID string, req workflows.CompleteDutyRequest) (st workflows.DutyStatus, err error) {
	if req.Note != "" && a.Vault != nil {
		texts := a.FreeTexts()
		now := time.Now().UTC()
		// A ref per attempt: a second attempt may carry another note.
		t, serr := texts.Seal(ctx, freetext.KindDutyNote, calendar.KindDutyCompleted+"/"+workflowID+"/note/"+now.Format("20060102T150405.000000000Z"),
			workflowID, req.Note, now)
		if serr == nil {
			serr = texts.Save(ctx, t)
		}
		if serr != nil {
			return st, serr
		}
		req.Note, req.NoteRef = "", t.Ref
		defer func() {
			if err != nil {
				// A note no completion refers to should not wait for its retention.
				err = errors.Join(err, texts.Erase(context.WithoutCancel(ctx), t.Ref))
			}
		}()
	}
	h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflowID,
		UpdateName: workflows.UpdateCompleteDuty, Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return st, slackapp.Userf("Duty %s is already closed or unknown: nothing was done.", workflowID)
	}
	if err != nil {
		return st, err
	}
	err = h.Get(ctx, &st)
	return st, err
}

// dutyReportIngest stores a scanner's report and completes the open
// vulnerability-scan duty with it. ?source= names the scanner (default
// "scanner"). 202: stored and completed; 409: stored, no duty open.
func (a *App) dutyReportIngest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "the report is too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	source := r.URL.Query().Get("source")
	if source == "" {
		source = "scanner"
	}
	rep, err := a.Duties().AttachReport(r.Context(), calendar.VulnerabilityScan, source, r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o, err := a.Duties().OpenOccurrence(r.Context(), calendar.VulnerabilityScan)
	if errors.Is(err, calendar.ErrNoOpenDuty) {
		http.Error(w, "report "+rep.SHA256+" stored; no vulnerability-scan duty is open to complete", http.StatusConflict)
		return
	}
	if err == nil {
		_, err = a.CompleteDuty(r.Context(), o.WorkflowID, workflows.CompleteDutyRequest{By: source, ReportSHA256: rep.SHA256})
	}
	if err != nil {
		a.Log.Sugar().Warnw("Scan report stored but the duty not completed", "sha256", rep.SHA256, "error", err)
		http.Error(w, "report "+rep.SHA256+" stored; completing the duty failed, try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "report %s completed %s\n", rep.SHA256, o.WorkflowID)
}

// alertGauges are the alerts' gauges, read from the alerts table (so every
// worker reports the same, whichever ran the check).
func (a *App) alertGauges() []metrics.Gauge {
	return []metrics.Gauge{
		{Name: "dpp_alerts_open", Help: "Open policy alerts (table alerts): raised by the alert-check schedule and not yet resolved.",
			Read: func(ctx context.Context) (float64, error) {
				return a.scalar(ctx, `SELECT count(*) FROM alerts WHERE cleared_at IS NULL`)
			}},
		{Name: "dpp_alerts_critical_open", Help: "Open alerts of a passed deadline (review, offboarding, duty, incident notification) or a failed evidence chain.",
			Read: func(ctx context.Context) (float64, error) {
				return a.scalar(ctx, `SELECT count(*) FROM alerts WHERE cleared_at IS NULL AND kind = ANY('{`+
					alerts.KindDeadlinePassed+`,`+alerts.KindIncidentOverdue+`,`+alerts.KindEvidenceChain+`}')`)
			}},
	}
}
