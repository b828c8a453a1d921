package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/mail"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/workflows"
)

// IncidentService is the incident record on the App's database and vault.
func (a *App) IncidentService() *incident.Service {
	return &incident.Service{Pool: a.Pool, Vault: a.Vault, Signer: a.Signer}
}

// IncidentActivities builds the IncidentNotification activities (Database,
// Sealing and, optionally, Slack).
func (a *App) IncidentActivities() *activities.Incident {
	c := a.Config
	x := &activities.Incident{Service: a.IncidentService(), Slack: a.Slack, Policy: activities.IncidentPolicy{
		Channel: c.IncidentChannel, Approvers: c.IncidentApprovers, Stages: c.IncidentStages,
		AmazonDeadline: c.IncidentAmazonDeadline, ICODeadline: c.IncidentICODeadline, Reminders: c.IncidentReminders,
		AutoSend: c.IncidentAutoSend, AmazonEmail: c.AmazonSecurityEmail, Seller: c.SellerName, Contact: c.DPOContact,
	}}
	// SMTP_URL and DPP_MAIL_FROM are validated with the configuration.
	if m, err := mail.New(c.SMTPURL, c.MailFrom); err == nil {
		x.Mail = m
	} else {
		a.Log.Error("Incident e-mail is not configured", zap.Error(err))
	}
	return x
}

// NewIncidentID is a new incident id: the UTC date and 6 random hex digits.
func NewIncidentID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102") + "-" + hex.EncodeToString(b)
}

// IncidentInputError is a declaration IncidentNotification would refuse; its
// text names the field, never a value.
type IncidentInputError struct{ Reason string }

func (e *IncidentInputError) Error() string { return e.Reason }

// DeclareIncident starts IncidentNotification for in (a new id when it has
// none) after checking it as the workflow will, so a caller hears at once
// what is wrong. Declaring an id again starts nothing and reports existing.
func (a *App) DeclareIncident(ctx context.Context, in workflows.IncidentInput) (id string, existing bool, err error) {
	if in.ID == "" {
		in.ID = NewIncidentID(time.Now())
	}
	if _, err := in.Validate(time.Now().UTC()); err != nil {
		return "", false, &IncidentInputError{Reason: err.Error()}
	}
	wfID := workflows.IncidentWorkflowID(in.ID)
	_, err = a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: a.Config.TaskQueue,
		// One workflow per incident ever: a closed incident is not declared again.
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.IncidentNotificationName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return in.ID, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("start %s: %w", wfID, err)
	}
	return in.ID, false, nil
}

// mountIncidents registers the incident routes on the public listener: the
// message's buttons, the /incident command and POST /incidents.
func (a *App) mountIncidents(p *Public) {
	p.Router.OnAction(incident.ActionPrefix, a.incidentAction)
	p.Router.OnView(incident.ViewICOReported, a.incidentICOReported)
	p.Router.OnView(incident.ViewApproveEdited, a.incidentApproveEdited)
	p.Router.OnCommand("/incident", a.incidentCommand)
	p.Ingest(IncidentsPath, http.HandlerFunc(a.incidentIngest))
}

// incidentAction turns a click on an incident message into a signal; the
// workflow checks the approver and records a refusal on the timeline.
func (a *App) incidentAction(ctx context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
	var name string
	var payload any
	switch act.ActionID {
	case incident.ActionApproveAmazon:
		name, payload = workflows.SignalApproveNotification, workflows.ApproveNotificationSignal{By: ic.User.ID, Target: incident.TargetAmazon}
	case incident.ActionApproveICO:
		name, payload = workflows.SignalApproveNotification, workflows.ApproveNotificationSignal{By: ic.User.ID, Target: incident.TargetICO}
	case incident.ActionAdvance:
		name, payload = workflows.SignalAdvanceStage, workflows.AdvanceStageSignal{By: ic.User.ID}
	case incident.ActionEditAmazon:
		return a.openEditModal(ctx, ic, act.Value)
	case incident.ActionICOReference:
		// The trigger id is valid for 3 s: the modal opens now, the signal
		// comes with its submission.
		_, err := a.Slack.OpenModal(ctx, ic.TriggerID, incident.ICOReferenceModal(act.Value))
		return err
	default:
		return slackapp.Userf("This button is not known to this version of the app.")
	}
	err := a.Temporal.SignalWorkflow(ctx, workflows.IncidentWorkflowID(act.Value), "", name, payload)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return slackapp.Userf("Incident %s is closed or unknown: nothing was done.", act.Value)
	}
	if err != nil {
		return fmt.Errorf("signal %s to incident %s: %w", name, act.Value, err)
	}
	if name == workflows.SignalApproveNotification && !slices.Contains(a.Config.IncidentApprovers, ic.User.ID) {
		return slackapp.Userf("Only the incident approvers (DPP_INCIDENT_APPROVERS) may approve: your click was recorded on the timeline, nothing was sent.")
	}
	return nil
}

