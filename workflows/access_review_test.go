package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/actor"
)

var accessTestOptions = Options{Access: AccessOptions{
	Reminders: []time.Duration{72 * time.Hour, 144 * time.Hour}, Escalation: 168 * time.Hour, Deadline: 336 * time.Hour,
	SLA: 24 * time.Hour, Escalations: []time.Duration{12 * time.Hour, 20 * time.Hour}, DPO: "p-dpo",
}}

const testCampaign = "2026-Q4"

// accessItems: an ordinary account, an orphan, a service account and a registry
// (manual) account.
var accessItems = []access.Item{
	{ID: "1", PersonID: "p-1", System: "postgres", Account: "emp_one", Connector: "postgres", Reviewer: "p-mgr", AmazonData: true},
	{ID: "2", System: "postgres", Account: "stray", Connector: "postgres", Flags: []string{access.FlagOrphan}, Reviewer: "p-dpo"},
	{ID: "3", PersonID: "p-2", System: "postgres", Account: "svc_report", Connector: "postgres", Service: true, Reviewer: "p-mgr"},
	{ID: "4", PersonID: "p-1", System: "seller-central", Account: "one@shop", Connector: "registry", Reviewer: "p-mgr"},
}

// accessRun is a time-skipping run of an access workflow with recorded activities.
type accessRun struct {
	t         *testing.T
	env       *testsuite.TestWorkflowEnvironment
	start     time.Time
	decisions []activities.AccessDecisionInput
	disables  []activities.DisableAccountInput
	verifies  []activities.DisableAccountInput
	notices   []notice
	events    []activities.AccessEventInput
	shows     []activities.ShowAccessReviewInput
	// disable answers DisableAccount; by default a connector disables and
	// verifies at once, the registry returns a manual task.
	disable  func(activities.DisableAccountInput) (access.DisableResult, error)
	items    []access.Item
	accounts []activities.OffboardAccount
	// deadlines are the ComplianceDeadline values the run set, in order.
	deadlines []time.Time
}

type notice struct {
	at time.Time
	activities.NotifyPersonInput
}

func newAccessRun(t *testing.T, workflowID string) *accessRun {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterWorkflowWithOptions(accessTestOptions.AccessReview, registerOpts(AccessReviewName))
	env.RegisterWorkflowWithOptions(accessTestOptions.Offboarding, registerOpts(OffboardingName))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID})
	r := &accessRun{t: t, env: env, start: t0, items: accessItems}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if d, ok := args.Get(0).(temporal.SearchAttributes).GetTime(ComplianceDeadlineKey); ok {
			r.deadlines = append(r.deadlines, d)
		}
	}).Return().Maybe()
	r.disable = func(in activities.DisableAccountInput) (access.DisableResult, error) {
		now := env.Now().UTC()
		if in.System == "seller-central" {
			return access.DisableResult{Manual: true, ExecutedAt: now}, nil
		}
		return access.DisableResult{ExecutedAt: now, VerifiedAt: &now}, nil
	}
	a := &activities.Access{}
	a.Register(env)
	env.OnActivity(a.CollectAccessReview, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.CollectAccessReviewInput) ([]access.Item, error) { return r.items, nil }).Maybe()
	env.OnActivity(a.ShowAccessReview, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ShowAccessReviewInput) error {
		r.shows = append(r.shows, in)
		return nil
	}).Maybe()
	env.OnActivity(a.RecordAccessDecision, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AccessDecisionInput) error {
		r.decisions = append(r.decisions, in)
		return nil
	}).Maybe()
	env.OnActivity(a.DisableAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisableAccountInput) (access.DisableResult, error) {
			r.disables = append(r.disables, in)
			return r.disable(in)
		}).Maybe()
	env.OnActivity(a.VerifyAccountDisabled, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DisableAccountInput) (access.DisableResult, error) {
			r.verifies = append(r.verifies, in)
			now := env.Now().UTC()
			res := in.Result
			res.VerifiedAt = &now
			return res, nil
		}).Maybe()
	env.OnActivity(a.NotifyPerson, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyPersonInput) error {
		r.notices = append(r.notices, notice{env.Now().UTC(), in})
		return nil
	}).Maybe()
	env.OnActivity(a.RecordAccessEvent, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AccessEventInput) error {
		r.events = append(r.events, in)
		return nil
	}).Maybe()
	env.OnActivity(a.StartOffboarding, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.StartOffboardingInput) ([]activities.OffboardAccount, error) {
			return r.accounts, nil
		}).Maybe()
	return r
}

// at runs f at start+d.
func (r *accessRun) at(d time.Duration, f func()) { r.env.RegisterDelayedCallback(f, d) }

