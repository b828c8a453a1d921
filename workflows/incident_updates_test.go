package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/internal/incident"
)

// incidentAnswer is what an incident Update answered.
type incidentAnswer struct {
	st       IncidentStatus
	rejected error // refused by the validator: nothing recorded
	failed   error // refused by the handler (runs without a directory)
	done     bool
}

// askAt sends an Update at d; its answer arrives in the returned value.
func (it *incidentTest) askAt(d time.Duration, name string, payload any) *incidentAnswer {
	a := &incidentAnswer{}
	it.at(d, func() {
		it.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { a.rejected, a.done = err, true },
			OnComplete: func(v any, err error) {
				a.failed, a.done = err, true
				if err == nil {
					a.st = v.(IncidentStatus)
				}
			},
		}, payload)
	})
	return a
}

// withDirectory gives the run the approvers DeclareIncident resolves: U0DPO
// listed by Slack id, the second listed by address and found in Slack as U0CTO.
func (it *incidentTest) withDirectory() {
	it.clocks.Directory = []incident.Approver{{Ref: "U0DPO", SlackID: "U0DPO"}, {Ref: "approver-2", SlackID: "U0CTO"}}
	it.approvers = map[string]bool{} // the activity must not be asked
}

func (it *incidentTest) requireNoRefusalRecorded() {
	for _, k := range it.kinds() {
		require.NotRegexp(it.t, `refused|ignored`, k, "a refused Update leaves no trace: %v", it.kinds())
	}
}

func TestIncidentUpdatesAnswerAndRefuseWithoutATrace(t *testing.T) {
	it := newIncidentTest(t)
	it.withDirectory()
	amazon := ApproveNotificationSignal{By: "U0DPO", Target: "amazon"}
	notApprover := it.askAt(time.Hour, UpdateApproveNotification, ApproveNotificationSignal{By: "U0EVE", Target: "amazon"})
	byAddress := it.askAt(time.Hour+time.Minute, UpdateApproveNotification, ApproveNotificationSignal{By: "dpo@example.com", Target: "amazon"})
	badTarget := it.askAt(time.Hour+2*time.Minute, UpdateApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "ico"})
	approved := it.askAt(2*time.Hour, UpdateApproveNotification, amazon)
	again := it.askAt(3*time.Hour, UpdateApproveNotification, amazon)
	badStage := it.askAt(3*time.Hour+time.Minute, UpdateAdvanceStage, AdvanceStageSignal{By: "U0DPO", Stage: "panic"})
	sameStage := it.askAt(3*time.Hour+2*time.Minute, UpdateAdvanceStage, AdvanceStageSignal{By: "U0DPO", Stage: "triage"})
	advanced := it.askAt(4*time.Hour, UpdateAdvanceStage, AdvanceStageSignal{By: "U0CTO"})
	noLessons := it.askAt(5*time.Hour, UpdateClose, CloseSignal{By: "U0DPO"})
	noICO := it.askAt(5*time.Hour+time.Minute, UpdateICOReported, ICOReportedSignal{By: "U0DPO", Reference: "ICO/1"})
	closed := it.askAt(6*time.Hour, UpdateClose, CloseSignal{By: "approver-2", Lessons: "rotate keys sooner"})
	st := it.declare(declaration())

	for i, a := range []*incidentAnswer{notApprover, byAddress, badTarget, approved, again, badStage, sameStage, advanced, noLessons, noICO, closed} {
		require.True(t, a.done, "update %d was never answered", i)
		require.NoError(t, a.failed, "update %d", i)
	}
	require.ErrorContains(t, notApprover.rejected, "only the incident approvers")
	require.ErrorContains(t, byAddress.rejected, `field "by" is an e-mail address`)
	require.NotContains(t, byAddress.rejected.Error(), "dpo@example.com")
	require.ErrorContains(t, badTarget.rejected, `field "target" is ico`)
	require.NoError(t, approved.rejected)
	require.Equal(t, "U0DPO", approved.st.Amazon.ApprovedBy, "the answer is the status after the approval")
	require.ErrorContains(t, again.rejected, "already approved")
	require.ErrorContains(t, badStage.rejected, `field "stage"`)
	require.ErrorContains(t, sameStage.rejected, "already at stage triage")
	require.NoError(t, advanced.rejected)
	require.Equal(t, "containment", advanced.st.Stage)
	require.ErrorContains(t, noLessons.rejected, `field "lessons"`)
	require.ErrorContains(t, noICO.rejected, "no personal data")
	require.NoError(t, closed.rejected)
	require.True(t, closed.st.Closed)

	require.Equal(t, incident.OutcomeResolved, st.Outcome)
	require.Equal(t, 0, st.RefusedSignals)
	it.requireNoRefusalRecorded()
	require.Len(t, it.sends, 1)
	require.Equal(t, t0.Add(2*time.Hour), it.sentAt[0], "sent when approved")
	require.Equal(t, 0, it.count("reminder:amazon"), "the clock was chosen again after the Update: %v", it.kinds())
	// The approver listed by address clicked from Slack as U0CTO: recorded by reference.
	for _, e := range it.events {
		if e.Kind == "stage-advanced" {
			require.Equal(t, "approver-2", e.Actor)
		}
	}
}

