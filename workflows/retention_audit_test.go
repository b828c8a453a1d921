package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/activities"
)

func TestRetentionAuditPagesThroughOverdueOrdersAndRecordsTheSummary(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterWorkflowWithOptions(RetentionAudit, registerOpts(RetentionAuditName))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "retention-audit-test"})
	a := registerActivities(env)
	var inputs []activities.AuditInput
	env.OnActivity(a.AuditRetention, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AuditInput) (*activities.AuditResult, error) {
			inputs = append(inputs, in)
			if len(inputs) == 1 {
				return &activities.AuditResult{Found: 2, Purged: 1, Running: 1, RunningIDs: []string{"205-0000000-0000001"},
					Remaining: true, AfterDueAt: t0.Add(-time.Hour), AfterID: "205-0000000-0000002"}, nil
			}
			return &activities.AuditResult{Found: 1, Purged: 1, AfterDueAt: t0, AfterID: "205-0000000-0000003"}, nil
		})
	var summary activities.AuditSummary
	env.OnActivity(a.RecordAudit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AuditSummary) (int64, error) {
			summary = in
			return 42, nil
		})
	env.ExecuteWorkflow(RetentionAuditName, RetentionAuditInput{BatchSize: 2})
	require.NoError(t, env.GetWorkflowError())
	var res RetentionAuditResult
	require.NoError(t, env.GetWorkflowResult(&res))

	require.Len(t, inputs, 2)
	require.Equal(t, activities.AuditInput{AsOf: t0, BatchSize: 2}, inputs[0])
	require.Equal(t, "205-0000000-0000002", inputs[1].AfterID, "the second batch starts after the first")
	require.True(t, t0.Add(-time.Hour).Equal(inputs[1].AfterDueAt))
	require.Equal(t, RetentionAuditResult{AsOf: t0, Found: 3, Purged: 2, Running: 1,
		RunningIDs: []string{"205-0000000-0000001"}, EvidenceSeq: 42}, res)
	require.Equal(t, "retention-audit-test@2026-11-01T09:00:00Z", summary.AuditID)
	require.Equal(t, 3, summary.Found)
	require.Equal(t, 2, summary.Purged)
}
