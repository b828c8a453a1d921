package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/devstack"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/workflows"
)

func (e *env) startSandbox() error {
	var err error
	opts := sandbox.Options{Seed: e.o.seed, Marker: marker, DeliveryAfter: e.o.deliverAfter,
		LatestDeliveryAfter: e.o.deliverAfter + time.Hour, Limits: sandbox.TestLimits()}
	if e.queue != nil { // it sends nothing before the notification phase subscribes
		opts.SQS = e.queue.sqs
	}
	e.sb, err = sandbox.NewE(opts)
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
		"TEMPORAL_ADDRESS=" + e.temporal.Address,
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

// withUser returns the URL-form DSN with another user (no password: loopback trust).
func withUser(dsn, user string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.User = url.User(user)
	return u.String()
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
	vars["AWS_ENDPOINT_URL_KMS"] = e.kms.Endpoint()
	vars["DPP_PII_RETENTION"] = "720h" // not chosen yet; the client does not use it
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return nil, nil, err
	}
	return codec.ConvertersForConfig(ctx, cfg)
}

func (e *env) startWorker(ctx context.Context, bin string) error {
	httpPort, err := devstack.FreePort()
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

// workerSet runs one worker process at a time (restarting it after a kill) and
// keeps every incarnation's log for the leak check.
type workerSet struct {
	bin     string
	env     []string
	dir     string
	http    string
	op      sync.Mutex // serialises kill/restart sequences
	mu      sync.Mutex
	cur     *devstack.Proc
	all     []*devstack.Proc
	n       int
	logs    []string
	peakHWM int64 // KiB, max over incarnations
	exits   int   // exits the harness did not cause (e.g. start-up failure while KMS is down)
}

// start starts a new incarnation and waits until it answers /healthz. Callers
// that may race (chaos kills, the supervisor) hold w.op. Any earlier incarnation
// still alive is killed first, so two workers never share the HTTP port.
func (w *workerSet) start(ctx context.Context) error {
	w.mu.Lock()
	for _, old := range w.all {
		if old.Alive() {
			w.mu.Unlock()
			old.Kill()
			w.mu.Lock()
		}
	}
	w.n++
	logPath := filepath.Join(w.dir, fmt.Sprintf("worker-%d.log", w.n))
	w.logs = append(w.logs, logPath)
	p, err := devstack.StartProc("worker", logPath, w.env, w.bin)
	if err == nil {
		w.cur = p
		w.all = append(w.all, p)
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if !p.Alive() {
			return fmt.Errorf("worker exited during start-up: %s", p.Tail(3000))
		}
		if healthy(ctx, w.http) && p.Alive() {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Kill()
			return fmt.Errorf("worker not healthy after 90s: %s", p.Tail(3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (w *workerSet) current() *devstack.Proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// sample records the current incarnation's peak RSS; it returns VmRSS and VmHWM.
func (w *workerSet) sample() (int64, int64) {
	p := w.current()
	if p == nil || !p.Alive() {
		return 0, 0
	}
	rss, hwm := devstack.Memory(p.Pid())
	w.mu.Lock()
	if hwm > w.peakHWM {
		w.peakHWM = hwm
	}
	w.mu.Unlock()
	return rss, hwm
}

func (w *workerSet) stop() {
	w.sample()
	w.mu.Lock()
	all := append([]*devstack.Proc(nil), w.all...)
	w.mu.Unlock()
	for _, p := range all {
		p.Stop(syscall.SIGTERM, 20*time.Second)
	}
}

// buildBinary runs go build for pkg into dir.
func buildBinary(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