// answer is an Update's outcome; the test environment delivers it after the
// callback that sent it returns.
type answer struct {
	refused error
	done    bool
}

func (a *answer) ok(t *testing.T) {
	t.Helper()
	require.True(t, a.done, "no answer")
	require.NoError(t, a.refused)
}

func (a *answer) refusedWith(t *testing.T, want string) {
	t.Helper()
	require.True(t, a.done, "no answer")
	require.ErrorContains(t, a.refused, want)
}

// update sends an Update.
func (r *accessRun) update(name string, payload any) *answer {
	a := &answer{}
	r.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { a.refused, a.done = err, true },
		OnComplete: func(any, error) { a.done = true },
	}, payload)
	return a
}

func (r *accessRun) decide(itemID, decision, by, reason string) *answer {
	return r.update(UpdateDecision, DecisionSignal{ItemID: itemID, Decision: decision, By: by, Reason: reason})
}

func (r *accessRun) reviewStatus() AccessReviewStatus {
	v, err := r.env.QueryWorkflow(QueryStatus)
	require.NoError(r.t, err)
	var st AccessReviewStatus
	require.NoError(r.t, v.Get(&st))
	return st
}

func (r *accessRun) reviewResult() AccessReviewStatus {
	require.True(r.t, r.env.IsWorkflowCompleted())
	require.NoError(r.t, r.env.GetWorkflowError())
	var st AccessReviewStatus
	require.NoError(r.t, r.env.GetWorkflowResult(&st))
	return st
}

func (r *accessRun) noticesTo(person string) []time.Duration {
	var out []time.Duration
	for _, n := range r.notices {
		if n.PersonID == person {
			out = append(out, n.at.Sub(r.start))
		}
	}
	return out
}

func (r *accessRun) eventSteps(kind string) []string {
	var out []string
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e.Step)
		}
	}
	return out
}

func TestAccessReviewAllKept(t *testing.T) {
	r := newAccessRun(t, AccessReviewWorkflowID(testCampaign))
	type refusal struct {
		a    *answer
		want string
	}
	var refused []refusal
	var accepted []*answer
	r.at(time.Hour, func() {
		// Refused decisions: each says why, and leaves no trace.
		for _, tc := range []struct {
			d    DecisionSignal
			want string
		}{
			{DecisionSignal{ItemID: "2", Decision: "keep", By: "p-dpo"}, "keeping it needs a written reason"},
			{DecisionSignal{ItemID: "1", Decision: "keep", By: "p-1"}, "item 1 is not yours to decide: its reviewer is p-mgr"},
			{DecisionSignal{ItemID: "1", Decision: "maybe", By: "p-mgr"}, `field "decision" must be "keep" or "revoke"`},
			{DecisionSignal{ItemID: "99", Decision: "keep", By: "p-mgr"}, "campaign 2026-Q4 has no item 99"},
			{DecisionSignal{ItemID: "1", Decision: "keep", By: "Jo Bloggs"}, `field "by" must be a person id`},
		} {
			refused = append(refused, refusal{r.decide(tc.d.ItemID, tc.d.Decision, tc.d.By, tc.d.Reason), tc.want})
		}
		accepted = append(accepted, r.decide("1", "keep", "p-mgr", ""),
			r.decide("2", "keep", "p-dpo", "break-glass role, ticket SEC-12"),
			// The DPO may decide any item.
			r.decide("3", "keep", "p-dpo", ""))
	})
	r.at(2*time.Hour, func() {
		refused = append(refused, refusal{r.decide("1", "revoke", "p-mgr", ""), "item 1 was already decided: keep by p-mgr"})
		accepted = append(accepted, r.decide("4", "keep", "p-mgr", ""))
	})
	r.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{Campaign: testCampaign})

	for _, x := range refused {
		x.a.refusedWith(t, x.want)
		require.NotContains(t, x.a.refused.Error(), "Jo Bloggs")
	}
	for _, a := range accepted {
		a.ok(t)
	}
	st := r.reviewResult()
	require.True(t, st.Done)
	require.Equal(t, 0, st.Open)
	require.Len(t, r.decisions, 4)
	require.Empty(t, r.disables)
	require.Equal(t, "break-glass role, ticket SEC-12", st.Items[1].Reason)
	require.Empty(t, r.notices, "no reminder: everything was decided on the first day")
	// One message per reviewer first, then updates as items are decided.
	require.Equal(t, []string{"p-mgr", "p-dpo"}, []string{r.shows[0].Reviewer, r.shows[1].Reviewer})
	last := r.shows[len(r.shows)-1]
	require.Equal(t, "p-mgr", last.Reviewer)
	for _, l := range last.Lines {
		require.Equal(t, access.DecisionKeep, l.Decision)
	}
}

