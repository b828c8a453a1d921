package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/slackapp"
)

// Access holds the activities of the access review, offboarding and lockout:
// every I/O goes through internal/access. Inputs and results carry ids only.
type Access struct {
	Service *access.Service
	// Texts seals a written reason; the evidence keeps only its ref.
	Texts *freetext.Store
}

// Register registers the access activities under their method names.
func (x *Access) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(x, activity.RegisterOptions{SkipInvalidStructFunctions: true})
}

// Error types of the access activities that workflows tell apart.
const (
	ErrUnknownPerson = "UnknownPerson"
	ErrProtected     = "Protected"
	ErrNotVerified   = "NotVerified"
	// ErrSlackNotConfigured: nothing can be posted; the workflows carry on
	// without the message (decisions then come by signal or update).
	ErrSlackNotConfigured = "SlackNotConfigured"
)

// classifyAccess makes errors retrying cannot fix final and names the ones the
// workflows react to.
func classifyAccess(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, access.ErrUnknownPerson), errors.Is(err, access.ErrUnknownAccount):
		return final(ErrUnknownPerson, err)
	case errors.Is(err, access.ErrProtected):
		return final(ErrProtected, err)
	case errors.Is(err, access.ErrNoSlack), errors.Is(err, slackapp.ErrNotConfigured):
		return final(ErrSlackNotConfigured, err)
	case errors.Is(err, access.ErrNotVerified):
		// Retried: a session may take a moment to end; the workflow escalates
		// when the retries run out.
		return temporal.NewApplicationError(err.Error(), ErrNotVerified)
	}
	return err
}

// CollectAccessReviewInput names the campaign being collected.
type CollectAccessReviewInput struct {
	Campaign string `json:"campaign"`
}

// CollectAccessReview lists the accounts of every connector as review items.
func (x *Access) CollectAccessReview(ctx context.Context, in CollectAccessReviewInput) ([]access.Item, error) {
	items, err := x.Service.Collect(ctx)
	return items, classifyAccess(err)
}

// ShowAccessReviewInput is a reviewer's message: posted the first time, updated after.
type ShowAccessReviewInput struct {
	Campaign string              `json:"campaign"`
	Reviewer string              `json:"reviewer"`
	Lines    []access.ReviewLine `json:"lines"`
}

// ShowAccessReview posts or updates a reviewer's message.
func (x *Access) ShowAccessReview(ctx context.Context, in ShowAccessReviewInput) error {
	return classifyAccess(x.Service.ShowReview(ctx, in.Campaign, in.Reviewer, in.Lines))
}

// AccessDecisionInput is a reviewer's decision on one item, for the evidence log.
type AccessDecisionInput struct {
	WorkflowID string      `json:"workflowId"`
	Item       access.Item `json:"item"`
	Decision   string      `json:"decision"`
	By         string      `json:"by"`
	Reason     string      `json:"reason,omitempty"`
	// ReasonRef names a reason already sealed (the Slack form); Reason is then empty.
	ReasonRef string    `json:"reasonRef,omitempty"`
	At        time.Time `json:"at"`
}

// RecordAccessDecision appends the decision to the evidence log (once per item).
func (x *Access) RecordAccessDecision(ctx context.Context, in AccessDecisionInput) error {
	body := map[string]any{"itemId": in.Item.ID, "system": in.Item.System, "account": in.Item.Account,
		"personId": in.Item.PersonID, "flags": in.Item.Flags, "service": in.Item.Service, "reviewer": in.Item.Reviewer,
		"decision": in.Decision, "by": in.By, "decidedAt": in.At}
	key := in.WorkflowID + "/item/" + in.Item.ID + "/decision"
	ev := access.Evidence{Kind: access.KindDecision, Subject: in.WorkflowID, Key: key, Body: body}
	if in.ReasonRef != "" {
		body["reasonRef"] = in.ReasonRef
	}
	if in.Reason != "" {
		t, err := x.Texts.Seal(ctx, freetext.KindAccessReason, key+"/reason", in.WorkflowID, in.Reason, in.At)
		if err != nil {
			return err
		}
		body["reasonRef"] = t.Ref
		ev.Texts = []*freetext.Sealed{t}
	}
	_, err := x.Service.Record(ctx, ev)
	return classifyAccess(err)
}

