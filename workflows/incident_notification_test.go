package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/incident"
)

const (
	testIncident = "inc-7"
	titleMarker  = "PIIMARKER7Q breach of J. Smith's account"
)

// incidentTest is an IncidentNotification run on the time-skipping test
// environment, with the activities replaced by a recorder.
type incidentTest struct {
	t         *testing.T
	env       *testsuite.TestWorkflowEnvironment
	clocks    activities.IncidentClocks
	approvers map[string]bool
	// smtpDownUntil: sending fails before this (test) time.
	smtpDownUntil time.Time
	declared      *activities.DeclareIncidentInput
	events        []activities.IncidentEvent
	sends         []activities.SendIncidentNotificationInput
	sentAt        []time.Time
	notices       []activities.IncidentNotice
	published     []activities.PublishIncidentInput
}

func newIncidentTest(t *testing.T) *incidentTest {
	env := newTestEnv(IncidentNotification, IncidentNotificationName, IncidentWorkflowID(testIncident))
	it := &incidentTest{t: t, env: env, approvers: map[string]bool{"U0DPO": true, "U0CTO": true},
		clocks: activities.IncidentClocks{Stages: []string{"triage", "containment", "notification", "eradication", "recovery", "lessons-learned"},
			AmazonDeadline: 24 * time.Hour, ICODeadline: 72 * time.Hour, Reminders: []time.Duration{4 * time.Hour, 12 * time.Hour, 20 * time.Hour},
			AutoSend: 22 * time.Hour, Approvers: 2}}
	a := &activities.Incident{}
	env.RegisterActivityWithOptions(a, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	env.OnActivity(a.DeclareIncident, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeclareIncidentInput) (activities.IncidentClocks, error) {
			it.declared = &in
			return it.clocks, nil
		})
	env.OnActivity(a.RecordIncidentEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, e activities.IncidentEvent) error {
			it.events = append(it.events, e)
			return nil
		}).Maybe()
	env.OnActivity(a.CheckIncidentApprover, mock.Anything, mock.Anything).Return(
		func(_ context.Context, by string) (activities.ApproverCheck, error) {
			return activities.ApproverCheck{Approver: it.approvers[by], Ref: by}, nil
		}).Maybe()
	env.OnActivity(a.PublishIncident, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishIncidentInput) error {
			it.published = append(it.published, in)
			return nil
		}).Maybe()
	env.OnActivity(a.NotifyIncidentPeople, mock.Anything, mock.Anything).Return(
		func(_ context.Context, n activities.IncidentNotice) error {
			it.notices = append(it.notices, n)
			return nil
		}).Maybe()
	env.OnActivity(a.SendIncidentNotification, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendIncidentNotificationInput) (incident.Sent, error) {
			if env.Now().Before(it.smtpDownUntil) {
				return incident.Sent{}, errors.New("mail: SMTP mail.example:587: connection failed")
			}
			it.sends = append(it.sends, in)
			it.sentAt = append(it.sentAt, env.Now().UTC())
			return incident.Sent{At: env.Now().UTC(), MessageID: "<incident-inc-7.amazon@dpp>"}, nil
		}).Maybe()
	return it
}

func (it *incidentTest) at(d time.Duration, f func()) { it.env.RegisterDelayedCallback(f, d) }

func (it *incidentTest) signalAt(d time.Duration, name string, payload any) {
	it.at(d, func() { it.env.SignalWorkflow(name, payload) })
}

func (it *incidentTest) status() IncidentStatus {
	v, err := it.env.QueryWorkflow(QueryStatus)
	require.NoError(it.t, err)
	var s IncidentStatus
	require.NoError(it.t, v.Get(&s))
	return s
}

func (it *incidentTest) declare(in map[string]any) IncidentStatus {
	it.env.ExecuteWorkflow(IncidentNotificationName, in)
	require.True(it.t, it.env.IsWorkflowCompleted())
	require.NoError(it.t, it.env.GetWorkflowError())
	var st IncidentStatus
	require.NoError(it.t, it.env.GetWorkflowResult(&st))
	return st
}

// kinds lists the recorded timeline kinds (with their target when they have one).
func (it *incidentTest) kinds() []string {
	var out []string
	for _, e := range it.events {
		k := e.Kind
		if tgt, ok := e.Detail["target"].(string); ok {
			k += ":" + tgt
		}
		out = append(out, k)
	}
	return out
}

func (it *incidentTest) count(kind string) int {
	n := 0
	for _, k := range it.kinds() {
		if k == kind {
			n++
		}
	}
	return n
}