func TestAccessReviewSomeRevoked(t *testing.T) {
	r := newAccessRun(t, AccessReviewWorkflowID(testCampaign))
	var answers []*answer
	var notYours, confirmed *answer
	r.at(time.Hour, func() {
		answers = append(answers, r.decide("1", "revoke", "p-mgr", ""), r.decide("2", "revoke", "p-dpo", ""),
			r.decide("3", "keep", "p-mgr", ""), r.decide("4", "revoke", "p-mgr", ""))
	})
	r.at(3*time.Hour, func() {
		st := r.reviewStatus()
		require.True(t, st.Items[3].Manual)
		require.Nil(t, st.Items[3].VerifiedAt, "a registry account is not disabled until someone confirms")
		notYours = r.update(UpdateConfirmDisabled, ConfirmDisabledSignal{System: "seller-central", Account: "one@shop", By: "p-2"})
		confirmed = r.update(UpdateConfirmDisabled, ConfirmDisabledSignal{System: "seller-central", Account: "one@shop", By: "p-mgr"})
	})
	r.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{Campaign: testCampaign})
	for _, a := range answers {
		a.ok(t)
	}
	notYours.refusedWith(t, "the task for seller-central/one@shop is not yours")
	confirmed.ok(t)

	st := r.reviewResult()
	require.Len(t, r.disables, 3)
	require.Equal(t, "item/1", r.disables[0].Step)
	require.Equal(t, access.KindExecution, r.disables[0].Kind)
	require.Len(t, r.verifies, 1)
	require.Equal(t, "p-mgr", r.verifies[0].ConfirmedBy)
	for _, i := range []int{0, 1, 3} {
		require.NotNil(t, st.Items[i].ExecutedAt, "item %d", i+1)
		require.NotNil(t, st.Items[i].VerifiedAt, "item %d", i+1)
	}
	require.Equal(t, t0.Add(3*time.Hour), *st.Items[3].VerifiedAt)
	require.Nil(t, st.Items[2].ExecutedAt)
}

func TestAccessReviewNoAnswer(t *testing.T) {
	r := newAccessRun(t, AccessReviewWorkflowID(testCampaign))
	r.at(340*time.Hour, func() {
		st := r.reviewStatus()
		require.True(t, st.DeadlinePassed)
		require.Equal(t, actor.AccessReview, st.Items[0].By)
		require.Equal(t, "", st.Items[2].Decision, "a service account is never revoked automatically")
		r.decide("3", "keep", "p-dpo", "")
	})
	r.at(341*time.Hour, func() {
		r.update(UpdateConfirmDisabled, ConfirmDisabledSignal{System: "seller-central", Account: "one@shop", By: "p-mgr"})
	})
	r.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{Campaign: testCampaign})

	st := r.reviewResult()
	// Reminders to both reviewers at 72h and 144h; at 168h the escalation and at
	// 336h the held service account go to the DPO.
	require.Equal(t, []time.Duration{72 * time.Hour, 144 * time.Hour}, r.noticesTo("p-mgr"))
	require.Equal(t, []time.Duration{72 * time.Hour, 144 * time.Hour, 168 * time.Hour, 336 * time.Hour}, r.noticesTo("p-dpo"))
	require.Equal(t, []string{"escalation", "deadline"}, r.eventSteps(access.KindEscalation))
	var revoked []string
	for _, d := range r.disables {
		revoked = append(revoked, d.Step+" "+d.TaskOwner)
	}
	// At the deadline a registry task goes to the item's reviewer.
	require.Equal(t, []string{"item/1 p-mgr", "item/2 p-dpo", "item/4 p-mgr"}, revoked)
	for _, d := range r.decisions[:3] {
		require.Equal(t, actor.AccessReview, d.By)
		require.Equal(t, t0.Add(336*time.Hour), d.At)
	}
	require.Equal(t, access.DecisionKeep, st.Items[2].Decision)
}

