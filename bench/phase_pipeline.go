package main

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/plusranger/dpp/workflows"
)

func (e *env) runPipeline(ctx context.Context) (int, error) {
	n := e.o.orders
	smp := &sampler{pool: e.pool, dsn: e.dsn, workers: e.workers, markers: markerForms(marker), snap: e.cpuSnapshot, total: n}
	if e.o.workerKind == "bench" {
		// At the peak (every order sealed, invoiced and live) the bench worker
		// writes heap and goroutine profiles.
		smp.onPeak = func() {
			if p := e.workers.current(); p != nil && p.Alive() {
				_ = p.Signal(syscall.SIGUSR1)
			}
		}
	}
	_ = e.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&smp.emptyDB)
	runCtx, stopRun := context.WithTimeout(ctx, e.o.deadline)
	defer stopRun()
	sctx, stopSampler := context.WithCancel(runCtx)
	go smp.run(sctx)

	kms0 := e.proxy.snapshot()
	cpu0 := e.cpuSnapshot()
	t0 := time.Now()
	perfDone := make(chan string, 1)
	if e.o.perfTemporal > 0 {
		go func() { perfDone <- e.perfRecord(runCtx, e.temporal.Pid(), e.o.perfTemporal) }()
	} else {
		perfDone <- ""
	}
	var ids []string
	var chaosLog *chaosRun
	syncCtx, stopSync := context.WithCancel(runCtx)
	syncDone := make(chan struct{})
	if e.o.chaos {
		chaosLog = newChaos(e)
		chaosLog.start(runCtx, syncCtx, syncDone)
	} else {
		ids = e.sb.Generate(n)
		e.prog.say("pipeline: %d orders generated (delivered after %s, retention %s); OrderSync every %s", n, e.o.deliverAfter, e.o.retention, e.o.syncEvery)
		go func() { defer close(syncDone); e.syncLoop(syncCtx) }()
	}
	stopProg := e.tickProgress(runCtx, "pipeline", func() (int, string) {
		s, i, p, rss := smp.counts()
		return p, fmt.Sprintf("sealed %d invoiced %d purged %d  RSS %d MiB", s, i, p, rss>>10)
	})
	// Wait until every order is purged in the database and no order workflow runs.
	var waitErr error
	for {
		_, _, p, _ := smp.counts()
		if p >= n && (chaosLog == nil || chaosLog.finished()) {
			if err := e.waitClosed(runCtx, workflows.OrderLifecycleName); err != nil {
				waitErr = err
			}
			break
		}
		if err := sleepCtx(runCtx, 250*time.Millisecond); err != nil {
			waitErr = err
			break
		}
	}
	took := time.Since(t0)
	stopProg()
	stopSync()
	<-syncDone
	if chaosLog != nil {
		chaosLog.stop()
		ids = chaosLog.orderIDs()
	}
	cpu1 := e.cpuSnapshot()
	kms1 := e.proxy.snapshot()
	smp.tick(ctx)
	stopSampler()
	if ctx.Err() != nil {
		return 130, ctx.Err()
	}
	if waitErr != nil {
		_, _, p, _ := smp.counts()
		e.prog.say("pipeline: stopped after %.0fs with %d of %d orders purged (%v)", took.Seconds(), p, n, waitErr)
	} else {
		e.prog.say("pipeline: all %d orders purged in %.1fs; reading histories", n, took.Seconds())
	}

	pctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	wids := make([]string, len(ids))
	for i, id := range ids {
		wids[i] = workflows.OrderWorkflowID(id)
	}
	hs, herrs := analyseAll(pctx, e.tc, wids, markerForms(marker), func(done int) {
		if done%100 == 0 {
			e.prog.draw("histories", done, len(wids), "")
		}
	})
	e.prog.done()
	st := summarise(hs)
	p := &PipelineResult{Stage: st, WorkerKind: e.o.workerKind, CPU: cpuDelta(cpu0, cpu1), Makespan: took.Seconds(),
		BusyCPU: smp.busyCPU(busySpans(hs)), InvoiceKinds: map[string]int{}}
	if rows, err := e.pool.Query(pctx, `SELECT kind, count(*) FROM invoices GROUP BY kind`); err == nil {
		for rows.Next() {
			var k string
			var c int
			if rows.Scan(&k, &c) == nil {
				p.InvoiceKinds[k] = c
			}
		}
		rows.Close()
	}
	p.KMS = kmsDelta(kms0, kms1)
	var kmsTotal int64
	for _, v := range p.KMS {
		kmsTotal += v
	}
	if st.Completed > 0 {
		p.KMSCallsPerOrder = float64(kmsTotal) / float64(max(n, 1))
	}
	p.KMSProxyErrors = e.proxy.errors.Load()
	p.DB = smp.peakDB()
	e.workers.sample()
	p.PeakWorkerRSSMiB = float64(e.workers.peakHWM) / 1024
	smp.mu.Lock()
	p.RSSAtPeakMiB = float64(smp.rssAtPeak) / 1024
	smp.mu.Unlock()
	p.DeliveryPaths = deliveryPaths(hs)
	e.syncMu.Lock()
	p.Sync = summariseSync(e.syncRuns)
	e.syncMu.Unlock()
	e.res.Pipeline = p
	if b := e.res.Baseline; b != nil && b.OrdersPerSecond > 0 {
		p.RatioToBaseline = st.OrdersPerSecond / b.OrdersPerSecond
	}
	if chaosLog != nil {
		e.res.Chaos = chaosLog.report()
	}

	// Invariants (both modes), then stop the worker so its profile is written.
	e.prog.say("checking invariants")
	inv := e.checkInvariants(pctx, ids, hs, herrs, smp)
	if chaosLog != nil {
		inv = append([]Invariant{chaosLog.planExecuted()}, inv...)
	}
	e.res.Invariants = inv
	e.workers.stop()
	if e.o.workerKind == "bench" {
		e.res.Profile = e.profileSummary(pctx)
	}
	if top := <-perfDone; top != "" {
		if e.res.Profile == nil {
			e.res.Profile = &ProfileResult{}
		}
		e.res.Profile.TemporalTop = top
	}
	if e.o.crypto {
		e.res.Crypto = e.cryptoBench(pctx)
	}
	e.res.evaluateTargets()
	code := 0
	for _, v := range inv {
		if v.Violations > 0 {
			code = 1
		}
	}
	if waitErr != nil {
		code = 1
	}
	return code, nil
}

func kmsDelta(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range b {
		if d := v - a[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// deliveryPaths counts how orders learnt of their delivery, from their histories:
// a delivered signal ending the wait (production's path), or already delivered
// when fetched.
func deliveryPaths(hs []*orderHistory) map[string]int {
	out := map[string]int{}
	for _, h := range hs {
		if h == nil {
			continue
		}
		switch {
		case h.signals == 0:
			out["delivered when fetched (no signal)"]++
		case h.signals == 1 && h.timers == 2:
			out["awaited delivery, one delivered signal"]++
		default:
			out[fmt.Sprintf("%d signals, %d timers started, %d cancelled", h.signals, h.timers, h.canceled)]++
		}
	}
	return out
}