func declaration() map[string]any {
	return map[string]any{"id": testIncident, "title": titleMarker, "severity": "high", "reportedBy": "U0OPS",
		"summary": "Found by monitoring", "personalData": false}
}

// closeAt closes the incident with a lessons-learned note at d.
func (it *incidentTest) closeAt(d time.Duration) {
	it.signalAt(d, SignalClose, CloseSignal{By: "U0DPO", Lessons: "rotate the keys sooner"})
}

func TestIncidentApprovedAtThreeHoursIsSentThen(t *testing.T) {
	it := newIncidentTest(t)
	it.signalAt(3*time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "amazon"})
	it.at(3*time.Hour+time.Minute, func() {
		st := it.status()
		require.NotNil(t, st.Amazon.SentAt)
		require.Equal(t, "U0DPO", st.Amazon.ApprovedBy)
		require.Empty(t, st.OpenApprovals)
	})
	it.closeAt(30 * time.Hour)
	st := it.declare(declaration())
	require.Len(t, it.sends, 1)
	require.Equal(t, t0.Add(3*time.Hour), it.sentAt[0])
	require.False(t, it.sends[0].Preliminary)
	require.Equal(t, "U0DPO", it.sends[0].By)
	require.Equal(t, 0, it.count("reminder:amazon"), "no reminder once sent: %v", it.kinds())
	require.Equal(t, 0, it.count("deadline-breached:amazon"))
	require.Equal(t, incident.OutcomeResolved, st.Outcome)
	require.Equal(t, "<incident-inc-7.amazon@dpp>", st.Amazon.MessageID)
	require.Equal(t, t0, it.declared.DetectedAt, "detectedAt defaults to the declaration")
	require.NotEmpty(t, it.published, "the Slack message is published")
}

func TestIncidentNeverApprovedIsRemindedAndSentByItselfAt22Hours(t *testing.T) {
	it := newIncidentTest(t)
	var mid IncidentStatus
	it.at(21*time.Hour, func() { mid = it.status() })
	it.closeAt(30 * time.Hour)
	st := it.declare(declaration())
	require.Equal(t, 3, it.count("reminder:amazon"), "%v", it.kinds())
	require.Equal(t, []string{"reminder", "reminder", "reminder"}, noticeKinds(it.notices))
	require.Len(t, it.sends, 1)
	require.True(t, it.sends[0].Preliminary)
	require.Equal(t, incidentAutoSend, it.sends[0].By)
	require.Equal(t, t0.Add(22*time.Hour), it.sentAt[0])
	require.Equal(t, 0, it.count("deadline-breached:amazon"))
	require.Equal(t, []string{"amazon"}, mid.OpenApprovals)
	require.Equal(t, t0.Add(24*time.Hour), *mid.NextDeadline)
	require.True(t, st.Amazon.Preliminary)
}

func noticeKinds(ns []activities.IncidentNotice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Kind)
	}
	return out
}

func TestIncidentSMTPDownForTenHoursIsRetriedAndSentInTime(t *testing.T) {
	it := newIncidentTest(t)
	it.smtpDownUntil = t0.Add(11 * time.Hour)
	it.signalAt(time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "amazon"})
	it.closeAt(30 * time.Hour)
	it.declare(declaration())
	require.Len(t, it.sends, 1)
	require.True(t, it.sentAt[0].Before(t0.Add(24*time.Hour)), "sent at %s", it.sentAt[0])
	require.False(t, it.sentAt[0].Before(it.smtpDownUntil))
	require.LessOrEqual(t, it.sentAt[0].Sub(it.smtpDownUntil), 10*time.Minute, "retries at most 10 minutes apart")
	require.Equal(t, 0, it.count("deadline-breached:amazon"))
	// Reminders kept coming while the mail was stuck.
	require.Equal(t, 1, it.count("reminder:amazon"), "%v", it.kinds())
}

func TestIncidentSMTPDownPastTheDeadlineIsABreachEscalated(t *testing.T) {
	it := newIncidentTest(t)
	it.smtpDownUntil = t0.Add(30 * time.Hour)
	it.signalAt(time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "amazon"})
	var atDeadline IncidentStatus
	it.at(24*time.Hour+time.Minute, func() { atDeadline = it.status() })
	it.closeAt(40 * time.Hour)
	it.declare(declaration())
	require.Equal(t, 1, it.count("deadline-breached:amazon"), "%v", it.kinds())
	require.Contains(t, noticeKinds(it.notices), "breach")
	require.True(t, atDeadline.Amazon.Breached)
	require.True(t, atDeadline.Amazon.Sending)
	require.Nil(t, atDeadline.Amazon.SentAt)
	require.Len(t, it.sends, 1, "sent once the server is back")
	require.False(t, it.sentAt[0].Before(t0.Add(30*time.Hour)))
}

