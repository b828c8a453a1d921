// Command bench is the benchmark and fault-injection harness (issue 4).
//
//	go run ./bench [-orders N] [-out file.json]          # make bench BENCH_ORDERS=N BENCH_OUT=file.json
//	go run ./bench -chaos [-orders N] [-deadline 15m]   # make chaos CHAOS_ORDERS=N
//
// It starts, on loopback only, the Temporal dev server (SQLite file, WAL pragmas),
// local-kms behind a counting proxy, a fresh PostgreSQL database, the SP-API
// sandbox (in process, marked PII) and the worker as a subprocess; runs a no-op
// baseline of the same workflow shape, then drives N orders from the sandbox
// through OrderSync and the whole OrderLifecycle until every one is purged. It
// prints one table, writes it as JSON and checks the invariants (chaos mode adds
// worker SIGKILLs, a PostgreSQL restart, a 30 s KMS outage and SP-API error
// bursts). Every process it starts is stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/bench/tuning"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

const marker = "BENCHPII7Q"

type options struct {
	orders       int
	out          string
	chaos        bool
	deadline     time.Duration
	workerKind   string
	baseline     bool
	deliverAfter time.Duration
	retention    time.Duration
	syncEvery    time.Duration
	adminDSN     string
	seed         int64
	logLevel     string
	crypto       bool
	pgRestart    bool
	perfTemporal time.Duration
	workerEnv    string
	tune         string
}

func main() {
	var o options
	flag.IntVar(&o.orders, "orders", 0, "orders to drive (default 2000; 200 with -chaos)")
	flag.StringVar(&o.out, "out", "", "JSON result file (default bench/results/<timestamp>[-chaos].json)")
	flag.BoolVar(&o.chaos, "chaos", false, "inject faults (worker SIGKILLs, a PostgreSQL restart, a KMS outage, SP-API 429/500 bursts) and check the invariants")
	flag.DurationVar(&o.deadline, "deadline", 0, "give up on orders not purged after this long (default 45m; 15m with -chaos)")
	flag.StringVar(&o.workerKind, "worker", "", "bench: worker built from bench/benchworker (the real wiring, SP-API client limits raised to the sandbox's, CPU profile); real: ./worker unchanged (default: bench; -chaos always uses real)")
	flag.BoolVar(&o.baseline, "baseline", true, "run the no-op baseline first")
	flag.DurationVar(&o.deliverAfter, "delivery-after", 0, "sandbox orders are delivered this long after creation (0: chosen from the baseline)")
	flag.DurationVar(&o.retention, "retention", 0, "DPP_PII_RETENTION for the worker (0: chosen from -orders)")
	flag.DurationVar(&o.syncEvery, "sync-every", 0, "pause between OrderSync passes (default 5s; 15s with -chaos, where the real worker's SP-API client keeps Amazon's searchOrders limit of 20 requests, then one per 3 minutes)")
	flag.StringVar(&o.adminDSN, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL admin DSN (may CREATE and DROP databases)")
	flag.Int64Var(&o.seed, "seed", 0, "seed of the generated orders and the chaos schedule (0: from the clock)")
	flag.StringVar(&o.logLevel, "log-level", "", "worker DPP_LOG_LEVEL (default info; debug with -chaos)")
	flag.BoolVar(&o.crypto, "crypto", true, "also run the vault Go benchmarks (envelope vs raw AES-GCM)")
	flag.BoolVar(&o.pgRestart, "pg-restart", true, "chaos: restart the PostgreSQL cluster once (affects everyone on the machine)")
	flag.StringVar(&o.workerEnv, "worker-env", "", "extra worker environment, KEY=VALUE,KEY=VALUE (tuning experiments)")
	flag.StringVar(&o.tune, "tune", "", "worker options to try on the baseline's worker and the bench worker, e.g. sticky=30s,autoscale=true,cache=500 (bench/tuning)")
	flag.DurationVar(&o.perfTemporal, "perf-temporal", 0, "record the Temporal server with perf for this long from the first order (0: off)")
	flag.Parse()
	if o.orders <= 0 {
		o.orders = 2000
		if o.chaos {
			o.orders = 200
		}
	}
	if o.deadline == 0 {
		o.deadline = 45 * time.Minute
		if o.chaos {
			o.deadline = 15 * time.Minute
		}
	}
	if o.chaos {
		o.workerKind = "real"
	} else if o.workerKind == "" {
		o.workerKind = "bench"
	}
	if o.workerKind != "bench" && o.workerKind != "real" {
		fmt.Fprintln(os.Stderr, "bench: -worker must be bench or real")
		os.Exit(2)
	}
	if o.syncEvery == 0 {
		o.syncEvery = 5 * time.Second
		if o.chaos {
			o.syncEvery = 15 * time.Second
		}
	}
	if o.logLevel == "" {
		o.logLevel = "info"
		if o.chaos {
			o.logLevel = "debug"
		}
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}

	// local-kms accepts any credentials; the AWS SDK only needs some.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"} {
		_ = os.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	var interrupted atomic.Bool
	go func() {
		<-sigs
		interrupted.Store(true)
		fmt.Fprintln(os.Stderr, "\nbench: interrupted: stopping everything it started (Ctrl-C again to force)")
		cancel()
		<-sigs
		runCleanups()
		os.Exit(130)
	}()

	code, err := run(ctx, o)
	cancel()
	runCleanups()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if code == 0 {
			code = 1
		}
	}
	if interrupted.Load() {
		code = 130
	}
	os.Exit(code)
}

