package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is one thing chaos did, at a time relative to the first orders.
type Fault struct {
	AtSeconds float64 `json:"atSeconds"`
	What      string  `json:"what"`
}

// ChaosReport lists the faults and what the worker went through.
type ChaosReport struct {
	WindowSeconds    float64        `json:"faultWindowSeconds"`
	Waves            int            `json:"orderWaves"`
	WorkerKills      int            `json:"workerSIGKILLs"`
	WorkerStarts     int            `json:"workerStarts"`
	UnplannedExits   int            `json:"workerExitsNotCausedByChaos"`
	PostgresRestarts int            `json:"postgresRestarts"`
	KMSOutageSeconds float64        `json:"kmsOutageSeconds"`
	SPAPIFailures    map[string]int `json:"spapiInjectedFailures"`
	Faults           []Fault        `json:"faults"`
}

// chaosRun drives orders in waves while it injects faults: worker SIGKILLs (then
// restarts), one PostgreSQL restart, a 30 s local-kms outage and SP-API 429/500
// bursts. Faults happen inside a window; afterwards the system must recover and
// finish every order on its own.
type chaosRun struct {
	e      *env
	rng    *rand.Rand
	t0     time.Time
	window time.Duration

	mu       sync.Mutex
	faults   []Fault
	ids      []string
	rep      ChaosReport
	wg       sync.WaitGroup
	pending  atomic.Int32 // fault and wave goroutines still running
	stopOnce sync.Once
	stopCh   chan struct{}
}

func newChaos(e *env) *chaosRun {
	return &chaosRun{e: e, rng: rand.New(rand.NewPCG(uint64(e.o.seed), 0xc4a05)), window: 150 * time.Second,
		stopCh: make(chan struct{}), rep: ChaosReport{SPAPIFailures: map[string]int{}}}
}

func (c *chaosRun) log(format string, args ...any) {
	at := time.Since(c.t0).Seconds()
	what := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.faults = append(c.faults, Fault{AtSeconds: at, What: what})
	c.mu.Unlock()
	c.e.prog.say("chaos %6.1fs: %s", at, what)
}

// randIn returns a random duration in [lo, hi).
func (c *chaosRun) randIn(lo, hi time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

// at runs f after d unless the run ends first.
func (c *chaosRun) at(ctx context.Context, d time.Duration, f func()) {
	c.pending.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.pending.Add(-1)
		select {
		case <-ctx.Done():
			return
		case <-c.stopCh:
			return
		case <-time.After(time.Until(c.t0.Add(d))):
		}
		f()
	}()
}

func (c *chaosRun) start(ctx, syncCtx context.Context, syncDone chan struct{}) {
	e := c.e
	n := e.o.orders
	c.t0 = time.Now()
	c.rep.WindowSeconds = c.window.Seconds()
	e.prog.say("chaos: %d orders in waves over %s while faults are injected; delivered after %s, retention %s, OrderSync every %s",
		n, c.window/2, e.o.deliverAfter, e.o.retention, e.o.syncEvery)

	// Orders arrive in waves over the first half of the window.
	waves := 5
	c.rep.Waves = waves
	for w := 0; w < waves; w++ {
		size := n / waves
		if w == waves-1 {
			size = n - size*(waves-1)
		}
		c.at(ctx, time.Duration(w)*c.window/2/time.Duration(waves), func() {
			ids := e.sb.Generate(size)
			c.mu.Lock()
			c.ids = append(c.ids, ids...)
			c.mu.Unlock()
			c.log("wave of %d orders generated", size)
		})
	}
	go func() { defer close(syncDone); e.syncLoop(syncCtx) }()

	// At least five SIGKILLs of the worker, at random moments at least 12 s apart.
	kills := spread(c, 6, 5*time.Second, c.window, 12*time.Second)
	for _, d := range kills {
		c.at(ctx, d, func() { c.killWorker(ctx) })
	}
	// The supervisor restarts a worker that died by itself (e.g. it cannot start
	// while KMS or PostgreSQL is down), as systemd or Kubernetes would.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.supervise(ctx)
	}()
	// One PostgreSQL restart.
	if e.o.pgRestart {
		c.at(ctx, c.randIn(20*time.Second, c.window-20*time.Second), func() { c.restartPostgres(ctx) })
	}
	// local-kms stopped for 30 s.
	c.at(ctx, c.randIn(10*time.Second, c.window-40*time.Second), func() { c.kmsOutage(ctx, 30*time.Second) })
	// SP-API error bursts: 429 and 500 alternately.
	for i, d := range spread(c, 6, 3*time.Second, c.window, 5*time.Second) {
		status := http.StatusTooManyRequests
		if i%2 == 1 {
			status = http.StatusInternalServerError
		}
		// Fewer than the SP-API client's 5 attempts, so a burst costs retries, not
		// a failed activity each time.
		burst := 2 + int(c.randIn(0, 3))
		c.at(ctx, d, func() {
			e.sb.FailNext(burst, status)
			c.mu.Lock()
			c.rep.SPAPIFailures[fmt.Sprint(status)] += burst
			c.mu.Unlock()
			c.log("SP-API sandbox: the next %d requests answer %d", burst, status)
		})
	}
}