func TestIncidentPersonalDataRunsBothClocks(t *testing.T) {
	it := newIncidentTest(t)
	in := declaration()
	in["personalData"] = true
	in["detectedAt"] = t0.Add(-2 * time.Hour).Format(time.RFC3339)
	it.signalAt(time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0CTO", Target: "amazon", Text: "Edited: " + titleMarker})
	var early IncidentStatus
	it.at(2*time.Hour, func() { early = it.status() })
	it.signalAt(10*time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "ico"})
	// Closing before the ICO has its report is refused.
	it.closeAt(20 * time.Hour)
	it.signalAt(30*time.Hour, SignalICOReported, ICOReportedSignal{By: "U0DPO", Reference: "ICO-2026-0042"})
	it.closeAt(31 * time.Hour)
	st := it.declare(in)
	require.Equal(t, t0.Add(22*time.Hour), early.Amazon.DueAt, "24 hours from detection, not declaration")
	require.Equal(t, t0.Add(70*time.Hour), early.ICO.DueAt)
	require.Equal(t, []string{"ico"}, early.OpenApprovals)
	require.Equal(t, t0.Add(70*time.Hour), *early.NextDeadline, "Amazon is notified: the ICO is next")
	require.Len(t, it.sends, 1)
	require.Equal(t, "Edited: "+titleMarker, it.sends[0].Text)
	require.Equal(t, 1, it.count("close-refused"), "%v", it.kinds())
	require.Equal(t, "ICO-2026-0042", st.ICO.Reference)
	require.False(t, st.ICO.Breached)
	require.Equal(t, 0, it.count("deadline-breached:ico"))
	// ICO reminders run on its own, longer clock: 12h, 36h, 60h after detection;
	// the first (at +10h declared time) came before the ICO was reported.
	require.Equal(t, 1, it.count("reminder:ico"), "%v", it.kinds())
}

func TestIncidentICONeverReportedIsEscalated(t *testing.T) {
	it := newIncidentTest(t)
	in := declaration()
	in["personalData"] = true
	it.signalAt(time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0CTO", Target: "amazon"})
	it.signalAt(73*time.Hour, SignalICOReported, ICOReportedSignal{By: "U0DPO", Reference: "ICO-LATE-1"})
	it.closeAt(74 * time.Hour)
	st := it.declare(in)
	require.Equal(t, 1, it.count("deadline-breached:ico"), "%v", it.kinds())
	require.Equal(t, 3, it.count("reminder:ico"))
	require.True(t, st.ICO.Breached)
}

func TestIncidentFalsePositiveNeedsASecondApprover(t *testing.T) {
	t.Run("confirmed", func(t *testing.T) {
		it := newIncidentTest(t)
		it.signalAt(time.Hour, SignalClose, CloseSignal{By: "U0DPO", FalsePositive: true, Reason: "test alert from " + titleMarker})
		it.signalAt(2*time.Hour, SignalConfirmFalsePositive, ConfirmFalsePositiveSignal{By: "U0DPO"})
		it.signalAt(3*time.Hour, SignalConfirmFalsePositive, ConfirmFalsePositiveSignal{By: "U0CTO"})
		st := it.declare(declaration())
		require.Equal(t, incident.OutcomeFalsePositive, st.Outcome)
		require.Empty(t, it.sends)
		require.Equal(t, 1, it.count("close-refused"), "the proposer cannot confirm: %v", it.kinds())
		require.Equal(t, t0.Add(3*time.Hour), *st.ClosedAt)
	})
	t.Run("not confirmed", func(t *testing.T) {
		it := newIncidentTest(t)
		it.signalAt(time.Hour, SignalClose, CloseSignal{By: "U0DPO", FalsePositive: true, Reason: "looks like a test"})
		it.closeAt(30 * time.Hour)
		st := it.declare(declaration())
		require.Len(t, it.sends, 1, "the clock kept running: auto-send")
		require.True(t, it.sends[0].Preliminary)
		require.Equal(t, incident.OutcomeResolved, st.Outcome)
	})
}

func TestIncidentApprovalFromSomeoneElseIsRefusedAndRecorded(t *testing.T) {
	it := newIncidentTest(t)
	it.clocks.AutoSend = 0
	it.signalAt(time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0INTRUDER", Target: "amazon"})
	var after IncidentStatus
	it.at(2*time.Hour, func() { after = it.status() })
	it.signalAt(5*time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "amazon"})
	it.closeAt(6 * time.Hour)
	it.declare(declaration())
	require.Equal(t, 1, it.count("approval-refused:amazon"))
	require.Nil(t, after.Amazon.SentAt)
	require.Equal(t, []string{"amazon"}, after.OpenApprovals)
	require.Len(t, it.sends, 1)
	require.Equal(t, "U0DPO", it.sends[0].By)
	require.Equal(t, t0.Add(5*time.Hour), it.sentAt[0])
}

func TestIncidentStagesAdvance(t *testing.T) {
	it := newIncidentTest(t)
	it.signalAt(time.Hour, SignalAdvanceStage, AdvanceStageSignal{By: "U0OPS"})
	it.signalAt(2*time.Hour, SignalAdvanceStage, AdvanceStageSignal{By: "U0OPS", Stage: "recovery", Note: "restored from backup"})
	it.signalAt(3*time.Hour, SignalAdvanceStage, AdvanceStageSignal{By: "U0OPS", Stage: "party"})
	it.signalAt(4*time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "amazon"})
	it.closeAt(5 * time.Hour)
	st := it.declare(declaration())
	require.Equal(t, "recovery", st.Stage)
	var stages []string
	for _, e := range it.events {
		if e.Kind == "stage-advanced" {
			stages = append(stages, e.Stage)
		}
	}
	require.Equal(t, []string{"containment", "recovery"}, stages)
	require.Equal(t, 1, st.RefusedSignals)
}

