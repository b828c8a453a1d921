package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/slackapp"
)

// IncidentPolicy is the incident configuration (DPP_INCIDENT_*, see
// internal/config).
type IncidentPolicy struct {
	Channel        string
	Approvers      []string // Slack user ids, operator ids or e-mail addresses
	Stages         []string
	AmazonDeadline time.Duration
	ICODeadline    time.Duration
	Reminders      []time.Duration
	AutoSend       time.Duration
	AmazonEmail    string
	Seller         string
	Contact        string
}

// Incident holds what the IncidentNotification activities use.
type Incident struct {
	Service *incident.Service
	// Slack is nil when Slack is not configured: messages are then skipped.
	Slack  *slackapp.Messenger
	Mail   incident.Mailer
	Policy IncidentPolicy
	// Approvers resolves DPP_INCIDENT_APPROVERS (nil: built from Policy, without Slack lookups).
	Approvers *incident.Approvers
}

func (x *Incident) approvers() *incident.Approvers {
	if x.Approvers == nil {
		x.Approvers = &incident.Approvers{List: x.Policy.Approvers}
	}
	return x.Approvers
}

// Register registers the incident activities.
func (x *Incident) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(x, activity.RegisterOptions{SkipInvalidStructFunctions: true})
}

// DeclareIncidentInput is the validated declaration. Title and summary pass
// through this one activity to be sealed; nothing else carries them.
type DeclareIncidentInput struct {
	ID           string    `json:"id"`
	WorkflowID   string    `json:"workflowId"`
	Title        string    `json:"title"`
	Summary      string    `json:"summary,omitempty"`
	Severity     string    `json:"severity"`
	ReportedBy   string    `json:"reportedBy"`
	PersonalData bool      `json:"personalData"`
	DetectedAt   time.Time `json:"detectedAt"`
	DeclaredAt   time.Time `json:"declaredAt"`
}

// IncidentClocks is the part of the policy the workflow runs on, fixed for the
// run when it is declared (the history keeps it, so a changed setting does
// not change a running incident).
type IncidentClocks struct {
	Stages         []string        `json:"stages"`
	AmazonDeadline time.Duration   `json:"amazonDeadline"`
	ICODeadline    time.Duration   `json:"icoDeadline"`
	Reminders      []time.Duration `json:"reminders"`
	AutoSend       time.Duration   `json:"autoSend"`
	// Approvers is how many approvers are configured (none: only auto-send).
	Approvers int `json:"approvers"`
	// Directory is who may approve, by recorded id and Slack user id, so an
	// Update's validator can refuse a non-approver without an activity. Runs
	// declared before it existed have none (nil) and check by activity.
	Directory []incident.Approver `json:"directory"`
}

// DeclareIncident records the incident (sealed texts, first timeline entry,
// evidence) and returns the clocks of its run.
func (x *Incident) DeclareIncident(ctx context.Context, in DeclareIncidentInput) (IncidentClocks, error) {
	p := x.Policy
	d := incident.Declaration{ID: in.ID, WorkflowID: in.WorkflowID, Title: in.Title, Summary: in.Summary,
		Severity: in.Severity, ReportedBy: in.ReportedBy, PersonalData: in.PersonalData, DetectedAt: in.DetectedAt,
		DeclaredAt: in.DeclaredAt, Stage: p.Stages[0], AmazonDueAt: in.DetectedAt.Add(p.AmazonDeadline)}
	if in.PersonalData {
		ico := in.DetectedAt.Add(p.ICODeadline)
		d.ICODueAt = &ico
	}
	if _, err := x.Service.Declare(ctx, d); err != nil {
		return IncidentClocks{}, err
	}
	// Slack being down does not hold the declaration up: an approver listed
	// by address acts as approver-<n> meanwhile (the Slack handlers resolve
	// clickers themselves).
	dir, err := x.approvers().Directory(ctx)
	if err != nil {
		activity.GetLogger(ctx).Warn("Approver Slack ids not all resolved", "incident", in.ID, "error", err.Error())
	}
	return IncidentClocks{Stages: p.Stages, AmazonDeadline: p.AmazonDeadline, ICODeadline: p.ICODeadline,
		Reminders: p.Reminders, AutoSend: p.AutoSend, Approvers: len(p.Approvers), Directory: dir}, nil
}

