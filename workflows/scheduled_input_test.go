package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// scheduledEnv is a test environment with the three scheduled workflows and
// their activities mocked; calls counts the activities that ran.
func scheduledEnv(t *testing.T) (env *testsuite.TestWorkflowEnvironment, calls *int) {
	var s testsuite.WorkflowTestSuite
	env = s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "scheduled-test"})
	env.RegisterWorkflowWithOptions(testOptions.OrderSync, registerOpts(OrderSyncName))
	env.RegisterWorkflowWithOptions(TaxRecordSweep, registerOpts(TaxRecordSweepName))
	env.RegisterWorkflowWithOptions(RetentionAudit, registerOpts(RetentionAuditName))
	a := registerActivities(env)
	calls = new(int)
	env.OnActivity(a.SyncOrders, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SyncOrdersInput) (*activities.SyncResult, error) {
			*calls++
			return &activities.SyncResult{}, nil
		}).Maybe()
	env.OnActivity(a.SweepTaxRecords, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SweepInput) (*activities.SweepResult, error) {
			*calls++
			return &activities.SweepResult{}, nil
		}).Maybe()
	env.OnActivity(a.AuditRetention, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.AuditInput) (*activities.AuditResult, error) {
			*calls++
			return &activities.AuditResult{}, nil
		}).Maybe()
	env.OnActivity(a.RecordAudit, mock.Anything, mock.Anything).Return(int64(1), nil).Maybe()
	return env, calls
}

// A scheduled workflow started with a bad input (by hand, or by a schedule
// edited in the Web UI) fails at once, non-retryably, naming the field and
// never its value, and runs no activity.
func TestScheduledWorkflowsFailAtOnceOnABadInput(t *testing.T) {
	for _, tc := range []struct {
		workflow, in, want string
	}{
		{OrderSyncName, `{"batchSize":10}`, `OrderSync input: unknown field; the fields are: "name"`},
		{OrderSyncName, `{"name":5}`, `field "name" must be a string, not a JSON number`},
		{OrderSyncName, `{"Name":"secret"}`, `unknown field`},
		{OrderSyncName, `[]`, `payload must be a JSON object`},
		{TaxRecordSweepName, `{"batchSize":0}`, `TaxRecordSweep input: field "batchSize" must be from 1 to 1000`},
		{TaxRecordSweepName, `{"batchSize":-5}`, `field "batchSize" must be from 1 to 1000`},
		{TaxRecordSweepName, `{"batchSize":2.5}`, `field "batchSize" must be a whole number`},
		{TaxRecordSweepName, `{"batchSize":"100"}`, `field "batchSize" must be a number, not a JSON string`},
		{TaxRecordSweepName, `{"batchSize":null}`, `field "batchSize" must not be null`},
		{TaxRecordSweepName, `{"batchSize":100,"secret":1}`, `unknown field; the fields are: "batchSize"`},
		{RetentionAuditName, `{"maxBatches":0}`, `RetentionAudit input: field "maxBatches" must be from 1 to 1000`},
		{RetentionAuditName, `{"asOf":"secret"}`, `field "asOf" is not an RFC 3339 time`},
		{RetentionAuditName, `{"afterId":"secret"}`, `field "afterId" is not an Amazon order id`},
		{RetentionAuditName, `{"runningIds":["secret"]}`, `field "runningIds" holds something that is not an Amazon order id`},
		{RetentionAuditName, `{"found":-1}`, `field "found" must be from 0 to`},
		{RetentionAuditName, `{"batchSize":100,"secret":1}`, `unknown field; the fields are: "batchSize", "maxBatches"`},
	} {
		t.Run(tc.workflow+" "+tc.in, func(t *testing.T) {
			env, calls := scheduledEnv(t)
			env.ExecuteWorkflow(tc.workflow, json.RawMessage(tc.in))
			err := env.GetWorkflowError()
			var app *temporal.ApplicationError
			require.True(t, errors.As(err, &app), "want an application error, got %v", err)
			require.True(t, app.NonRetryable())
			require.Equal(t, ErrInvalidInput, app.Type())
			require.Contains(t, app.Message(), tc.want)
			require.NotContains(t, app.Message(), "secret", "the error must not echo values")
			require.Zero(t, *calls, "no activity may run on a bad input")
		})
	}
}

// What the schedules send ({} or the zero structs) runs as before.
func TestScheduledWorkflowsRunOnTheSchedulesInputs(t *testing.T) {
	for name, in := range map[string]any{
		OrderSyncName: activities.SyncOrdersInput{}, TaxRecordSweepName: TaxRecordSweepInput{},
		RetentionAuditName: RetentionAuditInput{},
	} {
		t.Run(name, func(t *testing.T) {
			env, calls := scheduledEnv(t)
			env.ExecuteWorkflow(name, in)
			require.NoError(t, env.GetWorkflowError())
			require.Equal(t, 1, *calls)
		})
	}
}

// The input a run continues as new with decodes strictly in the next run.
func TestContinueAsNewInputsDecodeStrictly(t *testing.T) {
	for _, tc := range []struct {
		workflow string
		in       any
		decode   func(*testing.T, *commonpb.Payloads) error
	}{
		{TaxRecordSweepName, TaxRecordSweepInput{}, func(t *testing.T, p *commonpb.Payloads) error {
			var in TaxRecordSweepInput
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(p, &in))
			require.Equal(t, 100, in.BatchSize)
			return in.Validate()
		}},
		{RetentionAuditName, RetentionAuditInput{MaxBatches: 1}, func(t *testing.T, p *commonpb.Payloads) error {
			var in RetentionAuditInput
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(p, &in))
			require.Equal(t, "205-0000000-0000009", in.AfterID)
			require.Equal(t, []string{"205-0000000-0000001"}, in.RunningIDs)
			require.True(t, in.AsOf.Equal(t0))
			return in.Validate()
		}},
	} {
		t.Run(tc.workflow, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler))) // 200 batches of debug lines
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(t0)
			env.RegisterWorkflowWithOptions(TaxRecordSweep, registerOpts(TaxRecordSweepName))
			env.RegisterWorkflowWithOptions(RetentionAudit, registerOpts(RetentionAuditName))
			a := registerActivities(env)
			env.OnActivity(a.SweepTaxRecords, mock.Anything, mock.Anything).Return(&activities.SweepResult{Purged: 1, Remaining: true}, nil).Maybe()
			env.OnActivity(a.AuditRetention, mock.Anything, mock.Anything).Return(&activities.AuditResult{Found: 1, Running: 1,
				RunningIDs: []string{"205-0000000-0000001"}, Remaining: true, AfterDueAt: t0, AfterID: "205-0000000-0000009"}, nil).Maybe()
			env.ExecuteWorkflow(tc.workflow, tc.in)
			var can *workflow.ContinueAsNewError
			require.True(t, errors.As(env.GetWorkflowError(), &can), "want continue-as-new, got %v", env.GetWorkflowError())
			require.NoError(t, tc.decode(t, can.Input))
			require.False(t, strings.Contains(string(can.Input.Payloads[0].Data), "null"), "no null field: %s", can.Input.Payloads[0].Data)
		})
	}
}