func TestAccessReviewExtension(t *testing.T) {
	r := newAccessRun(t, AccessReviewWorkflowID(testCampaign))
	var notDPO, tooEarly, extended *answer
	r.at(300*time.Hour, func() {
		notDPO = r.update(UpdateExtend, ExtendSignal{By: "p-mgr", Until: t0.Add(400 * time.Hour)})
		tooEarly = r.update(UpdateExtend, ExtendSignal{By: "p-dpo", Until: t0.Add(200 * time.Hour)})
		extended = r.update(UpdateExtend, ExtendSignal{By: "p-dpo", Until: t0.Add(400 * time.Hour)})
	})
	r.at(390*time.Hour, func() {
		require.Empty(t, r.disables, "nothing is revoked before the extended deadline")
		r.decide("1", "keep", "p-mgr", "")
		r.decide("3", "keep", "p-mgr", "")
		r.decide("4", "keep", "p-mgr", "")
	})
	r.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{Campaign: testCampaign})
	notDPO.refusedWith(t, "only the DPO")
	tooEarly.refusedWith(t, "must be later than the deadline")
	extended.ok(t)

	st := r.reviewResult()
	require.True(t, st.Extended)
	require.Equal(t, t0.Add(400*time.Hour), st.Deadline)
	require.Equal(t, []time.Time{t0.Add(336 * time.Hour), t0.Add(400 * time.Hour)}, r.deadlines,
		"ComplianceDeadline is the review's due date, moved by the extension")
	require.Len(t, r.disables, 1)
	require.Equal(t, "item/2", r.disables[0].Step)
	require.Equal(t, t0.Add(400*time.Hour), r.decisions[len(r.decisions)-1].At)
	require.Equal(t, []string{"extend/" + t0.Add(400*time.Hour).Format(time.RFC3339)}, r.eventSteps(access.KindExtension))
}

func TestAccessReviewVerificationFailureIsEscalated(t *testing.T) {
	r := newAccessRun(t, AccessReviewWorkflowID(testCampaign))
	r.disable = func(activities.DisableAccountInput) (access.DisableResult, error) {
		return access.DisableResult{}, temporal.NewApplicationError("postgres/emp_one: the connector still reports the account enabled", activities.ErrNotVerified)
	}
	r.at(time.Hour, func() {
		r.decide("1", "revoke", "p-mgr", "")
		for _, id := range []string{"2", "3", "4"} {
			r.decide(id, "keep", "p-dpo", "kept")
		}
	})
	r.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{Campaign: testCampaign})

	st := r.reviewResult()
	require.Len(t, r.disables, 8, "retried, then given up")
	require.Nil(t, st.Items[0].VerifiedAt, "never counted as done")
	require.Contains(t, st.Items[0].Problem, "still reports the account enabled")
	require.Equal(t, []string{"item/1/problem"}, r.eventSteps(access.KindEscalation))
	require.Len(t, r.noticesTo("p-dpo"), 1)
}

func TestAccessReviewBadSignalIsDroppedAndScheduledRunStartsTheCampaign(t *testing.T) {
	r := newAccessRun(t, AccessReviewWorkflowID(testCampaign))
	r.at(time.Hour, func() {
		r.env.SignalWorkflow(SignalDecision, map[string]any{"itemId": "1", "decision": "maybe", "by": "p-mgr"})
		r.env.SignalWorkflow(SignalDecision, DecisionSignal{ItemID: "1", Decision: "keep", By: "p-mgr"})
		r.env.SignalWorkflow(SignalDecision, DecisionSignal{ItemID: "2", Decision: "keep", By: "p-dpo", Reason: "r"})
		r.env.SignalWorkflow(SignalDecision, DecisionSignal{ItemID: "3", Decision: "keep", By: "p-mgr"})
		r.env.SignalWorkflow(SignalDecision, DecisionSignal{ItemID: "4", Decision: "keep", By: "p-mgr"})
	})
	r.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{Campaign: testCampaign})
	st := r.reviewResult()
	require.Equal(t, access.DecisionKeep, st.Items[0].Decision)

	// A schedule's run has a timestamped ID: it starts access-review-<quarter>.
	s := newAccessRun(t, "access-review-2026-11-01T09:00:00Z")
	s.items = nil
	var child string
	s.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		child = info.WorkflowExecution.ID
	})
	s.env.ExecuteWorkflow(AccessReviewName, AccessReviewInput{})
	require.NoError(t, s.env.GetWorkflowError())
	require.Equal(t, "access-review-2026-Q4", child)
	require.Equal(t, "2026-Q4", CampaignOf(t0))
	require.Equal(t, "2027-Q1", CampaignOf(time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)))
}

func TestAccessReviewInputAndIDs(t *testing.T) {
	require.Equal(t, "access-review-2026-Q4", AccessReviewWorkflowID("2026-Q4"))
	require.Equal(t, "offboarding-p-7", OffboardingWorkflowID("p-7"))
	require.ErrorContains(t, AccessReviewInput{Campaign: "2026 Q4!"}.Validate(), `field "campaign"`)
	err := OffboardingInput{PersonID: "Jo Bloggs", TerminatedAt: t0, RequestedBy: "p-hr"}.Validate()
	require.ErrorContains(t, err, `field "personId" must be a person id`)
	require.False(t, strings.Contains(err.Error(), "Jo"))
}
