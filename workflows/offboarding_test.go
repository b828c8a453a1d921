package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
)

var leaverAccounts = []activities.OffboardAccount{
	{System: "postgres", Account: "emp_one", Connector: access.ConnectorPostgres, TaskOwner: "p-mgr"},
	{System: "seller-central", Account: "one@shop", Connector: access.ConnectorRegistry, Manual: true, TaskOwner: "p-mgr"},
}

func offboardingResult(t *testing.T, r *accessRun) OffboardingStatus {
	t.Helper()
	require.True(t, r.env.IsWorkflowCompleted())
	require.NoError(t, r.env.GetWorkflowError())
	var st OffboardingStatus
	require.NoError(t, r.env.GetWorkflowResult(&st))
	return st
}

func TestOffboardingConnectorFailingFor13Hours(t *testing.T) {
	r := newAccessRun(t, OffboardingWorkflowID("p-1"))
	r.accounts = leaverAccounts
	next := r.disable
	r.disable = func(in activities.DisableAccountInput) (access.DisableResult, error) {
		if in.System == "postgres" && r.env.Now().Before(t0.Add(13*time.Hour)) {
			return access.DisableResult{}, errors.New("connection refused")
		}
		return next(in)
	}
	var notYours, confirmed *answer
	r.at(2*time.Hour, func() {
		notYours = r.update(UpdateConfirmDisabled, ConfirmDisabledSignal{System: "seller-central", Account: "one@shop", By: "p-2"})
		confirmed = r.update(UpdateConfirmDisabled, ConfirmDisabledSignal{System: "seller-central", Account: "one@shop", By: "p-mgr"})
	})
	r.env.ExecuteWorkflow(OffboardingName, OffboardingInput{PersonID: "p-1", TerminatedAt: t0, RequestedBy: "p-hr"})

	notYours.refusedWith(t, "the task for seller-central/one@shop is not yours")
	confirmed.ok(t)
	st := offboardingResult(t, r)
	require.True(t, st.Done)
	require.Nil(t, st.BreachedAt)
	require.Equal(t, 1, st.Escalations, "escalated at 12h, done before 20h")
	require.Equal(t, []time.Duration{12 * time.Hour}, r.noticesTo("p-dpo"))
	require.Equal(t, []string{"escalation/1"}, r.eventSteps(access.KindEscalation))
	require.Equal(t, []any{"postgres/emp_one"}, toAny(r.events[0].Body["stillEnabled"]))
	pg := st.Accounts[0]
	require.False(t, pg.VerifiedAt.Before(t0.Add(13*time.Hour)))
	require.True(t, pg.VerifiedAt.Before(t0.Add(14*time.Hour)), "retried often enough: verified %s", pg.VerifiedAt)
	require.Equal(t, t0.Add(2*time.Hour), *st.Accounts[1].VerifiedAt)
	require.Equal(t, "account/postgres/emp_one", r.disables[len(r.disables)-1].Step)
	require.Equal(t, access.KindOffboard, r.disables[0].Kind)
}

func toAny(v any) []any {
	switch s := v.(type) {
	case []string:
		out := make([]any, len(s))
		for i := range s {
			out[i] = s[i]
		}
		return out
	case []any:
		return s
	}
	return nil
}

func TestOffboardingDeadlineBreached(t *testing.T) {
	r := newAccessRun(t, OffboardingWorkflowID("p-1"))
	r.accounts = leaverAccounts
	r.at(30*time.Hour, func() {
		st := OffboardingStatus{}
		v, err := r.env.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(&st))
		require.NotNil(t, st.BreachedAt)
		require.Equal(t, t0.Add(24*time.Hour), *st.BreachedAt)
		require.Equal(t, []string{"seller-central/one@shop"}, st.StillEnabled)
		r.update(UpdateConfirmDisabled, ConfirmDisabledSignal{System: "seller-central", Account: "one@shop", By: "p-dpo"})
	})
	r.env.ExecuteWorkflow(OffboardingName, OffboardingInput{PersonID: "p-1", TerminatedAt: t0, RequestedBy: "p-hr"})

	st := offboardingResult(t, r)
	require.True(t, st.Done)
	require.Equal(t, 2, st.Escalations)
	require.Equal(t, []time.Time{t0.Add(24 * time.Hour)}, r.deadlines, "ComplianceDeadline is the 24-hour deadline")
	require.Equal(t, []string{"breach"}, r.eventSteps(access.KindBreach))
	require.Equal(t, []string{"escalation/1", "escalation/2", "breach/notice"}, r.eventSteps(access.KindEscalation))
	require.Equal(t, []time.Duration{12 * time.Hour, 20 * time.Hour, 24 * time.Hour}, r.noticesTo("p-dpo"))
	require.Equal(t, t0.Add(30*time.Hour), *st.Accounts[1].VerifiedAt)
	require.Equal(t, "p-dpo", r.verifies[0].ConfirmedBy)
}

func TestOffboardingRejectsBadInput(t *testing.T) {
	r := newAccessRun(t, OffboardingWorkflowID("p-1"))
	r.env.ExecuteWorkflow(OffboardingName, map[string]any{"personId": "p-1", "requestedBy": "p-hr"})
	require.ErrorContains(t, r.env.GetWorkflowError(), `field "terminatedAt" is missing`)

	w := newAccessRun(t, "offboarding-someone-else")
	w.env.ExecuteWorkflow(OffboardingName, OffboardingInput{PersonID: "p-1", TerminatedAt: t0, RequestedBy: "p-hr"})
	require.ErrorContains(t, w.env.GetWorkflowError(), "must run as workflow ID offboarding-p-1")
}
