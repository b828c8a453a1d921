package app

import (
	"fmt"
	"sync"

	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/workflows"
)

// SPAPIQueue is a task queue whose activities call Amazon's SP-API, and the
// limits every worker that polls it sets.
//
// Amazon's rate limits hold per seller and application, for all our workers
// together; each worker's client-side limiter (internal/spapi) knows only its
// own calls, so N workers could send N times the rate. The server, though,
// dispatches a task queue's activities at TaskQueueActivitiesPerSecond for the
// whole queue, however many workers poll it. That limits activity starts, not
// the calls inside one activity, so:
//
//   - FetchAndSeal makes one getOrder call per attempt: alone on its queue at
//     getOrder's published rate (0.5/s), the cluster never starts more getOrder
//     calls than Amazon allows, retries included.
//   - SyncOrders makes many calls in one pass (searchOrders pages, getOrder for
//     orders it found malformed), so a queue rate would bound passes, not calls.
//     Its queue has no server rate: the order-sync schedule never overlaps
//     passes (SCHEDULE_OVERLAP_POLICY_SKIP), so one pass runs in the cluster at
//     a time, at most one per worker (MaxConcurrent 1) even when started by
//     hand; its calls go through that worker's client-side limiter; and with
//     LWA credentials DPP_SYNC_INTERVAL may not be shorter than Amazon's refill
//     of one searchOrders call (3m). A server rate of 0.0056/s would not help:
//     the server divides a queue's rate among its partitions (4 by default), so
//     a scheduled pass would wait up to twelve minutes for its partition's token.
type SPAPIQueue struct {
	Name string
	// ActivitiesPerSecond is the queue's dispatch rate for all workers together
	// (0: no limit).
	ActivitiesPerSecond float64
	// MaxConcurrent bounds the queue's activities running on one worker (0: the SDK's default).
	MaxConcurrent int
}

// SPAPIQueues are the SP-API task queues this configuration uses, with their
// limits: FetchAndSeal's at getOrder's published rate, times
// DPP_SPAPI_SANDBOX_SPEEDUP (only ever above 1 in the sandbox).
func (a *App) SPAPIQueues() []SPAPIQueue {
	cfg, limits := a.Config, a.spapiLimits()
	seal, sync := cfg.SPAPITaskQueue, cfg.SPAPISyncTaskQueue
	if seal == "" {
		seal = cfg.TaskQueue + workflows.SPAPITaskQueueSuffix
	}
	if sync == "" {
		sync = cfg.TaskQueue + workflows.SPAPISyncTaskQueueSuffix
	}
	return []SPAPIQueue{
		{Name: seal, ActivitiesPerSecond: limits[spapi.OpGetOrder].Rate},
		{Name: sync, MaxConcurrent: 1},
		// SubmitTaxDocument makes one createFeed call per attempt that gets that
		// far (a retry after the feed was recorded makes none).
		{Name: cfg.TaskQueue + workflows.SPAPIFeedsTaskQueueSuffix, ActivitiesPerSecond: limits[spapi.OpCreateFeed].Rate},
	}
}

// spapiLimits are the client-side limits: Amazon's published rates, times the
// sandbox speed-up.
func (a *App) spapiLimits() map[string]spapi.Limit {
	limits := spapi.DefaultLimits()
	speedup := a.Config.SPAPISandboxSpeedup
	if speedup < 1 || !a.Config.Sandbox() {
		speedup = 1
	}
	for op, l := range limits {
		l.Rate *= speedup
		limits[op] = l
	}
	return limits
}

// workflowOptions are what the workflows need of the configuration.
func (a *App) workflowOptions() workflows.Options {
	q := a.SPAPIQueues()
	return workflows.Options{Operators: a.Config.Operators, SPAPITaskQueue: q[0].Name, SPAPISyncTaskQueue: q[1].Name,
		Access: a.accessOptions(), SPAPIFeedsTaskQueue: q[2].Name, TaxUpload: a.taxUploadOptions()}
}

// spapiWorkerOptions are the options of a worker on an SP-API queue: the
// production worker's, activities only, with the queue's limits.
func (a *App) spapiWorkerOptions(q SPAPIQueue) worker.Options {
	o := a.WorkerOptions()
	o.DisableWorkflowWorker = true
	o.TaskQueueActivitiesPerSecond = q.ActivitiesPerSecond
	o.MaxConcurrentActivityExecutionSize = q.MaxConcurrent
	return o
}

// workers is the main worker (workflows and every activity, on DPP_TASK_QUEUE)
// with the workers of the SP-API queues: it starts, runs and stops them together.
type workers struct {
	worker.Worker
	spapi []worker.Worker
}

func (w *workers) Start() error {
	if err := w.Worker.Start(); err != nil {
		return err
	}
	for i, sw := range w.spapi {
		if err := sw.Start(); err != nil {
			for _, started := range w.spapi[:i] {
				started.Stop()
			}
			w.Worker.Stop()
			return fmt.Errorf("SP-API task queue worker: %w", err)
		}
	}
	return nil
}

func (w *workers) Run(interruptCh <-chan interface{}) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-interruptCh
	w.Stop()
	return nil
}

// Stop stops every worker at once: each stops polling and waits up to the stop
// timeout for its running activities, so the whole drain takes one timeout,
// not one per queue, and no queue keeps taking tasks while another drains.
func (w *workers) Stop() {
	var wg sync.WaitGroup
	for _, sw := range append([]worker.Worker{w.Worker}, w.spapi...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sw.Stop()
		}()
	}
	wg.Wait()
}

var _ worker.Worker = (*workers)(nil)
