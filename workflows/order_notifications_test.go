package workflows

import (
	"context"

	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// The consumer runs in bounded rounds and continues as new before its history
// grows long; a round that fails (after its retries) fails the run loudly.
func TestOrderNotificationsContinuesAsNewAfterItsRounds(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(OrderNotifications, workflow.RegisterOptions{Name: OrderNotificationsName})
	a := &activities.Notifications{}
	a.Register(env)
	rounds := 0
	env.OnActivity(a.ConsumeOrderChanges, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ConsumeInput) (*activities.ConsumeResult, error) {
			if in.RunFor != notificationRound {
				t.Errorf("RunFor %v", in.RunFor)
			}
			rounds++
			return &activities.ConsumeResult{}, nil
		})
	env.ExecuteWorkflow(OrderNotificationsName)
	if !env.IsWorkflowCompleted() || !workflow.IsContinueAsNewError(env.GetWorkflowError()) {
		t.Fatalf("want continue-as-new, got %v", env.GetWorkflowError())
	}
	if rounds != maxNotificationRounds {
		t.Fatalf("%d rounds, want %d", rounds, maxNotificationRounds)
	}
}