// env is everything one run holds.
type env struct {
	o        options
	root     string
	tmp      string
	art      string
	temporal *temporalServer
	kms      *kmsServer
	proxy    *kmsProxy
	dsn      string
	dbName   string
	pool     *pgxpool.Pool
	sb       *sandbox.Server
	sbURL    string
	tc       client.Client
	workers  *workerSet
	prog     *progress
	res      *Result
	syncRuns []syncRun
	syncMu   sync.Mutex
}

type syncRun struct {
	id, runID string
	took      time.Duration
	res       *activities.SyncResult
	err       error
	cancelled bool
}

func run(ctx context.Context, o options) (int, error) {
	wall := time.Now()
	e := &env{o: o, prog: newProgress()}
	var err error
	if e.root, err = repoRoot(); err != nil {
		return 2, err
	}
	for _, b := range []string{"temporal", "local-kms"} {
		if _, err := os.Stat(filepath.Join(e.root, "bin", b)); err != nil {
			return 2, fmt.Errorf("bin/%s is missing: run `make tools`", b)
		}
	}
	stamp := time.Now().Format("20060102-150405")
	if o.chaos {
		stamp += "-chaos"
	}
	e.art = filepath.Join(e.root, "bench", "results", stamp)
	if err := os.MkdirAll(e.art, 0o755); err != nil {
		return 2, err
	}
	if o.out == "" {
		o.out = filepath.Join(e.root, "bench", "results", stamp+".json")
		e.o.out = o.out
	}
	if e.tmp, err = os.MkdirTemp("", "dpp-bench-"); err != nil {
		return 2, err
	}
	atExit(func() { _ = os.RemoveAll(e.tmp) })
	e.res = newResult(o)
	e.prog.say("%d orders, %s worker, artifacts in %s", o.orders, o.workerKind, rel(e.root, e.art))

	// Build first: a compile error stops here, before anything is started.
	workerBin := filepath.Join(e.tmp, "worker")
	pkg := "./worker"
	if o.workerKind == "bench" {
		pkg = "./bench/benchworker"
	}
	e.prog.say("building %s", pkg)
	if err := buildBinary(ctx, e.root, pkg, workerBin); err != nil {
		return 2, err
	}

	e.prog.say("starting Temporal dev server, local-kms, PostgreSQL database, SP-API sandbox")
	if e.temporal, err = startTemporal(ctx, e.root, mkdir(e.tmp, "temporal")); err != nil {
		return 1, err
	}
	if e.kms, err = newKMS(e.root, mkdir(e.tmp, "kms")); err != nil {
		return 1, err
	}
	if err := e.kms.start(ctx); err != nil {
		return 1, err
	}
	if e.proxy, err = startKMSProxy(e.kms.endpoint()); err != nil {
		return 1, err
	}
	if e.dsn, e.dbName, err = createDatabase(ctx, o.adminDSN); err != nil {
		return 1, err
	}
	if e.pool, err = pgxpool.New(ctx, e.dsn); err != nil {
		return 1, err
	}
	atExit(e.pool.Close)
	// The harness's client encrypts and decrypts payloads like the worker does.
	dc, fc, err := e.clientConverters(ctx)
	if err != nil {
		return 1, fmt.Errorf("payload codec: %w", err)
	}
	if e.tc, err = client.DialContext(ctx, client.Options{HostPort: e.temporal.addr, Logger: quietLogger(),
		DataConverter: dc, FailureConverter: fc,
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: app.GRPCCompression()}}); err != nil {
		return 1, err
	}
	atExit(e.tc.Close)

	// Baseline first, alone on the server: the pipeline then runs on a bigger
	// database, so the ratio errs on the pessimistic side.
	if o.baseline {
		if err := e.runBaseline(ctx); err != nil {
			return 1, fmt.Errorf("baseline: %w", err)
		}
	}
	if e.o.deliverAfter == 0 {
		e.o.deliverAfter = autoDelivery(o, e.res)
	}
	if e.o.retention == 0 {
		e.o.retention = 20*time.Second + time.Duration(o.orders)*20*time.Millisecond
		if o.chaos {
			e.o.retention = 5 * time.Second
		}
	}
	e.res.Config.DeliveryAfter = e.o.deliverAfter.String()
	e.res.Config.Retention = e.o.retention.String()

	if err := e.startSandbox(); err != nil {
		return 1, err
	}
	if err := e.startWorker(ctx, workerBin); err != nil {
		return 1, err
	}
	code, err := e.runPipeline(ctx)
	e.res.WallSeconds = time.Since(wall).Seconds()
	if werr := e.res.write(o.out); werr != nil && err == nil {
		err = werr
	}
	e.res.print(os.Stdout, rel(e.root, o.out))
	return code, err
}

