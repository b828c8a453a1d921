package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

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
func (a *App) DecideIncident(ctx context.Context, id, name, actor string, payload any) (workflows.IncidentStatus, error) {
	var st workflows.IncidentStatus
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
