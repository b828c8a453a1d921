package workflows

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/calendar"
)

// Every duty is reminded when it opens and before its due time, escalated
// when overdue, and completed (by update or signal) with its evidence, with
// the test server skipping time.
func TestEveryDutyRemindedEscalatedAndCompleted(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, duty := range calendar.Duties {
		t.Run(duty, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(t0)
			plan := activities.DutyPlan{Duty: duty, Period: "2026-11", DueAt: t0.Add(14 * 24 * time.Hour),
				Reminders: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}, OverdueEvery: 24 * time.Hour}
			id := calendar.WorkflowID(duty, plan.Period)
			env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
			env.RegisterWorkflowWithOptions(ComplianceDuty, registerOpts(ComplianceDutyName))
			a := &activities.Calendar{}
			a.Register(env)
			env.OnActivity(a.OpenDuty, mock.Anything, mock.Anything).Return(nil).Once()
			var reminded []activities.DutyReminder
			var remindedAt []time.Time
			env.OnActivity(a.RemindDuty, mock.Anything, mock.Anything).Return(
				func(ctx context.Context, r activities.DutyReminder) (bool, error) {
					reminded = append(reminded, r)
					remindedAt = append(remindedAt, env.Now().UTC())
					return true, nil
				})
			var completed []calendar.Completion
			env.OnActivity(a.CompleteDuty, mock.Anything, mock.Anything).Return(
				func(ctx context.Context, c calendar.Completion) (calendar.Occurrence, error) {
					completed = append(completed, c)
					at := c.At
					return calendar.Occurrence{WorkflowID: id, Duty: c.Duty, Period: c.Period, CompletedAt: &at,
						CompletedBy: c.By, ReportSHA256: c.ReportSHA256, EvidenceSeq: 42}, nil
				}).Once()
			rotated := t0.Add(15 * 24 * time.Hour)
			good := CompleteDutyRequest{By: "dpo", Note: "done", ReportSHA256: sha, RotatedAt: &rotated}
			// A bad completion is refused, naming the field, and changes nothing.
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(UpdateCompleteDuty, "bad", &testsuite.TestUpdateCallback{
					OnReject: func(err error) {
						require.ErrorContains(t, err, `field "by"`)
						require.NotContains(t, err.Error(), "jane", "no echo of the value")
					},
					OnAccept:   func() { t.Error("a completion without by was accepted") },
					OnComplete: func(any, error) {},
				}, CompleteDutyRequest{By: "Jane Doe <jane@example.com>"})
			}, time.Hour)
			// Overdue by a day and a half: escalated at the due time and a day later.
			env.RegisterDelayedCallback(func() {
				st := queryDuty(t, env)
				require.True(t, st.Overdue)
				if duty == calendar.RiskAssessment {
					env.SignalWorkflow(SignalCompleteDuty, good)
					return
				}
				env.UpdateWorkflow(UpdateCompleteDuty, "ok", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { t.Errorf("rejected: %v", err) },
					OnAccept: func() {},
					OnComplete: func(v any, err error) {
						require.NoError(t, err)
						require.NotNil(t, v.(DutyStatus).Completed)
					},
				}, good)
			}, 15*24*time.Hour+12*time.Hour)
			env.ExecuteWorkflow(ComplianceDutyName, plan) // by name: the plan is sent as JSON, as ComplianceCalendar does
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			var st DutyStatus
			require.NoError(t, env.GetWorkflowResult(&st))
			require.Len(t, completed, 1)
			require.Equal(t, "dpo", completed[0].By)
			require.Equal(t, int64(42), st.Completed.EvidenceSeq)
			want := []time.Time{t0, plan.DueAt.Add(-7 * 24 * time.Hour), plan.DueAt.Add(-24 * time.Hour), plan.DueAt, plan.DueAt.Add(24 * time.Hour)}
			require.Equal(t, want, remindedAt)
			require.False(t, reminded[2].Overdue)
			require.True(t, reminded[3].Overdue && reminded[4].Overdue)
			require.Equal(t, 5, st.Reminders)
		})
	}
}

func queryDuty(t *testing.T, env *testsuite.TestWorkflowEnvironment) DutyStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	var st DutyStatus
	require.NoError(t, v.Get(&st))
	return st
}

// The calendar starts each duty's occurrence under duty-<duty>-<period>; an
// LWA secret far from expiry starts nothing.
func TestComplianceCalendarStartsTheOccurrence(t *testing.T) {
	for _, tc := range []struct {
		plan activities.DutyPlan
		want string
	}{
		{activities.DutyPlan{Duty: calendar.VulnerabilityScan, Period: "2026-11-01", DueAt: t0.Add(time.Hour), OverdueEvery: time.Hour}, "duty-vulnerability-scan-2026-11-01"},
		{activities.DutyPlan{Duty: calendar.LWASecretRotation, Period: "2026-06-04", DueAt: t0.Add(90 * 24 * time.Hour), NotYet: true}, ""},
	} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetStartTime(t0)
		env.RegisterWorkflowWithOptions(ComplianceCalendar, registerOpts(ComplianceCalendarName))
		// The occurrence itself is tested above; here it only has to start.
		env.RegisterWorkflowWithOptions(func(workflow.Context, activities.DutyPlan) error { return nil }, registerOpts(ComplianceDutyName))
		a := &activities.Calendar{}
		a.Register(env)
		env.OnActivity(a.PlanDuty, mock.Anything, mock.Anything).Return(tc.plan, nil)
		env.ExecuteWorkflow(ComplianceCalendarName, ComplianceCalendarInput{Duty: tc.plan.Duty})
		require.NoError(t, env.GetWorkflowError())
		var res ComplianceCalendarResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, tc.want, res.WorkflowID)
		require.Equal(t, tc.want == "", res.NotYet)
	}
}

// A calendar, alert-check or sweep schedule edited with a bad input fails its
// run at once, naming the field and never echoing the value.
func TestCalendarInputsFailAtOnceNamingTheField(t *testing.T) {
	for _, tc := range []struct{ workflow, in, want string }{
		{ComplianceCalendarName, `{"duty":"jane@example.com"}`, `field "duty" must be one of`},
		{ComplianceCalendarName, `{"duty":"risk-assessment","x":1}`, `unknown field`},
		{AlertCheckName, `{"schedules":"order-sync"}`, `field "schedules"`},
		{AmazonDataSweepName, `{"batchSize":0}`, `field "batchSize" must be from 1 to 1000`},
	} {
		t.Run(tc.workflow+" "+tc.in, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(ComplianceCalendar, registerOpts(ComplianceCalendarName))
			env.RegisterWorkflowWithOptions(AlertCheck, registerOpts(AlertCheckName))
			env.RegisterWorkflowWithOptions(AmazonDataSweep, registerOpts(AmazonDataSweepName))
			env.ExecuteWorkflow(tc.workflow, json.RawMessage(tc.in))
			err := env.GetWorkflowError()
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "jane")
		})
	}
}