// TestIncidentBadInput: the declaration is refused at once, naming the field,
// never echoing the title.
func TestIncidentBadInput(t *testing.T) {
	for name, c := range map[string]struct {
		change func(map[string]any)
		want   string
	}{
		"no title":         {func(m map[string]any) { delete(m, "title") }, `"title" is missing`},
		"unknown severity": {func(m map[string]any) { m["severity"] = "apocalyptic" }, `"severity" must be one of low, medium, high, critical`},
		"bad detectedAt":   {func(m map[string]any) { m["detectedAt"] = "yesterday" }, `"detectedAt" is not an RFC 3339`},
		"future detectedAt": {func(m map[string]any) { m["detectedAt"] = t0.Add(time.Hour).Format(time.RFC3339) },
			`"detectedAt" is later than the declaration`},
		"unknown field":       {func(m map[string]any) { m["victim"] = titleMarker }, `unknown field`},
		"reportedBy an email": {func(m map[string]any) { m["reportedBy"] = "j.smith@example.com" }, `"reportedBy" must be an id`},
	} {
		t.Run(name, func(t *testing.T) {
			it := newIncidentTest(t)
			in := declaration()
			c.change(in)
			it.env.ExecuteWorkflow(IncidentNotificationName, in)
			require.True(t, it.env.IsWorkflowCompleted())
			err := it.env.GetWorkflowError()
			var app *temporal.ApplicationError
			require.True(t, errors.As(err, &app), "%v", err)
			require.Equal(t, ErrInvalidInput, app.Type())
			require.Contains(t, app.Error(), c.want)
			require.NotContains(t, app.Error(), "PIIMARKER7Q")
			require.NotContains(t, app.Error(), "j.smith")
			require.Nil(t, it.declared, "nothing recorded")
		})
	}
}

func TestIncidentBadSignalIsRefusedAndRecorded(t *testing.T) {
	it := newIncidentTest(t)
	it.signalAt(time.Hour, SignalApproveNotification, map[string]any{"by": "U0DPO", "target": "the press"})
	it.signalAt(90*time.Minute, SignalICOReported, map[string]any{"by": "U0DPO", "reference": "X"})
	it.signalAt(2*time.Hour, SignalClose, map[string]any{"by": "U0DPO"})
	it.signalAt(3*time.Hour, SignalApproveNotification, ApproveNotificationSignal{By: "U0DPO", Target: "amazon"})
	it.closeAt(4 * time.Hour)
	st := it.declare(declaration())
	require.Equal(t, 3, st.RefusedSignals)
	var reasons []string
	for _, e := range it.events {
		if e.Kind == "signal-refused" {
			reasons = append(reasons, e.Detail["reason"].(string))
		}
	}
	require.Len(t, reasons, 3)
	require.Contains(t, reasons[0], `"target" must be amazon or ico`)
	require.Contains(t, reasons[2], `"lessons" is required`)
	require.True(t, strings.Contains(strings.Join(reasons, "|"), "no personal data"))
}
