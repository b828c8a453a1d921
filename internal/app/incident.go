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
	return &incident.Service{Pool: a.Pool, Vault: a.Vault, Signer: a.Signer, Texts: a.FreeTexts(),
		TextRetention: a.Config.IncidentTextRetention}
}

// IncidentActivities builds the IncidentNotification activities (Database,
// Sealing and, optionally, Slack).
func (a *App) IncidentActivities() *activities.Incident {
	c := a.Config
	x := &activities.Incident{Service: a.IncidentService(), Slack: a.Slack, Approvers: a.IncidentApprovers(), Policy: activities.IncidentPolicy{
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
	p.Router.OnView(incident.ViewClose, a.incidentClose)
	p.Router.OnCommand("/incident", a.incidentCommand)
	p.Ingest(IncidentsPath, http.HandlerFunc(a.incidentIngest))
}

// incidentAction turns a click on an incident message into a decision (an
// Update), so the person sees a refusal at once; modals open here, their
// decision comes with the submission.
func (a *App) incidentAction(ctx context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
	id := act.Value
	by, err := a.IncidentBy(ctx, ic.User.ID)
	if err != nil {
		return err
	}
	var name string
	var payload any
	switch act.ActionID {
	case incident.ActionApproveAmazon:
		name, payload = workflows.UpdateApproveNotification, workflows.ApproveNotificationSignal{By: by, Target: incident.TargetAmazon}
	case incident.ActionApproveICO:
		name, payload = workflows.UpdateApproveNotification, workflows.ApproveNotificationSignal{By: by, Target: incident.TargetICO}
	case incident.ActionAdvance:
		name, payload = workflows.UpdateAdvanceStage, workflows.AdvanceStageSignal{By: by}
	case incident.ActionConfirmFalsePositive:
		name, payload = workflows.UpdateConfirmFalsePositive, workflows.ConfirmFalsePositiveSignal{By: by}
	case incident.ActionEditAmazon:
		return a.openEditModal(ctx, ic, by, id)
	case incident.ActionICOReference:
		// The trigger id is valid for 3 s: the modal opens now, the decision
		// comes with its submission.
		_, err := a.Slack.OpenModal(ctx, ic.TriggerID, incident.ICOReferenceModal(id))
		return err
	case incident.ActionClose:
		_, err := a.Slack.OpenModal(ctx, ic.TriggerID, incident.CloseModal(id))
		return err
	default:
		return slackapp.Userf("This button is not known to this version of the app.")
	}
	_, err = a.DecideIncident(ctx, id, name, by, payload)
	return incidentAnswer(id, err, "")
}

// incidentAnswer turns DecideIncident's error into what the person sees (in
// the modal's field when there is one).
func incidentAnswer(id string, err error, field string) error {
	var refused *IncidentRefusal
	switch {
	case errors.As(err, &refused):
		return slackapp.UserError{Message: "Not done: " + refused.Reason + ".", Field: field}
	case errors.Is(err, ErrIncidentNotRunning):
		return slackapp.Userf("Incident %s is closed or unknown: nothing was done.", id)
	}
	return err
}

// openEditModal opens the drafted Amazon notification for editing; only an
// approver may, since the text is what would be sent.
func (a *App) openEditModal(ctx context.Context, ic *slack.InteractionCallback, by, id string) error {
	if c, err := a.IncidentApprovers().Resolve(ctx, by); err != nil || !c.Approver {
		return errors.Join(err, slackapp.Userf("Only the incident approvers (DPP_INCIDENT_APPROVERS) may edit and send the notification."))
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

// viewValue is the trimmed value of a modal's input.
func viewValue(ic *slack.InteractionCallback, block, element string) string {
	if ic.View.State == nil {
		return ""
	}
	return strings.TrimSpace(ic.View.State.Values[block][element].Value)
}

// incidentApproveEdited approves the notification with the edited text.
func (a *App) incidentApproveEdited(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
	id, text := ic.View.PrivateMetadata, viewValue(ic, incident.EditedTextBlock, incident.EditedTextElement)
	by, err := a.IncidentBy(ctx, ic.User.ID)
	if err != nil {
		return nil, err
	}
	s := workflows.ApproveNotificationSignal{By: by, Target: incident.TargetAmazon, Text: text}
	if err := s.Validate(); err != nil || text == "" {
		return nil, slackapp.UserError{Message: "The notification must not be empty (at most 4000 characters).", Field: incident.EditedTextBlock}
	}
	_, err = a.DecideIncident(ctx, id, workflows.UpdateApproveNotification, by, s)
	return nil, incidentAnswer(id, err, incident.EditedTextBlock)
}

// incidentICOReported records the ICO reference submitted in the modal.
func (a *App) incidentICOReported(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
	id, ref := ic.View.PrivateMetadata, viewValue(ic, incident.ICOReferenceBlock, incident.ICOReferenceElement)
	by, err := a.IncidentBy(ctx, ic.User.ID)
	if err != nil {
		return nil, err
	}
	s := workflows.ICOReportedSignal{By: by, Reference: ref}
	if err := s.Validate(); err != nil {
		return nil, slackapp.UserError{Message: "Letters, digits, \".\", \"-\", \"/\" or \":\" only, up to 64, as the ICO gave it.", Field: incident.ICOReferenceBlock}
	}
	_, err = a.DecideIncident(ctx, id, workflows.UpdateICOReported, by, s)
	return nil, incidentAnswer(id, err, incident.ICOReferenceBlock)
}

// incidentClose closes the incident from the modal: with the lessons-learned
// note, or proposed as a false positive with its reason.
func (a *App) incidentClose(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
	id := ic.View.PrivateMetadata
	by, err := a.IncidentBy(ctx, ic.User.ID)
	if err != nil {
		return nil, err
	}
	s := workflows.CloseSignal{By: by, Lessons: viewValue(ic, incident.CloseLessonsBlock, incident.CloseLessonsElement),
		Reason: viewValue(ic, incident.CloseReasonBlock, incident.CloseReasonElement)}
	if ic.View.State != nil {
		for _, o := range ic.View.State.Values[incident.CloseFalsePositiveBlock][incident.CloseFalsePositiveElement].SelectedOptions {
			s.FalsePositive = s.FalsePositive || o.Value == incident.CloseFalsePositiveOption
		}
	}
	field := incident.CloseLessonsBlock
	switch {
	case s.FalsePositive && s.Reason == "":
		return nil, slackapp.UserError{Message: "Say why it was a false positive.", Field: incident.CloseReasonBlock}
	case s.FalsePositive:
		field = incident.CloseReasonBlock
	case s.Lessons == "":
		return nil, slackapp.UserError{Message: "Closing needs a lessons-learned note (or tick false positive and give the reason).", Field: incident.CloseLessonsBlock}
	}
	if err := s.Validate(); err != nil {
		return nil, slackapp.UserError{Message: "At most 4000 characters.", Field: field}
	}
	_, err = a.DecideIncident(ctx, id, workflows.UpdateClose, by, s)
	return nil, incidentAnswer(id, err, field)
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