// DisableAccountInput disables one account in a workflow's step (Step makes the
// evidence key: a review item, an offboarded account, a lockout).
type DisableAccountInput struct {
	WorkflowID string `json:"workflowId"`
	Step       string `json:"step"`
	System     string `json:"system"`
	Account    string `json:"account"`
	// TaskOwner is the person id a registry account's task goes to.
	TaskOwner string `json:"taskOwner"`
	// Why is shown in the task: ids only ("access review 2026-Q4", "p-7 left").
	Why string `json:"why"`
	// Kind is the evidence kind of the verified disable.
	Kind string `json:"kind"`
	// ConfirmedBy is the person who says they disabled a registry account by
	// hand (VerifyAccountDisabled records it before asking the connector).
	ConfirmedBy string `json:"confirmedBy,omitempty"`
	// Result is the first attempt's result, for VerifyAccountDisabled.
	Result access.DisableResult `json:"result"`
}

func (in DisableAccountInput) evidence() access.Evidence {
	return access.Evidence{Kind: in.Kind, Subject: in.WorkflowID, Key: in.WorkflowID + "/" + in.Step + "/disabled",
		Body: map[string]any{"step": in.Step}}
}

// DisableAccount disables an account through its connector and verifies it; a
// registry account becomes a Slack task (Result.Manual) verified later.
func (x *Access) DisableAccount(ctx context.Context, in DisableAccountInput) (access.DisableResult, error) {
	res, err := x.Service.Disable(ctx, in.System, in.Account, in.TaskOwner, in.Why, in.evidence())
	return res, classifyAccess(err)
}

// VerifyAccountDisabled asks the connector again (after a person confirmed a
// registry task) and records the evidence when the account is disabled.
func (x *Access) VerifyAccountDisabled(ctx context.Context, in DisableAccountInput) (access.DisableResult, error) {
	res, err := x.Service.Verify(ctx, in.System, in.Account, in.ConfirmedBy, in.evidence(), in.Result)
	return res, classifyAccess(err)
}

// NotifyPersonInput is a direct message to a person; Text carries ids only.
type NotifyPersonInput struct {
	PersonID string `json:"personId"`
	Text     string `json:"text"`
}

// NotifyPerson sends a person (or, without Slack, the DPO) a direct message.
func (x *Access) NotifyPerson(ctx context.Context, in NotifyPersonInput) error {
	return classifyAccess(x.Service.Notify(ctx, in.PersonID, in.Text))
}

// AccessEventInput is an evidence entry of an access workflow: an escalation, a
// breach, an extension. Body holds ids and times only.
type AccessEventInput struct {
	Kind       string         `json:"kind"`
	WorkflowID string         `json:"workflowId"`
	Step       string         `json:"step"`
	Body       map[string]any `json:"body"`
}

// RecordAccessEvent appends an access workflow's event to the evidence log (once per step).
func (x *Access) RecordAccessEvent(ctx context.Context, in AccessEventInput) error {
	_, err := x.Service.Record(ctx, access.Evidence{Kind: in.Kind, Subject: in.WorkflowID,
		Key: in.WorkflowID + "/" + in.Step, Body: in.Body})
	return classifyAccess(err)
}

// StartOffboardingInput names the leaver.
type StartOffboardingInput struct {
	PersonID     string    `json:"personId"`
	TerminatedAt time.Time `json:"terminatedAt"`
}

// OffboardAccount is one account of a leaver.
type OffboardAccount struct {
	System    string `json:"system"`
	Account   string `json:"account"`
	Connector string `json:"connector"`
	Manual    bool   `json:"manual,omitempty"`
	// TaskOwner gets a manual account's task: the leaver's manager, else the DPO.
	TaskOwner string `json:"taskOwner"`
}

// StartOffboarding marks the person as left and lists their accounts.
func (x *Access) StartOffboarding(ctx context.Context, in StartOffboardingInput) ([]OffboardAccount, error) {
	reg := x.Service.Registry
	p, err := reg.Person(ctx, in.PersonID)
	if err != nil {
		return nil, classifyAccess(err)
	}
	if err := reg.MarkTerminated(ctx, in.PersonID, in.TerminatedAt); err != nil {
		return nil, classifyAccess(err)
	}
	accounts, err := reg.AccountsOf(ctx, in.PersonID)
	if err != nil {
		return nil, classifyAccess(err)
	}
	owner := p.ManagerID
	if owner == "" {
		owner = x.Service.DPO
	}
	out := make([]OffboardAccount, 0, len(accounts))
	for _, a := range accounts {
		c, err := x.Service.Connectors.For(a.System)
		if err != nil {
			return nil, err
		}
		out = append(out, OffboardAccount{System: a.System, Account: a.Account, Connector: c.Name(), Manual: access.IsManual(c), TaskOwner: owner})
	}
	return out, nil
}