// spread picks k times in [lo, hi) at least gap apart.
func spread(c *chaosRun, k int, lo, hi, gap time.Duration) []time.Duration {
	for attempt := 0; attempt < 1000; attempt++ {
		ts := make([]time.Duration, k)
		for i := range ts {
			ts[i] = c.randIn(lo, hi)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		ok := true
		for i := 1; i < k; i++ {
			if ts[i]-ts[i-1] < gap {
				ok = false
			}
		}
		if ok {
			return ts
		}
	}
	ts := make([]time.Duration, k)
	for i := range ts {
		ts[i] = lo + time.Duration(i)*(hi-lo)/time.Duration(k)
	}
	return ts
}

func (c *chaosRun) killWorker(ctx context.Context) {
	w := c.e.workers
	w.op.Lock()
	defer w.op.Unlock()
	w.sample()
	w.mu.Lock()
	p := w.cur
	w.cur = nil // the supervisor leaves it alone while we restart it
	w.mu.Unlock()
	if p != nil && p.Alive() {
		p.Kill()
		c.mu.Lock()
		c.rep.WorkerKills++
		c.mu.Unlock()
		c.log("worker (pid %d) killed with SIGKILL", p.Pid())
	}
	_ = sleepCtx(ctx, c.randIn(500*time.Millisecond, 3*time.Second))
	c.startWorker(ctx)
}

// startWorker starts a worker, retrying every 2 s while it cannot come up.
func (c *chaosRun) startWorker(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.e.workers.start(ctx)
		c.mu.Lock()
		c.rep.WorkerStarts++
		c.mu.Unlock()
		if err == nil {
			c.log("worker restarted (pid %d)", c.e.workers.current().Pid())
			return
		}
		c.log("worker could not start: %s; retrying", lastLine(err.Error(), 200))
		_ = sleepCtx(ctx, 2*time.Second)
	}
}

func (c *chaosRun) supervise(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stopCh:
			return
		case <-time.After(time.Second):
		}
		w := c.e.workers
		w.op.Lock()
		w.mu.Lock()
		p := w.cur
		w.mu.Unlock()
		if p == nil || p.Alive() {
			w.op.Unlock()
			continue
		}
		if p.Killed() {
			w.op.Unlock()
			continue
		}
		w.mu.Lock()
		w.cur = nil
		w.exits++
		w.mu.Unlock()
		c.mu.Lock()
		c.rep.UnplannedExits++
		c.mu.Unlock()
		c.log("worker (pid %d) exited by itself (%s); restarting", p.Pid(), lastLine(p.Tail(600), 160))
		_ = sleepCtx(ctx, 2*time.Second)
		c.startWorker(ctx)
		w.op.Unlock()
	}
}

func (c *chaosRun) restartPostgres(ctx context.Context) {
	c.log("PostgreSQL: pg_ctlcluster 15 main restart")
	t := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, "pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart").CombinedOutput()
	if err != nil {
		c.log("PostgreSQL restart failed: %v %s", err, strings.TrimSpace(string(out)))
		return
	}
	c.mu.Lock()
	c.rep.PostgresRestarts++
	c.mu.Unlock()
	c.log("PostgreSQL back after %.1fs", time.Since(t).Seconds())
}

func (c *chaosRun) kmsOutage(ctx context.Context, d time.Duration) {
	k := c.e.kms
	c.log("local-kms stopped for %s", d)
	t := time.Now()
	k.Kill()
	_ = sleepCtx(ctx, d)
	for ctx.Err() == nil {
		if err := k.Start(ctx); err != nil {
			c.log("local-kms restart failed: %v; retrying", err)
			_ = sleepCtx(ctx, time.Second)
			continue
		}
		break
	}
	c.mu.Lock()
	c.rep.KMSOutageSeconds = time.Since(t).Seconds()
	c.mu.Unlock()
	c.log("local-kms back (same data directory and port) after %.1fs", time.Since(t).Seconds())
}

// lastLine returns the last non-empty line of s, cut to n bytes.
func lastLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// finished: every wave is out and every fault is over (KMS back, worker up).
func (c *chaosRun) finished() bool {
	if c.pending.Load() > 0 {
		return false
	}
	p := c.e.workers.current()
	return p != nil && p.Alive()
}

func (c *chaosRun) orderIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

func (c *chaosRun) stop() {
	c.stopOnce.Do(func() { close(c.stopCh) })
	c.wg.Wait()
}

// planExecuted checks that the faults the issue asks for really happened.
func (c *chaosRun) planExecuted() Invariant {
	r := c.report()
	var missing []string
	if r.WorkerKills < 5 {
		missing = append(missing, fmt.Sprintf("only %d worker SIGKILLs", r.WorkerKills))
	}
	if c.e.o.pgRestart && r.PostgresRestarts != 1 {
		missing = append(missing, fmt.Sprintf("%d PostgreSQL restarts", r.PostgresRestarts))
	}
	if r.KMSOutageSeconds < 30 {
		missing = append(missing, "no 30 s KMS outage")
	}
	if r.SPAPIFailures["429"] == 0 || r.SPAPIFailures["500"] == 0 {
		missing = append(missing, "no 429 or no 500 burst")
	}
	detail := fmt.Sprintf("%d SIGKILLs, %d PostgreSQL restarts, KMS down %.0fs, SP-API 429 x%d and 500 x%d",
		r.WorkerKills, r.PostgresRestarts, r.KMSOutageSeconds, r.SPAPIFailures["429"], r.SPAPIFailures["500"])
	if len(missing) > 0 {
		detail = strings.Join(missing, "; ") + " (" + detail + ")"
	}
	return Invariant{Name: "fault plan executed (>=5 SIGKILLs, PostgreSQL restart, 30 s KMS outage, 429/500 bursts)",
		Checked: 1, Violations: min(len(missing), 1), Detail: detail}
}

func (c *chaosRun) report() *ChaosReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rep
	r.Faults = append([]Fault(nil), c.faults...)
	return &r
}
