package testenv

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/internal/devstack"
)

func TestTemporalDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a Temporal dev server")
	}
	srv := TemporalForTest(t)
	t.Cleanup(StopTemporal)
	require.Same(t, srv, TemporalForTest(t), "one server per test binary")
	require.Equal(t, "default", srv.Namespace)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.Address, Namespace: srv.Namespace, Logger: devstack.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()

	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	require.NoError(t, err)
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: srv.Namespace})
	require.NoError(t, err)
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: srv.Namespace})
	require.NoError(t, err)
	for _, name := range []string{"AmazonOrderId", "OrderStage", "PurgeDueAt", "ComplianceDeadline", "OrderProblem"} {
		require.Contains(t, sa.GetCustomAttributes(), name)
	}

	// A workflow that waits for an Update proves workers, Updates and the search attributes work.
	tq := TaskQueue(t)
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) (string, error) {
		var approvedBy string
		if err := workflow.SetUpdateHandler(ctx, "approve", func(ctx workflow.Context, by string) (string, error) {
			approvedBy = by
			return "ok", nil
		}); err != nil {
			return "", err
		}
		if err := workflow.Await(ctx, func() bool { return approvedBy != "" }); err != nil {
			return "", err
		}
		return "approved by " + approvedBy, nil
	}, workflow.RegisterOptions{Name: "TestenvUpdate"})
	require.NoError(t, w.Start())
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "testenv-" + tq,
		TaskQueue:             tq,
		TypedSearchAttributes: temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("AmazonOrderId").ValueSet("000-0000000-0000000")),
	}, "TestenvUpdate")
	require.NoError(t, err)
	handle, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   run.GetID(),
		RunID:        run.GetRunID(),
		UpdateName:   "approve",
		Args:         []any{"dpo"},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	var updateResult string
	require.NoError(t, handle.Get(ctx, &updateResult))
	require.Equal(t, "ok", updateResult)
	var result string
	require.NoError(t, run.Get(ctx, &result))
	require.Equal(t, "approved by dpo", result)

	// Stop really stops it: the port closes.
	StopTemporal()
	_, err = net.DialTimeout("tcp", srv.Address, time.Second)
	require.Error(t, err, "the dev server still listens after StopTemporal")
}

func TestStartTemporalMissingBinary(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n"), 0o644))
	sub := filepath.Join(dir, "a", "b")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	t.Chdir(sub)
	t.Setenv(EnvTemporalAddress, "")

	_, err := StartTemporal(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), "make tools")
	require.Contains(t, err.Error(), filepath.Join(dir, "bin", "temporal"))
}

func TestTaskQueue(t *testing.T) {
	t.Run("with spaces/and slashes", func(t *testing.T) {
		a, b := TaskQueue(t), TaskQueue(t)
		require.NotEqual(t, a, b)
		require.Regexp(t, regexp.MustCompile(`^t-TestTaskQueue-with_spaces-and_slashes-[0-9a-f]{8}$`), a)
	})
	t.Run(strings.Repeat("x", 300), func(t *testing.T) {
		require.Less(t, len(TaskQueue(t)), 100)
	})
}

func TestStartTemporalReportsEarlyExit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("early-exit detection reads /proc")
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "bin"), 0o755))
	fake := "#!/bin/sh\necho 'unknown flag: --bogus' >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin", "temporal"), []byte(fake), 0o755))
	t.Chdir(dir)
	t.Setenv(EnvTemporalAddress, "")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := StartTemporal(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "exited during start-up")
	require.Contains(t, err.Error(), "unknown flag: --bogus")
	// Noticed by watching the process, not by waiting out the start-up deadline.
	require.NoError(t, ctx.Err(), "a dead server should be noticed before the deadline")
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}