// openEditModal opens the drafted Amazon notification for editing; only an
// approver may, since the text is what would be sent.
func (a *App) openEditModal(ctx context.Context, ic *slack.InteractionCallback, id string) error {
	if !slices.Contains(a.Config.IncidentApprovers, ic.User.ID) {
		return slackapp.Userf("Only the incident approvers (DPP_INCIDENT_APPROVERS) may edit and send the notification.")
	}
	svc := a.IncidentService()
	inc, err := svc.Get(ctx, id)
	if errors.Is(err, incident.ErrNotFound) {
		return slackapp.Userf("Incident %s is unknown.", id)
	}
	if err != nil {
		return err
	}
	actions, err := svc.Actions(ctx, id)
	if err != nil {
		return err
	}
	draft := incident.Draft(inc, actions, incident.Notice{Seller: a.Config.SellerName, Contact: a.Config.DPOContact})
	_, err = a.Slack.OpenModal(ctx, ic.TriggerID, incident.EditNotificationModal(id, draft))
	return err
}

// incidentApproveEdited approves the notification with the edited text.
func (a *App) incidentApproveEdited(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
	id := ic.View.PrivateMetadata
	var text string
	if ic.View.State != nil {
		text = strings.TrimSpace(ic.View.State.Values[incident.EditedTextBlock][incident.EditedTextElement].Value)
	}
	s := workflows.ApproveNotificationSignal{By: ic.User.ID, Target: incident.TargetAmazon, Text: text}
	if err := s.Validate(); err != nil || text == "" {
		return nil, slackapp.UserError{Message: "The notification must not be empty (at most 4000 characters).", Field: incident.EditedTextBlock}
	}
	err := a.Temporal.SignalWorkflow(ctx, workflows.IncidentWorkflowID(id), "", workflows.SignalApproveNotification, s)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, slackapp.Userf("Incident %s is closed or unknown: nothing was sent.", id)
	}
	return nil, err
}

// incidentICOReported records the ICO reference submitted in the modal.
func (a *App) incidentICOReported(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
	id := ic.View.PrivateMetadata
	var ref string
	if ic.View.State != nil {
		ref = strings.TrimSpace(ic.View.State.Values[incident.ICOReferenceBlock][incident.ICOReferenceElement].Value)
	}
	s := workflows.ICOReportedSignal{By: ic.User.ID, Reference: ref}
	if err := s.Validate(); err != nil {
		return nil, slackapp.UserError{Message: "Letters, digits, \".\", \"-\", \"/\" or \":\" only, up to 64, as the ICO gave it.", Field: incident.ICOReferenceBlock}
	}
	err := a.Temporal.SignalWorkflow(ctx, workflows.IncidentWorkflowID(id), "", workflows.SignalICOReported, s)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, slackapp.Userf("Incident %s is closed or unknown: nothing was recorded.", id)
	}
	return nil, err
}

// incidentCommand declares an incident: /incident [low|medium|high|critical]
// [personal-data] <title>.
func (a *App) incidentCommand(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	words := strings.Fields(cmd.Text)
	in := workflows.IncidentInput{Severity: "high", ReportedBy: cmd.UserID}
	for len(words) > 0 {
		switch w := strings.ToLower(words[0]); {
		case slices.Contains(workflows.IncidentSeverities, w):
			in.Severity = w
		case w == "personal-data" || w == "pd":
			in.PersonalData = true
		default:
			goto title
		}
		words = words[1:]
	}
title:
	in.Title = strings.Join(words, " ")
	if in.Title == "" {
		return nil, slackapp.Userf("Usage: /incident [low|medium|high|critical] [personal-data] <title>")
	}
	id, _, err := a.DeclareIncident(ctx, in)
	var bad *IncidentInputError
	if errors.As(err, &bad) {
		return nil, slackapp.UserError{Message: "Not declared: " + strings.TrimPrefix(bad.Reason, "IncidentNotification input: ")}
	}
	if err != nil {
		return nil, err
	}
	return &slack.Msg{Text: fmt.Sprintf("Incident %s declared (%s). Amazon must be notified within %s of detection; follow it in the incident channel.",
		id, in.Severity, a.Config.IncidentAmazonDeadline)}, nil
}

// incidentIngest serves POST /incidents: a monitoring system declares an
// incident with the IncidentNotification input as JSON.
func (a *App) incidentIngest(w http.ResponseWriter, r *http.Request) {
	var in workflows.IncidentInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeIngest(w, http.StatusBadRequest, map[string]any{"error": "the body must be one JSON object (at most 1 MiB)"})
		return
	}
	if in.ReportedBy == "" {
		in.ReportedBy = "ingest"
	}
	id, existing, err := a.DeclareIncident(r.Context(), in)
	var bad *IncidentInputError
	switch {
	case errors.As(err, &bad):
		writeIngest(w, http.StatusBadRequest, map[string]any{"error": bad.Reason})
	case err != nil:
		a.Log.Error("Incident declaration from the ingest route failed", zap.Error(err))
		writeIngest(w, http.StatusServiceUnavailable, map[string]any{"error": "could not start the incident; try again"})
	case existing:
		writeIngest(w, http.StatusOK, map[string]any{"id": id, "workflowId": workflows.IncidentWorkflowID(id), "existing": true})
	default:
		a.Log.Info("Incident declared through the ingest route", zap.String("incident", id))
		writeIngest(w, http.StatusAccepted, map[string]any{"id": id, "workflowId": workflows.IncidentWorkflowID(id)})
	}
}

func writeIngest(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
