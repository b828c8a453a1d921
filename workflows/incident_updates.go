package workflows

import (
	"encoding/json"
	"errors"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// IncidentNotification's Updates carry the signals' names and payloads (a
// workflow's signal and update names are separate namespaces in Temporal):
// the same decision, answered. The answer is the status after it, or why it
// was refused; a refused Update leaves nothing in the history or on the
// timeline, because its validator refuses it before it is accepted.
const (
	UpdateAdvanceStage         = SignalAdvanceStage
	UpdateApproveNotification  = SignalApproveNotification
	UpdateICOReported          = SignalICOReported
	UpdateClose                = SignalClose
	UpdateConfirmFalsePositive = SignalConfirmFalsePositive
)

// IncidentUpdates are the Update names IncidentNotification offers.
var IncidentUpdates = []string{UpdateAdvanceStage, UpdateApproveNotification, UpdateICOReported, UpdateClose, UpdateConfirmFalsePositive}

var (
	errIncidentClosed    = errors.New("the incident is closed")
	errIncidentDeclaring = errors.New("the incident is being declared: try again in a moment")
	errUpdateByAddress   = errors.New(`field "by" is an e-mail address: an Update takes a Slack user id or approver-<n> (starter incident turns an address into approver-<n>)`)
)

// setUpdateHandlers registers the decisions as Updates. Registering handlers
// adds nothing to the history, so runs started before they existed replay.
func (r *incidentRun) setUpdateHandlers() error {
	for _, name := range IncidentUpdates {
		err := workflow.SetUpdateHandlerWithOptions(r.ctx, name,
			func(ctx workflow.Context, raw json.RawMessage) (IncidentStatus, error) {
				// The state may have moved since validation (a signal, a
				// clock): the decision is checked again.
				apply, err := r.decideUpdate(ctx, name, raw, r.updateWho(true))
				if err != nil {
					return IncidentStatus{}, err
				}
				apply(ctx)
				r.touch()
				r.wake.SendAsync(true)
				return r.snapshot(), nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, raw json.RawMessage) error {
				_, err := r.decideUpdate(ctx, name, raw, r.updateWho(false))
				return err
			}})
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *incidentRun) decideUpdate(ctx workflow.Context, name string, raw json.RawMessage, who whoFunc) (func(workflow.Context), error) {
	switch {
	case r.status.Closed:
		return nil, errIncidentClosed
	case r.status.Stage == "":
		return nil, errIncidentDeclaring
	}
	return r.decide(ctx, name, raw, who)
}

// updateWho resolves "by" for an Update from the approvers fixed at the
// declaration, so the validator needs no activity. A run declared before the
// directory existed has none: its validator lets "by" through and the
// handler asks CheckIncidentApprover.
func (r *incidentRun) updateWho(inHandler bool) whoFunc {
	return func(ctx workflow.Context, by string) (activities.ApproverCheck, error) {
		if err := checkIncidentBy(by); err != nil {
			return activities.ApproverCheck{}, err
		}
		if strings.Contains(by, "@") {
			return activities.ApproverCheck{}, errUpdateByAddress
		}
		if r.clocks.Directory == nil {
			if inHandler {
				return r.approver(ctx, by)
			}
			return activities.ApproverCheck{Approver: true, Ref: by}, nil
		}
		for _, a := range r.clocks.Directory {
			if by == a.Ref || (a.SlackID != "" && by == a.SlackID) {
				return activities.ApproverCheck{Approver: true, Ref: a.Ref}, nil
			}
		}
		return activities.ApproverCheck{Ref: by}, nil
	}
}
