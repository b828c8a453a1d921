package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
)

// OffboardingInput is Offboarding's input:
// {"personId", "terminatedAt": RFC 3339, "requestedBy"}.
type OffboardingInput struct {
	PersonID     string    `json:"personId"`
	TerminatedAt time.Time `json:"terminatedAt"`
	RequestedBy  string    `json:"requestedBy"`
	problem      error
}

// Validate names what is wrong with the input.
func (in OffboardingInput) Validate() error {
	switch {
	case in.problem != nil:
		return fmt.Errorf(`Offboarding input: %w; want {"personId": "p-7", "terminatedAt": "2026-12-01T17:30:00Z", "requestedBy": "p-hr"}`, in.problem)
	case !access.ValidPersonID(in.PersonID):
		return errors.New(`Offboarding input: field "personId" must be a person id`)
	case in.TerminatedAt.IsZero():
		return errors.New(`Offboarding input: field "terminatedAt" is missing (RFC 3339)`)
	case !access.ValidPersonID(in.RequestedBy):
		return errors.New(`Offboarding input: field "requestedBy" must be a person id`)
	}
	return nil
}

// OffboardedAccount is one account of the leaver and what became of it.
type OffboardedAccount struct {
	activities.OffboardAccount
	ExecutedAt *time.Time `json:"executedAt,omitempty"`
	VerifiedAt *time.Time `json:"verifiedAt,omitempty"`
	// Problem: the connector refused for good (a protected account); the DPO was told.
	Problem string `json:"problem,omitempty"`
	// confirmedBy: a person confirmed a manual disable; verifying comes next.
	confirmedBy string
}

func (a *OffboardedAccount) settled() bool { return a.VerifiedAt != nil || a.Problem != "" }

// OffboardingStatus answers the status query.
type OffboardingStatus struct {
	PersonID     string              `json:"personId"`
	TerminatedAt time.Time           `json:"terminatedAt"`
	Deadline     time.Time           `json:"deadline"`
	Accounts     []OffboardedAccount `json:"accounts"`
	Escalations  int                 `json:"escalations"`
	// BreachedAt: the deadline passed with accounts still enabled (StillEnabled
	// then); recorded as evidence.
	BreachedAt   *time.Time `json:"breachedAt,omitempty"`
	StillEnabled []string   `json:"stillEnabled,omitempty"`
	Done         bool       `json:"done"`
}

func (s *OffboardingStatus) enabled() []string {
	var out []string
	for i := range s.Accounts {
		if a := &s.Accounts[i]; a.VerifiedAt == nil {
			out = append(out, a.System+"/"+a.Account)
		}
	}
	return out
}