// withUser returns the URL-form DSN with another user (no password: loopback trust).
func withUser(dsn, user string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.User = url.User(user)
	return u.String()
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	_ = os.MkdirAll(d, 0o700)
	return d
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// autoDelivery picks when sandbox orders are delivered: late enough that every
// order waits for its delivery (the production path: a `delivered` signal from
// OrderSync), assuming the pipeline takes in orders at a third of the baseline's
// pace or better.
func autoDelivery(o options, r *Result) time.Duration {
	if o.chaos {
		return 20 * time.Second
	}
	d := 20*time.Second + time.Duration(o.orders)*60*time.Millisecond
	if b := r.Baseline; b != nil && b.intake > 0 {
		d = 20*time.Second + 3*b.intake
	}
	return min(max(d, 20*time.Second), 30*time.Minute).Round(time.Second)
}

// ---------------------------------------------------------------- baseline

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

// waitClosed waits until no workflow of the type is running.
func (e *env) waitClosed(ctx context.Context, workflowType string) error {
	for {
		resp, err := e.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf(`WorkflowType = %q AND ExecutionStatus = "Running"`, workflowType)})
		if err == nil && resp.GetCount() == 0 {
			return nil
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// tickProgress redraws the progress bar every 500 ms until the returned func is called.
func (e *env) tickProgress(ctx context.Context, label string, f func() (int, string)) func() {
	stop := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	e.prog.reset(label)
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			n, extra := f()
			e.prog.draw(label, n, e.o.orders, extra)
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		once.Do(func() { close(stop); <-done; e.prog.done() })
	}
}

// ---------------------------------------------------------------- sandbox and worker

func (e *env) startSandbox() error {
	var err error
	e.sb, err = sandbox.NewE(sandbox.Options{Seed: e.o.seed, Marker: marker, DeliveryAfter: e.o.deliverAfter,
		LatestDeliveryAfter: e.o.deliverAfter + time.Hour, Limits: sandbox.TestLimits()})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e.sb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	atExit(func() { _ = srv.Close() })
	e.sbURL = "http://" + l.Addr().String()
	return nil
}

// workerEnv is the worker's whole environment (nothing is inherited but PATH and HOME).
func (e *env) workerEnv(httpAddr string) []string {
	envv := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		// As in production and `make run`: the worker runs as the least-privileged
		// role; createDatabase migrated as the owner (the migrations create the role).
		"DATABASE_URL=" + withUser(e.dsn, "dpp_worker"),
		"TEMPORAL_ADDRESS=" + e.temporal.addr,
		"TEMPORAL_NAMESPACE=default",
		"DPP_TASK_QUEUE=" + workflows.TaskQueue,
		// The bench measures the pipeline, not Amazon's rates: the SP-API task
		// queues dispatch at the sandbox's pace.
		"DPP_SPAPI_SANDBOX_SPEEDUP=100000",
		"AWS_REGION=" + kmsRegion,
		"AWS_ENDPOINT_URL_KMS=" + e.proxy.address,
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_EC2_METADATA_DISABLED=true",
		"DPP_KMS_KEY_ID=" + kmsAlias,
		"SPAPI_ENDPOINT=" + e.sbURL,
		"DPP_PII_RETENTION=" + e.o.retention.String(),
		"DPP_SYNC_SETTLE=0s",
		"DPP_HTTP_ADDR=" + httpAddr,
		"DPP_LOG_LEVEL=" + e.o.logLevel,
		"DPP_SELLER_NAME=Plusranger Ltd (bench)",
		"DPP_SELLER_ADDRESS=1 Example Street|London|EC1A 1AA|United Kingdom",
		"DPP_SELLER_VAT_NUMBER=GB999999973",
	}
	for _, kv := range strings.Split(e.o.workerEnv, ",") {
		if strings.Contains(kv, "=") {
			envv = append(envv, strings.TrimSpace(kv))
		}
	}
	return envv
}

