package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/workflows"
)

// IncidentApprovers resolves DPP_INCIDENT_APPROVERS, asking Slack (when
// configured) which account an approver listed by address clicks from.
func (a *App) IncidentApprovers() *incident.Approvers {
	a.approversOnce.Do(func() {
		a.incidentApprovers = &incident.Approvers{List: a.Config.IncidentApprovers}
		// A nil *Messenger in the interface would not be nil.
		if a.Slack != nil {
			a.incidentApprovers.Slack = a.Slack
		}
	})
	return a.incidentApprovers
}

// IncidentRefusal is a decision the incident refused: its text says why
// with ids and fixed words only.
type IncidentRefusal struct{ Reason string }

func (e *IncidentRefusal) Error() string { return e.Reason }

// ErrIncidentNotRunning: no open incident with that id.
var ErrIncidentNotRunning = errors.New("the incident is closed or unknown")

// IncidentBy is who acts on an incident as the workflow knows them: an
// approver listed by address (given by address, or clicking from the Slack
// account with it) becomes approver-<n>, so no address reaches the history.
func (a *App) IncidentBy(ctx context.Context, by string) (string, error) {
	c, err := a.IncidentApprovers().Resolve(ctx, by)
	if err != nil {
		return "", fmt.Errorf("approvers: %w", err)
	}
	return c.Ref, nil
}

// DecideIncident sends a decision (an IncidentNotification Update: name is
// one of workflows.IncidentUpdates) and waits for the answer: the status
// after it, or an *IncidentRefusal the person sees at once. A refused
// Update leaves nothing in the history, so the refusal is recorded here, on
// the incident's timeline, under actor (an id).
//
// With sealing built, a decision's free text (a stage's note, the lessons, a
// false positive's reason) is sealed first and only its ref goes to the
// workflow; a decision that does not take erases it again.
func (a *App) DecideIncident(ctx context.Context, id, name, actor string, payload any) (st workflows.IncidentStatus, err error) {
	payload, refs, err := a.sealIncidentTexts(ctx, id, name, payload)
	if err != nil {
		return st, err
	}
	defer func() {
		if err == nil {
			return
		}
		texts := a.FreeTexts()
		for _, ref := range refs {
			err = errors.Join(err, texts.Erase(context.WithoutCancel(ctx), ref))
		}
	}()
	h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.IncidentWorkflowID(id),
		UpdateName: name, Args: []any{payload}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, &st)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return st, nil
	case errors.As(err, &notFound):
		return st, ErrIncidentNotRunning
	case errors.As(err, &appErr):
		refusal := &IncidentRefusal{Reason: appErr.Message()}
		if _, rerr := a.IncidentService().Record(ctx, incident.Event{IncidentID: id, Key: fmt.Sprintf("refused/%s/%d", name, time.Now().UnixNano()),
			Kind: "decision-refused", Actor: actor, At: time.Now().UTC(), Detail: map[string]any{"decision": name, "reason": refusal.Reason}}); rerr != nil {
			return st, errors.Join(refusal, rerr)
		}
		return st, refusal
	}
	return st, fmt.Errorf("update %s of incident %s: %w", name, id, err)
}

// sealIncidentTexts stores the free text of a close or advance-stage decision
// sealed, and returns the payload with refs in its place.
func (a *App) sealIncidentTexts(ctx context.Context, id, name string, payload any) (any, []string, error) {
	if a.Vault == nil {
		return payload, nil, nil
	}
	texts := a.FreeTexts()
	now := time.Now().UTC()
	var refs []string
	seal := func(field string, text *string, ref *string) error {
		if *text == "" {
			return nil
		}
		t, err := texts.Seal(ctx, freetext.KindIncidentNote, fmt.Sprintf("incident-%s/%s/%s/%s", id, name,
			now.Format("20060102T150405.000000000Z"), field), "incident-"+id, *text, now)
		if err == nil {
			err = texts.Save(ctx, t)
		}
		if err != nil {
			return err
		}
		refs = append(refs, t.Ref)
		*text, *ref = "", t.Ref
		return nil
	}
	var err error
	switch p := payload.(type) {
	case workflows.CloseSignal:
		err = errors.Join(seal("lessons", &p.Lessons, &p.LessonsRef), seal("reason", &p.Reason, &p.ReasonRef))
		payload = p
	case workflows.AdvanceStageSignal:
		err = seal("note", &p.Note, &p.NoteRef)
		payload = p
	}
	if err != nil {
		for _, ref := range refs {
			err = errors.Join(err, texts.Erase(ctx, ref))
		}
		return nil, nil, err
	}
	return payload, refs, nil
}
