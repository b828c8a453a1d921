package main

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/workflows"
)

type syncRun struct {
	id, runID string
	took      time.Duration
	res       *activities.SyncResult
	err       error
	cancelled bool
}

// syncLoop runs OrderSync passes one after another, as the order-sync schedule
// would with a short interval, until ctx ends.
func (e *env) syncLoop(ctx context.Context) {
	for ctx.Err() == nil {
		e.syncOnce(ctx)
		_ = sleepCtx(ctx, e.o.syncEvery)
	}
}

func (e *env) syncOnce(ctx context.Context) {
	t := time.Now()
	// Like the order-sync schedule (app.Setup): one pass at a time, and a pass
	// stuck for ten intervals is given up so the next one can start.
	run, err := e.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "bench-order-sync", TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: max(10*e.o.syncEvery, 3*time.Minute),
	}, workflows.OrderSyncName, activities.SyncOrdersInput{})
	r := syncRun{id: "bench-order-sync"}
	if err == nil {
		r.runID = run.GetRunID()
		var res activities.SyncResult
		if err = run.Get(ctx, &res); err == nil {
			r.res = &res
		}
	}
	r.err, r.took = err, time.Since(t)
	if ctx.Err() != nil {
		// Cut short by the end of the run: not a failure; its history is still
		// checked for PII.
		r.err, r.cancelled = nil, true
		if r.runID == "" {
			return
		}
	}
	e.syncMu.Lock()
	e.syncRuns = append(e.syncRuns, r)
	e.syncMu.Unlock()
}
