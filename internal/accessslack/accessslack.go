// Package accessslack is the Slack side of the access workflows: the Keep and
// Revoke buttons of a reviewer's message (action ids access-review:keep and
// access-review:revoke), the modal asking why a flagged account is kept, the
// button confirming a registry account was disabled by hand, and the /offboard
// command. Each handler maps the Slack user to a person id, sends the workflow an
// Update (its validator decides; a refused one leaves no trace) and answers the
// person; the workflow itself updates the reviewer's message. Nothing here logs
// or returns names: ids only.
package accessslack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/workflows"
)

// Command is the slash command that starts an offboarding.
const Command = "/offboard"

// UI is what the handlers need of Slack besides their HTTP answer
// (slackapp.Messenger implements it).
type UI interface {
	Ephemeral(ctx context.Context, channel, user, text string) error
	OpenModal(ctx context.Context, triggerID string, view slack.ModalViewRequest) (viewID string, err error)
}

// Handlers answers the access workflows' Slack interactions.
type Handlers struct {
	Temporal  client.Client
	Registry  *access.Registry
	UI        UI
	TaskQueue string
	// Requesters may use /offboard (DPP_OFFBOARDING_REQUESTERS, person ids).
	Requesters []string
	// DPO may decide any item (DPP_DPO_PERSON_ID).
	DPO string
	// Texts seals a written reason as it arrives, so only its ref enters the
	// review's history and the evidence; nil sends the text itself.
	Texts *freetext.Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Texts the person sees.
const (
	textNotInRegistry = "You are not in the access registry (no person has your Slack user id), so this click does not count. Nothing was done."
	textNotRunning    = "Campaign %s is not running any more (finished, or never started). Nothing was done."
)

// tell shows the clicker a short answer, in the channel of the click; without
// a Slack client the router shows it through the click's response_url.
func (h *Handlers) tell(ctx context.Context, ic *slack.InteractionCallback, text string) error {
	if h.UI == nil {
		return slackapp.UserError{Message: text}
	}
	return h.UI.Ephemeral(ctx, ic.Channel.ID, ic.User.ID, text)
}

// Action handles access-review:keep, access-review:revoke and
// access-review:confirm-disabled.
func (h *Handlers) Action(ctx context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
	p, err := h.Registry.PersonBySlackUser(ctx, ic.User.ID)
	if errors.Is(err, access.ErrUnknownPerson) {
		return h.tell(ctx, ic, textNotInRegistry)
	}
	if err != nil {
		return err
	}
	switch act.ActionID {
	case access.ActionKeep, access.ActionRevoke:
		campaign, itemID, err := access.ParseItemValue(act.Value)
		if err != nil {
			return h.tell(ctx, ic, err.Error())
		}
		decision := access.DecisionKeep
		if act.ActionID == access.ActionRevoke {
			decision = access.DecisionRevoke
		}
		if decision == access.DecisionKeep {
			it, answer, err := h.flaggedItem(ctx, campaign, itemID, p.ID)
			if err != nil {
				return err
			}
			if answer != "" {
				return h.tell(ctx, ic, answer)
			}
			if it != nil {
				if h.UI == nil {
					return slackapp.UserError{Message: "Keeping a flagged account needs a reason, and without a Slack client no form can ask for it. Nothing was done."}
				}
				// The reason comes with the modal's submission.
				_, err := h.UI.OpenModal(ctx, ic.TriggerID, access.ReasonModal(campaign, *it))
				return err
			}
		}
		answer, err := h.decide(ctx, campaign, workflows.DecisionSignal{ItemID: itemID, Decision: decision, By: p.ID}, "slack-"+ic.TriggerID)
		if err != nil || answer == "" {
			return err
		}
		return h.tell(ctx, ic, answer)
	case access.ActionConfirm:
		wfID, system, account, err := access.ParseTaskValue(act.Value)
		if err != nil {
			return h.tell(ctx, ic, err.Error())
		}
		answer, err := h.update(ctx, wfID, workflows.UpdateConfirmDisabled,
			workflows.ConfirmDisabledSignal{System: system, Account: account, By: p.ID}, "slack-"+ic.TriggerID)
		if err != nil || answer == "" {
			return err
		}
		return h.tell(ctx, ic, answer)
	}
	return h.tell(ctx, ic, "This button is not handled by this app any more. Nothing was done.")
}

// flaggedItem returns the item when keeping it needs a reason and p may decide
// it; answer is set instead when the click cannot count.
func (h *Handlers) flaggedItem(ctx context.Context, campaign, itemID, personID string) (*access.Item, string, error) {
	v, err := h.Temporal.QueryWorkflow(ctx, workflows.AccessReviewWorkflowID(campaign), "", workflows.QueryStatus)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, fmt.Sprintf(textNotRunning, campaign), nil
	}
	if err != nil {
		return nil, "", err
	}
	var st workflows.AccessReviewStatus
	if err := v.Get(&st); err != nil {
		return nil, "", err
	}
	if st.Done {
		return nil, fmt.Sprintf(textNotRunning, campaign), nil
	}
	i := slices.IndexFunc(st.Items, func(it workflows.ReviewItemStatus) bool { return it.ID == itemID })
	if i < 0 || !st.Items[i].Flagged() || st.Items[i].Decision != "" {
		return nil, "", nil // the workflow's validator answers these
	}
	if it := st.Items[i]; it.Reviewer != personID && personID != h.DPO {
		return nil, fmt.Sprintf("Item %s is not yours to decide: its reviewer is %s. Nothing was done.", it.ID, it.Reviewer), nil
	}
	return &st.Items[i].Item, "", nil
}