// IncidentEvent is one timeline entry (see incident.Event): ids and codes,
// and an optional note that is sealed.
type IncidentEvent struct {
	IncidentID string         `json:"incidentId"`
	Key        string         `json:"key"`
	Kind       string         `json:"kind"`
	Actor      string         `json:"actor"`
	At         time.Time      `json:"at"`
	Detail     map[string]any `json:"detail,omitempty"`
	Note       string         `json:"note,omitempty"`
	// NoteRef names a note sealed before the decision was sent.
	NoteRef      string `json:"noteRef,omitempty"`
	Stage        string `json:"stage,omitempty"`
	ICOReference string `json:"icoReference,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
}

// RecordIncidentEvent adds the entry to the timeline and the evidence chain.
func (x *Incident) RecordIncidentEvent(ctx context.Context, e IncidentEvent) error {
	_, err := x.Service.Record(ctx, incident.Event{IncidentID: e.IncidentID, Key: e.Key, Kind: e.Kind, Actor: e.Actor,
		At: e.At, Detail: e.Detail, Note: e.Note, NoteRef: e.NoteRef, Stage: e.Stage, ICOReference: e.ICOReference, Outcome: e.Outcome})
	return err
}

// ApproverCheck says whether "by" is a configured approver, and the id to
// record for them: the id itself, or approver-<n> for one listed by e-mail
// address (never kept in the history or the timeline).
type ApproverCheck = incident.Check

// CheckIncidentApprover looks "by" up in DPP_INCIDENT_APPROVERS; a Slack user
// counts as the approver whose address is on their Slack profile.
func (x *Incident) CheckIncidentApprover(ctx context.Context, by string) (ApproverCheck, error) {
	return x.approvers().Resolve(ctx, by)
}

// PublishIncidentInput is the state to show on the incident's Slack message.
type PublishIncidentInput struct {
	IncidentID string        `json:"incidentId"`
	View       incident.View `json:"view"`
}

// IncidentMessageEvent is the metadata event type of an incident's Slack
// message (payload {"incident_id"}).
const IncidentMessageEvent = "dpp_incident"

// PublishIncident posts the incident's message in DPP_INCIDENT_CHANNEL, or
// updates it: one message per incident, kept current. Without Slack or a
// channel it does nothing.
func (x *Incident) PublishIncident(ctx context.Context, in PublishIncidentInput) error {
	if x.Slack == nil || x.Policy.Channel == "" {
		return nil
	}
	inc, err := x.Service.Get(ctx, in.IncidentID)
	if err != nil {
		return err
	}
	draft := ""
	if in.View.AmazonSentAt == nil {
		actions, err := x.Service.Actions(ctx, inc.ID)
		if err != nil {
			return err
		}
		draft = incident.Draft(inc, actions, incident.Notice{Seller: x.Policy.Seller, Contact: x.Policy.Contact})
	}
	blocks, fallback := incident.Blocks(inc, in.View, draft), incident.Fallback(inc, in.View)
	if inc.SlackTS != "" {
		return x.Slack.Update(ctx, inc.SlackChannel, inc.SlackTS, blocks, fallback)
	}
	// Slack may have taken an earlier post whose location was then not
	// recorded (the answer or the database failed): the message's metadata
	// finds it, and it is updated rather than posted twice.
	ch := x.Policy.Channel
	ts, err := x.Slack.FindTagged(ctx, ch, IncidentMessageEvent, "incident_id", inc.ID)
	if err != nil {
		return err
	}
	if ts != "" {
		err = x.Slack.Update(ctx, ch, ts, blocks, fallback)
	} else {
		ch, ts, err = x.Slack.PostTagged(ctx, ch, slack.SlackMetadata{EventType: IncidentMessageEvent,
			EventPayload: map[string]any{"incident_id": inc.ID}}, blocks, fallback)
	}
	if err != nil {
		return err
	}
	if err := x.Service.SetSlackMessage(ctx, inc.ID, ch, ts); err != nil {
		return err
	}
	_, err = x.Service.Record(ctx, incident.Event{IncidentID: inc.ID, Key: "incident-" + inc.ID + "/slack-message",
		Kind: "slack-message-posted", Actor: "system:slack", At: time.Now().UTC(), Detail: map[string]any{"channel": ch, "ts": ts}})
	return err
}

// IncidentNotice is a reminder, an escalation or a breach to tell people about.
type IncidentNotice struct {
	IncidentID string    `json:"incidentId"`
	Kind       string    `json:"kind"`   // reminder | escalation | breach
	Target     string    `json:"target"` // amazon | ico
	DueAt      time.Time `json:"dueAt"`
}

// NotifyIncidentPeople posts the notice in the channel (in the incident
// message's thread when there is one) and sends it to every approver who is a
// Slack user. Without Slack it does nothing: the timeline has the entry.
func (x *Incident) NotifyIncidentPeople(ctx context.Context, n IncidentNotice) error {
	if x.Slack == nil {
		return nil
	}
	what := map[string]string{incident.TargetAmazon: "Amazon's notification", incident.TargetICO: "the ICO report"}[n.Target]
	var text string
	switch n.Kind {
	case "reminder":
		text = fmt.Sprintf(":alarm_clock: Incident %s: %s is due <!date^%d^{date_short_pretty} {time}|%s> and not sent yet. Approve it on the incident message.",
			n.IncidentID, what, n.DueAt.Unix(), n.DueAt.UTC().Format(time.RFC1123))
	default:
		text = fmt.Sprintf(":rotating_light: Incident %s: %s was due <!date^%d^{date_short_pretty} {time}|%s> and is not done. Escalated: %s.",
			n.IncidentID, what, n.DueAt.Unix(), n.DueAt.UTC().Format(time.RFC1123), n.Kind)
	}
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
	// A retry would post again wherever the first attempt got through, so
	// only a notice that reached nobody is retried.
	var errs []error
	delivered := 0
	post := func(err error) {
		if err != nil {
			errs = append(errs, err)
		} else {
			delivered++
		}
	}
	if x.Policy.Channel != "" {
		_, _, err := x.Slack.Post(ctx, x.Policy.Channel, blocks, text)
		post(err)
	}
	dir, err := x.approvers().Directory(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, a := range dir {
		if a.SlackID != "" {
			_, _, err := x.Slack.PostDM(ctx, a.SlackID, blocks, text)
			post(err)
		}
	}
	if delivered == 0 {
		return errors.Join(errs...)
	}
	if len(errs) > 0 {
		activity.GetLogger(ctx).Warn("Incident notice not delivered everywhere", "incident", n.IncidentID, "kind", n.Kind, "error", errors.Join(errs...).Error())
	}
	return nil
}

// SendIncidentNotificationInput is an approved (or automatic) notification.
// Text is the approver's edited text, or empty for the template.
type SendIncidentNotificationInput struct {
	IncidentID  string `json:"incidentId"`
	Key         string `json:"key"`
	By          string `json:"by"`
	Text        string `json:"text,omitempty"`
	Preliminary bool   `json:"preliminary"`
}

// SendIncidentNotification e-mails the notification to DPP_AMAZON_SECURITY_EMAIL
// and records its Message-ID; it fails (and is retried) until the SMTP server
// took it, and never sends twice.
func (x *Incident) SendIncidentNotification(ctx context.Context, in SendIncidentNotificationInput) (incident.Sent, error) {
	return x.Service.SendAmazon(ctx, x.Mail, in.IncidentID, x.Policy.AmazonEmail, in.Text, in.By, in.Key,
		incident.Notice{Seller: x.Policy.Seller, Contact: x.Policy.Contact, Preliminary: in.Preliminary})
}