// clientConfig is the worker's configuration as the harness's own Temporal client
// needs it: the same payload codec, with KMS reached directly (not through the
// counting proxy, so the harness's own codec calls are not counted).
func (e *env) clientConverters(ctx context.Context) (converter.DataConverter, converter.FailureConverter, error) {
	vars := map[string]string{}
	for _, kv := range e.workerEnv("127.0.0.1:1") {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	vars["AWS_ENDPOINT_URL_KMS"] = e.kms.endpoint()
	vars["DPP_PII_RETENTION"] = "720h" // not chosen yet; the client does not use it
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return nil, nil, err
	}
	return codec.ConvertersForConfig(ctx, cfg)
}

func (e *env) startWorker(ctx context.Context, bin string) error {
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	envv := e.workerEnv(httpAddr)
	if e.o.workerKind == "bench" {
		if e.o.tune != "" {
			envv = append(envv, "BENCH_WORKER_TUNING="+e.o.tune)
		}
		envv = append(envv, "BENCH_SPAPI_RATE=10000",
			"BENCH_CPUPROFILE="+filepath.Join(e.art, "worker.cpu.pprof"),
			"BENCH_MEMPROFILE="+filepath.Join(e.art, "worker.heap.pprof"))
	}
	e.workers = &workerSet{bin: bin, env: envv, dir: e.art, http: httpAddr}
	atExit(e.workers.stop)
	e.prog.say("starting the worker (%s)", e.o.workerKind)
	return e.workers.start(ctx)
}

// ---------------------------------------------------------------- the pipeline

func (e *env) runPipeline(ctx context.Context) (int, error) {
	n := e.o.orders
	smp := &sampler{pool: e.pool, dsn: e.dsn, workers: e.workers, markers: markerForms(marker), snap: e.cpuSnapshot, total: n}
	if e.o.workerKind == "bench" {
		// At the peak (every order sealed, invoiced and live) the bench worker
		// writes heap and goroutine profiles.
		smp.onPeak = func() {
			if p := e.workers.current(); p != nil && p.alive() {
				_ = p.cmd.Process.Signal(syscall.SIGUSR1)
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
		go func() { perfDone <- e.perfRecord(runCtx, e.temporal.proc.pid(), e.o.perfTemporal) }()
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

// ---------------------------------------------------------------- CPU accounting

type cpuSnap struct {
	at                          time.Time
	temporal, worker, kms, self float64
	postgres                    float64
	busy, total                 float64
}

func (e *env) cpuSnapshot() cpuSnap {
	s := cpuSnap{at: time.Now()}
	if e.temporal != nil {
		s.temporal = cpuSeconds(e.temporal.proc.pid())
	}
	if e.workers != nil {
		if p := e.workers.current(); p != nil && p.alive() {
			s.worker = cpuSeconds(p.pid())
		}
	}
	if e.kms != nil {
		if pid := e.kms.pid(); pid != 0 {
			s.kms = cpuSeconds(pid)
		}
	}
	s.self = cpuSeconds(os.Getpid())
	for _, pid := range pidsByComm("postgres") {
		s.postgres += cpuSeconds(pid)
	}
	s.busy, s.total = machineCPU()
	return s
}

// CPU is CPU seconds per process over a phase, and the share of the machine.
type CPU struct {
	Seconds          float64            `json:"wallSeconds"`
	ByProcess        map[string]float64 `json:"cpuSecondsByProcess"`
	MachineBusy      float64            `json:"machineBusyCPUSeconds"`
	MachineCapacity  float64            `json:"machineCapacityCPUSeconds"`
	MachineBusyShare float64            `json:"machineBusyShare"`
}

func cpuDelta(a, b cpuSnap) CPU {
	c := CPU{Seconds: b.at.Sub(a.at).Seconds(), ByProcess: map[string]float64{
		"temporal-server": b.temporal - a.temporal,
		"worker":          max(b.worker-a.worker, 0),
		"local-kms":       max(b.kms-a.kms, 0),
		"bench (sandbox, KMS proxy, driver, baseline worker)": b.self - a.self,
		"postgres (all backends, whole machine)":              b.postgres - a.postgres,
	}}
	c.MachineBusy = b.busy - a.busy
	c.MachineCapacity = c.Seconds * float64(runtime.NumCPU())
	if c.MachineCapacity > 0 {
		c.MachineBusyShare = c.MachineBusy / c.MachineCapacity
	}
	return c
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