// Offboarding disables every account of a leaver in every connector and
// verifies each, within DPP_OFFBOARDING_SLA of terminatedAt: registry accounts
// become Slack tasks confirmed by button; the DPO hears at each
// DPP_OFFBOARDING_ESCALATIONS; past the deadline a breach is recorded with what
// was still enabled, and the work goes on until it is done.
func (o Options) Offboarding(ctx workflow.Context, in OffboardingInput) (*OffboardingStatus, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	if want := OffboardingWorkflowID(in.PersonID); wfID != want {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("Offboarding of %s must run as workflow ID %s", in.PersonID, want), ErrInvalidInput, nil)
	}
	t, err := o.accessTimings(ctx)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	st := &OffboardingStatus{PersonID: in.PersonID, TerminatedAt: in.TerminatedAt.UTC(), Deadline: in.TerminatedAt.UTC().Add(t.SLA),
		Accounts: []OffboardedAccount{}}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (OffboardingStatus, error) { return *st, nil }); err != nil {
		return nil, err
	}
	checkConfirm := func(c ConfirmDisabledSignal) error {
		if err := c.Validate(); err != nil {
			return err
		}
		for i := range st.Accounts {
			a := &st.Accounts[i]
			if a.System != c.System || a.Account != c.Account {
				continue
			}
			switch {
			case !a.Manual:
				return fmt.Errorf("%s/%s is disabled by its connector, not by hand", c.System, c.Account)
			case a.VerifiedAt != nil:
				return fmt.Errorf("%s/%s is already confirmed disabled", c.System, c.Account)
			case c.By != a.TaskOwner && c.By != t.DPO:
				return fmt.Errorf("the task for %s/%s is not yours", c.System, c.Account)
			}
			return nil
		}
		return fmt.Errorf("%s has no account %s/%s", in.PersonID, c.System, c.Account)
	}
	confirm := func(c ConfirmDisabledSignal) {
		for i := range st.Accounts {
			if a := &st.Accounts[i]; a.System == c.System && a.Account == c.Account {
				a.confirmedBy = c.By
			}
		}
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UpdateConfirmDisabled,
		func(ctx workflow.Context, raw json.RawMessage) (OffboardingStatus, error) {
			var c ConfirmDisabledSignal
			_ = decodeAccess(raw, &c)
			confirm(c)
			return *st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, raw json.RawMessage) error {
			var c ConfirmDisabledSignal
			if err := decodeAccess(raw, &c); err != nil {
				return err
			}
			return checkConfirm(c)
		}})
	if err != nil {
		return nil, err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, SignalConfirmDisabled)
		for {
			var raw json.RawMessage
			ch.Receive(ctx, &raw)
			var c ConfirmDisabledSignal
			if err := decodeAccess(raw, &c); err != nil || checkConfirm(c) != nil {
				rejectAccess(ctx, SignalConfirmDisabled, errors.Join(err, checkConfirm(c)))
				continue
			}
			confirm(c)
		}
	})

	// The 24-hour deadline, for the Web UI and the alert check (older runs: the status query).
	if workflow.GetVersion(ctx, versionComplianceDeadline, workflow.DefaultVersion, 1) == 1 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, ComplianceDeadlineKey.ValueSet(st.Deadline)); err != nil {
			return nil, err
		}
	}
	var accounts []activities.OffboardAccount
	err = workflow.ExecuteActivity(withOptions(ctx, accessOptions), acts.StartOffboarding,
		activities.StartOffboardingInput{PersonID: in.PersonID, TerminatedAt: in.TerminatedAt}).Get(ctx, &accounts)
	if err != nil {
		return nil, err
	}
	for _, a := range accounts {
		st.Accounts = append(st.Accounts, OffboardedAccount{OffboardAccount: a})
	}
	allSettled := func() bool {
		for i := range st.Accounts {
			if !st.Accounts[i].settled() {
				return false
			}
		}
		return true
	}

	for i := range st.Accounts {
		a := &st.Accounts[i]
		workflow.Go(ctx, func(ctx workflow.Context) { offboardAccount(ctx, wfID, in, t, a) })
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for n, after := range t.Escalations {
			if sleepUntil(ctx, st.TerminatedAt.Add(after)) != nil || allSettled() {
				return
			}
			st.Escalations++
			still := st.enabled()
			escalate(ctx, t.DPO, wfID, fmt.Sprintf("escalation/%d", n+1),
				fmt.Sprintf("Offboarding of %s: %d account(s) still enabled %s after termination (%s); the deadline is %s.",
					in.PersonID, len(still), after, strings.Join(still, ", "), st.Deadline.Format(time.RFC3339)),
				map[string]any{"personId": in.PersonID, "stillEnabled": still, "deadline": st.Deadline})
		}
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		if sleepUntil(ctx, st.Deadline) != nil || allSettled() {
			return
		}
		now := workflow.Now(ctx)
		st.BreachedAt, st.StillEnabled = &now, st.enabled()
		body := map[string]any{"personId": in.PersonID, "terminatedAt": st.TerminatedAt, "deadline": st.Deadline,
			"stillEnabled": st.StillEnabled, "requestedBy": in.RequestedBy}
		ev := activities.AccessEventInput{Kind: access.KindBreach, WorkflowID: wfID, Step: "breach", Body: body}
		if err := workflow.ExecuteActivity(withOptions(ctx, accessOptions), acts.RecordAccessEvent, ev).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("Cannot record the breach", "error", err.Error())
		}
		escalate(ctx, t.DPO, wfID, "breach/notice",
			fmt.Sprintf("Offboarding of %s BREACHED its deadline %s: still enabled %s.", in.PersonID,
				st.Deadline.Format(time.RFC3339), strings.Join(st.StillEnabled, ", ")),
			map[string]any{"personId": in.PersonID, "stillEnabled": st.StillEnabled})
	})
	if err := workflow.Await(ctx, allSettled); err != nil {
		return nil, err
	}
	st.Done = true
	return st, nil
}

// offboardAccount disables one account, retrying the connector for as long as it
// takes; a manual account waits for its owner's confirmation, then is verified.
func offboardAccount(ctx workflow.Context, wfID string, in OffboardingInput, t AccessTimings, a *OffboardedAccount) {
	din := activities.DisableAccountInput{WorkflowID: wfID, Step: "account/" + a.System + "/" + a.Account,
		System: a.System, Account: a.Account, TaskOwner: a.TaskOwner, Why: in.PersonID + " has left", Kind: access.KindOffboard}
	var res access.DisableResult
	if err := workflow.ExecuteActivity(withOptions(ctx, accessOptions), acts.DisableAccount, din).Get(ctx, &res); err != nil {
		a.Problem = errorMessage(err)
		escalate(ctx, t.DPO, wfID, "account/"+a.System+"/"+a.Account+"/problem",
			fmt.Sprintf("Offboarding of %s: %s/%s cannot be disabled by its connector: %s", in.PersonID, a.System, a.Account, a.Problem),
			map[string]any{"system": a.System, "account": a.Account, "problem": a.Problem})
		return
	}
	executed := res.ExecutedAt
	a.ExecutedAt = &executed
	for res.VerifiedAt == nil {
		if workflow.Await(ctx, func() bool { return a.confirmedBy != "" }) != nil {
			return
		}
		din.ConfirmedBy, din.Result = a.confirmedBy, res
		err := workflow.ExecuteActivity(withOptions(ctx, revokeOptions), acts.VerifyAccountDisabled, din).Get(ctx, &res)
		if err != nil {
			// The owner said it is done, the registry does not show it: ask again.
			workflow.GetLogger(ctx).Error("A confirmed disable did not verify", "system", a.System, "error", err.Error())
			a.confirmedBy = ""
		}
	}
	a.VerifiedAt = res.VerifiedAt
}
