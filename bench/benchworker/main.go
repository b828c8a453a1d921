// Command benchworker is the worker of worker/main.go for `make bench`: the same
// wiring (internal/app), with two bench-only additions driven by environment
// variables the real worker does not read:
//
//	BENCH_SPAPI_RATE   requests/s (and burst) for the SP-API client's getOrder and
//	                   searchOrders limiters. The real worker keeps Amazon's
//	                   default plans (getOrder 0.5/s burst 30, searchOrders
//	                   0.0056/s burst 20), which would make the benchmark measure
//	                   the rate limiter, not the pipeline; the sandbox allows far more.
//	BENCH_CPUPROFILE   write a CPU profile of the whole run to this file.
//	BENCH_MEMPROFILE   write a heap profile to this file when the worker stops.
//	BENCH_WORKER_TUNING  worker options to try instead of internal/app's
//	                   (bench/tuning: "sticky=30s,autoscale=true,cache=500"); the
//	                   worker is then built here the way app.NewWorker builds it.
//	SIGUSR1            writes heap and goroutine profiles beside BENCH_MEMPROFILE
//	                   (".peak.heap", ".peak.goroutine") and the runtime's memory
//	                   classes (".peak.memory.txt": what the soft memory limit
//	                   counts besides live objects): the harness sends it at
//	                   the peak of live orders.
//	BENCH_KEY_CACHE_TTL  sets the vault's data-key cache TTL when the configuration
//	                   leaves it at zero (an experiment: config.Load does not read
//	                   DPP_KEY_CACHE_TTL at the time of writing).
//
// `make chaos` runs the real ./worker binary, never this one.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/bench/tuning"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	app.SetMemoryLimit() // the production worker's, so the benchmark measures what runs
	if v := os.Getenv("BENCH_KEY_CACHE_TTL"); v != "" && cfg.KeyCacheTTL == 0 {
		if cfg.KeyCacheTTL, err = time.ParseDuration(v); err != nil {
			fmt.Fprintln(os.Stderr, "benchworker: BENCH_KEY_CACHE_TTL:", err)
			os.Exit(2)
		}
	}
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchworker:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "benchworker:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			for range usr1 {
				for name, suffix := range map[string]string{"heap": ".peak.heap", "goroutine": ".peak.goroutine"} {
					if f, err := os.Create(path + suffix); err == nil {
						if name == "heap" {
							runtime.GC()
						}
						_ = pprof.Lookup(name).WriteTo(f, 0)
						f.Close()
					}
				}
				writeMemoryClasses(path + ".peak.memory.txt")
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	stop()
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		if f, ferr := os.Create(path); ferr == nil {
			runtime.GC()
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// run is worker/main.go's run, plus the SP-API limits.
func run(ctx context.Context, cfg *config.Config) error {
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	if v := os.Getenv("BENCH_SPAPI_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("BENCH_SPAPI_RATE: %q is not a positive number", v)
		}
		lim := spapi.Limit{Rate: r, Burst: max(int(r), 1)}
		if a.SPAPI, err = spapi.New(spapi.Config{
			Endpoint: cfg.SPAPIEndpoint, TokenURL: cfg.LWATokenURL, ClientID: cfg.LWAClientID,
			ClientSecret: cfg.LWAClientSecret, RefreshToken: cfg.LWARefreshToken, Logger: a.Log.Named("spapi"),
			Limits: map[string]spapi.Limit{spapi.OpGetOrder: lim, spapi.OpSearchOrders: lim},
		}); err != nil {
			return err
		}
	}
	srv := &http.Server{Addr: cfg.HTTPAddr, Handler: a.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.ListenAndServe() }()
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()

	w := a.NewWorker()
	if v := os.Getenv("BENCH_WORKER_TUNING"); v != "" {
		t, err := tuning.Parse(v)
		if err != nil {
			return err
		}
		// The production options, with the tuning applied on top.
		o := a.WorkerOptions()
		t.Apply(&o)
		w = a.NewWorkerWithOptions(o)
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()
	a.Log.Info("Worker started (bench)", zap.String("taskQueue", cfg.TaskQueue), zap.String("temporal", cfg.TemporalAddress),
		zap.String("http", cfg.HTTPAddr))
	select {
	case <-ctx.Done():
		a.Log.Info("Stopping worker")
		return nil
	case err := <-httpErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("DPP_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	case <-worker.InterruptCh():
		return nil
	}
}

// writeMemoryClasses writes the runtime's memory classes (runtime/metrics
// /memory/classes/...) and the GC's view of the heap: where the memory the soft
// limit counts goes (objects, free and fragmented heap, stacks, metadata).
func writeMemoryClasses(path string) {
	var samples []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || strings.HasPrefix(d.Name, "/gc/heap/") ||
			d.Name == "/gc/gomemlimit:bytes" || d.Name == "/sched/goroutines:goroutines" || d.Name == "/gc/cycles/total:gc-cycles" {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	var b strings.Builder
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			v := s.Value.Uint64()
			if strings.HasSuffix(s.Name, ":bytes") {
				fmt.Fprintf(&b, "%-55s %10.1f MiB\n", s.Name, float64(v)/(1<<20))
			} else {
				fmt.Fprintf(&b, "%-55s %10d\n", s.Name, v)
			}
		case metrics.KindFloat64:
			fmt.Fprintf(&b, "%-55s %10.3f\n", s.Name, s.Value.Float64())
		}
	}
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
}