// decide sends a decision; answer is what the person is told when it did not count.
func (h *Handlers) decide(ctx context.Context, campaign string, d workflows.DecisionSignal, updateID string) (string, error) {
	return h.update(ctx, workflows.AccessReviewWorkflowID(campaign), workflows.UpdateDecision, d, updateID)
}

// update sends an Update and waits for its outcome; a refusal becomes the answer
// for the person (validators' messages carry ids only). The update id makes a
// replayed request the same update.
func (h *Handlers) update(ctx context.Context, wfID, name string, arg any, updateID string) (string, error) {
	handle, err := h.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: wfID, UpdateName: name, UpdateID: updateID, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	var app *temporal.ApplicationError
	switch {
	case err == nil:
		return "", nil
	case errors.As(err, &notFound), strings.Contains(err.Error(), "workflow execution already completed"):
		return fmt.Sprintf("%s is not running any more. Nothing was done.", wfID), nil
	case errors.As(err, &app):
		return app.Message() + ". Nothing was done.", nil
	}
	return "", err
}

// ReasonView handles the reason modal's submission: a keep with its reason.
func (h *Handlers) ReasonView(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
	fieldError := func(msg string) (*slack.ViewSubmissionResponse, error) {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{access.ReasonInput: msg}), nil
	}
	p, err := h.Registry.PersonBySlackUser(ctx, ic.User.ID)
	if errors.Is(err, access.ErrUnknownPerson) {
		return fieldError(textNotInRegistry)
	}
	if err != nil {
		return nil, err
	}
	campaign, itemID, err := access.ParseItemValue(ic.View.PrivateMetadata)
	if err != nil {
		return fieldError(err.Error())
	}
	reason := ""
	if v, ok := ic.View.State.Values[access.ReasonInput][access.ReasonInput]; ok {
		reason = strings.TrimSpace(v.Value)
	}
	if reason == "" {
		return fieldError("Write why the account stays.")
	}
	d := workflows.DecisionSignal{ItemID: itemID, Decision: access.DecisionKeep, By: p.ID, Reason: reason}
	if h.Texts != nil {
		if d, err = h.sealReason(ctx, campaign, d); err != nil {
			return nil, err
		}
	}
	answer, err := h.decide(ctx, campaign, d, "slack-view-"+ic.View.ID)
	if (err != nil || answer != "") && d.ReasonRef != "" {
		// The decision did not take: its reason must not outlive it.
		err = errors.Join(err, h.Texts.Erase(ctx, d.ReasonRef))
	}
	if err != nil {
		return nil, err
	}
	if answer != "" {
		return fieldError(answer)
	}
	return nil, nil
}

// sealReason stores d's reason sealed and puts its ref in place of the text.
// Each submission gets its own ref: a resubmitted form may say something else.
func (h *Handlers) sealReason(ctx context.Context, campaign string, d workflows.DecisionSignal) (workflows.DecisionSignal, error) {
	var n [8]byte
	if _, err := rand.Read(n[:]); err != nil {
		return d, err
	}
	wfID := workflows.AccessReviewWorkflowID(campaign)
	ref := wfID + "/item/" + d.ItemID + "/reason/" + hex.EncodeToString(n[:])
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	t, err := h.Texts.Seal(ctx, freetext.KindAccessReason, ref, wfID, d.Reason, now)
	if err != nil {
		return d, err
	}
	if err := h.Texts.Save(ctx, t); err != nil {
		return d, err
	}
	d.Reason, d.ReasonRef = "", t.Ref
	return d, nil
}

var mention = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(\|[^>]*)?>$`)

// Offboard handles `/offboard @user`: only DPP_OFFBOARDING_REQUESTERS may.
func (h *Handlers) Offboard(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	reply := func(text string) (*slack.Msg, error) {
		return &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: text}, nil
	}
	requester, err := h.Registry.PersonBySlackUser(ctx, cmd.UserID)
	if errors.Is(err, access.ErrUnknownPerson) || (err == nil && !slices.Contains(h.Requesters, requester.ID)) {
		return reply("Only the people in DPP_OFFBOARDING_REQUESTERS may start an offboarding. Nothing was done.")
	}
	if err != nil {
		return nil, err
	}
	arg := strings.TrimSpace(cmd.Text)
	var leaver access.Person
	switch m := mention.FindStringSubmatch(arg); {
	case m != nil:
		leaver, err = h.Registry.PersonBySlackUser(ctx, m[1])
	case access.ValidPersonID(arg):
		leaver, err = h.Registry.Person(ctx, arg)
	default:
		return reply("Usage: /offboard @person (or a person id). Nothing was done.")
	}
	if errors.Is(err, access.ErrUnknownPerson) {
		return reply("That person is not in the access registry. Nothing was done.")
	}
	if err != nil {
		return nil, err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	in := workflows.OffboardingInput{PersonID: leaver.ID, TerminatedAt: now().UTC().Truncate(time.Second), RequestedBy: requester.ID}
	id := workflows.OffboardingWorkflowID(leaver.ID)
	_, err = h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: h.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true}, workflows.OffboardingName, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return reply(fmt.Sprintf("%s already ran or is running. Nothing new was started.", id))
	}
	if err != nil {
		return nil, err
	}
	return reply(fmt.Sprintf("Started %s: every account of %s is disabled and verified; you will see the tasks for accounts disabled by hand.", id, leaver.ID))
}
