package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/keyepochs"
)

func keyEpochsEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.KeyEpochs) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterWorkflowWithOptions(KeyEpochs, workflow.RegisterOptions{Name: KeyEpochsName})
	a := &activities.KeyEpochs{}
	a.Register(env)
	env.OnActivity(a.EnsureEpochKeys, mock.Anything).Return(&activities.EpochKeys{
		Aliases: []string{"alias/dpp/pii/2026-11-01", "alias/dpp/pii/2026-11-02", "alias/dpp/tax/2026"}}, nil)
	return env, a
}

// A run creates the keys ahead, re-wraps an expired epoch's survivors batch by
// batch before scheduling its deletion, re-wraps epoch zero, confirms a past
// deletion, and reports (without failing, and without stopping the others) a
// key KMS would not schedule.
func TestKeyEpochsRetiresExpiredEpochsAndReportsFailures(t *testing.T) {
	env, a := keyEpochsEnv(t)
	pii := activities.EpochRef{KMSKeyID: "arn:pii-1", Alias: "alias/dpp/pii/2026-10-09", Purpose: keyepochs.PurposePII}
	tax := activities.EpochRef{KMSKeyID: "arn:tax-2019", Alias: "alias/dpp/tax/2019", Purpose: keyepochs.PurposeTaxRecord}
	old := activities.EpochRef{KMSKeyID: "arn:pii-0", Alias: "alias/dpp/pii/2026-10-01", Purpose: keyepochs.PurposePII}
	env.OnActivity(a.DueKeyEpochs, mock.Anything).Return(&activities.DueEpochs{
		Retire: []activities.EpochRef{tax, pii}, Confirm: []activities.EpochRef{old}, EpochZero: true}, nil)
	var order []string
	batches := map[string]int{}
	env.OnActivity(a.RewrapEpoch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RewrapInput) (*keyepochs.Rewrap, error) {
			batches[in.KMSKeyID]++
			order = append(order, "rewrap "+in.KMSKeyID)
			return &keyepochs.Rewrap{Rewrapped: 2, Remaining: batches[in.KMSKeyID] < 2}, nil
		})
	attempts := 0
	env.OnActivity(a.ScheduleEpochDeletion, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ScheduleEpochDeletionInput) (*activities.EpochScheduled, error) {
			order = append(order, "schedule "+in.KMSKeyID)
			if in.KMSKeyID == tax.KMSKeyID {
				attempts++
				return nil, errors.New("KMS unavailable")
			}
			return &activities.EpochScheduled{Alias: pii.Alias, DeletionDate: t0.Add(7 * 24 * time.Hour), CertificateSeq: 9}, nil
		})
	env.OnActivity(a.ConfirmEpochDeletion, mock.Anything, activities.ConfirmEpochDeletionInput{KMSKeyID: old.KMSKeyID}).
		Return(&keyepochs.Confirmation{Deleted: true, KMSState: "NotFound", EvidenceSeq: 10}, nil)

	env.ExecuteWorkflow(KeyEpochsName, KeyEpochsInput{BatchSize: 2})
	require.NoError(t, env.GetWorkflowError())
	var res KeyEpochsResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, []string{"schedule arn:tax-2019", "schedule arn:tax-2019", "schedule arn:tax-2019", "schedule arn:tax-2019",
		"schedule arn:tax-2019", "rewrap arn:pii-1", "rewrap arn:pii-1", "schedule arn:pii-1", "rewrap ", "rewrap "}, order,
		"survivors are re-wrapped before the key is scheduled; tax keys are not re-wrapped")
	require.Equal(t, 5, attempts, "a failing deletion is retried, then reported")
	require.Equal(t, []string{tax.Alias}, res.Failed)
	require.Len(t, res.Scheduled, 1)
	require.Equal(t, int64(9), res.Scheduled[0].CertificateSeq)
	require.Equal(t, []string{old.Alias}, res.Confirmed)
	require.Equal(t, 8, res.Rewrapped)
	require.Len(t, res.Keys, 3)
}

// A run that has used its batches continues as new, carrying its total; the
// next run finds the epoch still due (its state lives in the database).
func TestKeyEpochsContinuesAsNewAfterMaxBatches(t *testing.T) {
	env, a := keyEpochsEnv(t)
	env.OnActivity(a.DueKeyEpochs, mock.Anything).Return(&activities.DueEpochs{
		Retire: []activities.EpochRef{{KMSKeyID: "arn:pii-1", Alias: "alias/dpp/pii/2026-10-09", Purpose: keyepochs.PurposePII}}}, nil)
	env.OnActivity(a.RewrapEpoch, mock.Anything, mock.Anything).Return(&keyepochs.Rewrap{Rewrapped: 5, Remaining: true}, nil)
	env.ExecuteWorkflow(KeyEpochsName, KeyEpochsInput{MaxBatches: 3, Rewrapped: 1})
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "got %v", env.GetWorkflowError())
	var next KeyEpochsInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NoError(t, next.Validate())
	require.Equal(t, KeyEpochsInput{BatchSize: 100, MaxBatches: 3, Rewrapped: 16}, next)
}

func TestKeyEpochsFailsAtOnceOnABadInput(t *testing.T) {
	env, _ := keyEpochsEnv(t)
	env.ExecuteWorkflow(KeyEpochsName, json.RawMessage(`{"batchSize":0}`))
	require.Error(t, env.GetWorkflowError())
	require.Contains(t, env.GetWorkflowError().Error(), `KeyEpochs input: field "batchSize" must be from 1 to 1000`)
}
