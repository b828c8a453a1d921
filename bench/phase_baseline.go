package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/bench/tuning"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/workflows"
)

func (e *env) runBaseline(ctx context.Context) error {
	n := e.o.orders
	tq := "bench-baseline-" + randHex(3)
	acts := &baselineActivities{}
	wo := worker.Options{WorkerStopTimeout: 10 * time.Second} // the production worker's options
	if t, err := tuning.Parse(e.o.tune); err != nil {
		return err
	} else {
		t.Apply(&wo)
	}
	w := worker.New(e.tc, tq, wo)
	acts.register(w)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	e.prog.say("baseline: %d no-op orders of the same shape on task queue %s", n, tq)
	cpu0 := e.cpuSnapshot()
	bsmp := &sampler{snap: e.cpuSnapshot}
	bctx, stopBSampler := context.WithCancel(ctx)
	defer stopBSampler()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			c := bsmp.snap()
			bsmp.mu.Lock()
			bsmp.snaps = append(bsmp.snaps, c)
			bsmp.mu.Unlock()
			select {
			case <-bctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	retention := 20*time.Second + time.Duration(n)*20*time.Millisecond
	ids := make([]string, n)
	t0 := time.Now()
	var startErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one goroutine, like OrderSync's starts
		defer wg.Done()
		for i := range ids {
			// The same start options as OrderSync's starts (ID, reuse policy, search attribute).
			orderID := fmt.Sprintf("baseline-%06d", i)
			opts := app.StartOrderOptions(orderID, tq)
			ids[i] = opts.ID
			_, err := e.tc.ExecuteWorkflow(ctx, opts, baselineWorkflowName,
				baselineInput{AmazonOrderID: orderID, Retention: retention, LatestWait: time.Hour})
			if err != nil {
				startErr = err
				return
			}
		}
	}()
	stopProg := e.tickProgress(ctx, "baseline", func() (int, string) {
		s, i, p := acts.sealed.Load(), acts.invoiced.Load(), acts.purged.Load()
		return int(p), fmt.Sprintf("sealed %d invoiced %d purged %d", s, i, p)
	})
	defer stopProg()
	// Deliveries: once every order waits for one, signal them all (one goroutine,
	// as OrderSync does).
	for acts.invoiced.Load() < int64(n) {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if time.Since(t0) > e.o.deadline {
			return errors.New("baseline did not finish in time")
		}
	}
	wg.Wait()
	if startErr != nil {
		return startErr
	}
	_ = sleepCtx(ctx, 500*time.Millisecond)
	for _, id := range ids {
		if err := e.tc.SignalWorkflow(ctx, id, "", workflows.SignalDelivered, workflows.DeliveredSignal{DeliveredAt: time.Now().UTC()}); err != nil {
			return err
		}
	}
	for acts.purged.Load() < int64(n) {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		if time.Since(t0) > e.o.deadline {
			return errors.New("baseline did not finish in time")
		}
	}
	if err := e.waitClosed(ctx, baselineWorkflowName); err != nil {
		return err
	}
	cpu1 := e.cpuSnapshot()
	stopBSampler()
	stopProg()
	e.prog.say("baseline: done in %.1fs; reading %d histories", time.Since(t0).Seconds(), n)
	hs, errs := analyseAll(ctx, e.tc, ids, nil, nil)
	if len(errs) > 0 {
		return errs[0]
	}
	st := summarise(hs)
	b := &BaselineResult{Stage: st, TaskQueue: tq, CPU: cpuDelta(cpu0, cpu1), BusyCPU: bsmp.busyCPU(busySpans(hs))}
	var lastInv time.Time
	first := time.Time{}
	for _, h := range hs {
		if h.invoiced.After(lastInv) {
			lastInv = h.invoiced
		}
		if first.IsZero() || h.started.Before(first) {
			first = h.started
		}
	}
	b.intake = lastInv.Sub(first)
	b.IntakeSeconds = b.intake.Seconds()
	e.res.Baseline = b
	return nil
}
