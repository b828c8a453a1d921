package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/devstack"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
)

// env is everything one run holds.
type env struct {
	o        options
	root     string
	tmp      string
	art      string
	temporal *devstack.Temporal
	kms      *devstack.KMS
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
	queue    *goawsQueue // the notification phase's SQS queue; nil when it is off
}

func run(ctx context.Context, o options) (int, error) {
	wall := time.Now()
	e := &env{o: o, prog: newProgress()}
	var err error
	if e.root, err = devstack.RepoRoot(); err != nil {
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
	if e.temporal, err = startTemporal(ctx, mkdir(e.tmp, "temporal")); err != nil {
		return 1, err
	}
	if e.kms, err = startKMS(ctx, mkdir(e.tmp, "kms")); err != nil {
		return 1, err
	}
	if e.proxy, err = startKMSProxy(e.kms.Endpoint()); err != nil {
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
	if e.tc, err = client.DialContext(ctx, client.Options{HostPort: e.temporal.Address, Logger: devstack.QuietLogger(),
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

	var starterBin string
	if e.o.notifications > 0 {
		e.prog.say("notification phase on: building ./starter, starting goaws")
		if starterBin, err = e.buildStarter(ctx); err != nil {
			return 2, err
		}
		if e.queue, err = e.startQueue(ctx); err != nil {
			return 1, fmt.Errorf("notification phase: %w", err)
		}
	}
	if err := e.startSandbox(); err != nil {
		return 1, err
	}
	if err := e.startWorker(ctx, workerBin); err != nil {
		return 1, err
	}
	code, err := e.runPipeline(ctx)
	if e.queue != nil && err == nil && ctx.Err() == nil {
		if nerr := e.runNotifications(ctx, starterBin); nerr != nil {
			e.prog.say("notification phase: %v", nerr)
			code = max(code, 1)
		}
		e.res.evaluateNotificationTargets()
	}
	e.res.WallSeconds = time.Since(wall).Seconds()
	if werr := e.res.write(o.out); werr != nil && err == nil {
		err = werr
	}
	e.res.print(os.Stdout, rel(e.root, o.out))
	return code, err
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