func TestIncidentFalsePositiveByUpdateNeedsASecondApprover(t *testing.T) {
	it := newIncidentTest(t)
	it.withDirectory()
	it.clocks.AutoSend = 0
	confirmNone := it.askAt(30*time.Minute, UpdateConfirmFalsePositive, ConfirmFalsePositiveSignal{By: "U0CTO"})
	noReason := it.askAt(45*time.Minute, UpdateClose, CloseSignal{By: "U0DPO", FalsePositive: true})
	outsider := it.askAt(50*time.Minute, UpdateClose, CloseSignal{By: "U0EVE", FalsePositive: true, Reason: "drill"})
	proposed := it.askAt(time.Hour, UpdateClose, CloseSignal{By: "U0DPO", FalsePositive: true, Reason: "a drill"})
	same := it.askAt(2*time.Hour, UpdateConfirmFalsePositive, ConfirmFalsePositiveSignal{By: "U0DPO"})
	confirmed := it.askAt(3*time.Hour, UpdateConfirmFalsePositive, ConfirmFalsePositiveSignal{By: "U0CTO"})
	late := it.askAt(3*time.Hour+time.Second, UpdateAdvanceStage, AdvanceStageSignal{By: "U0DPO"})
	st := it.declare(declaration())

	require.ErrorContains(t, confirmNone.rejected, "nobody proposed")
	require.ErrorContains(t, noReason.rejected, `field "reason"`)
	require.ErrorContains(t, outsider.rejected, "only the incident approvers")
	require.NoError(t, proposed.rejected)
	require.Equal(t, "U0DPO", proposed.st.FalsePositiveProposedBy)
	require.ErrorContains(t, same.rejected, "a second approver")
	require.NoError(t, confirmed.rejected)
	require.Equal(t, incident.OutcomeFalsePositive, confirmed.st.Outcome)
	if late.done {
		require.ErrorIs(t, late.rejected, errIncidentClosed)
	}
	require.Equal(t, incident.OutcomeFalsePositive, st.Outcome)
	require.Equal(t, t0.Add(3*time.Hour), *st.ClosedAt)
	require.Empty(t, it.sends)
	it.requireNoRefusalRecorded()
}

// A run declared before the approver directory existed asks the activity in
// the Update's handler: a non-approver is then refused by the handler.
func TestIncidentUpdateOnARunWithoutDirectoryAsksTheActivity(t *testing.T) {
	it := newIncidentTest(t)
	it.clocks.AutoSend = 0
	outsider := it.askAt(time.Hour, UpdateApproveNotification, ApproveNotificationSignal{By: "U0EVE", Target: "amazon"})
	approved := it.askAt(2*time.Hour, UpdateApproveNotification, ApproveNotificationSignal{By: "U0CTO", Target: "amazon"})
	it.closeAt(3 * time.Hour)
	it.declare(declaration())
	require.NoError(t, outsider.rejected)
	require.ErrorContains(t, outsider.failed, "only the incident approvers")
	require.NoError(t, approved.failed)
	require.Equal(t, "U0CTO", approved.st.Amazon.ApprovedBy)
	require.Equal(t, t0.Add(2*time.Hour), it.sentAt[0])
}
