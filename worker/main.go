// Command worker runs the Temporal worker of the data protection workflows and its
// two HTTP listeners: the operator listener DPP_HTTP_ADDR (/healthz, /metrics,
// and the codec server under /codec/) and the public listener DPP_PUBLIC_ADDR
// (Slack's requests and the ingest routes). Configuration comes from the environment:
// `worker -help` lists every variable with its default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: worker\n\nRuns the dpp Temporal worker. Environment variables:\n\n")
		config.PrintHelp(flag.CommandLine.Output())
	}
	version := flag.Bool("version", false, "print the version and commit this binary was built from, and exit")
	healthcheck := flag.Bool("healthcheck", false, "GET /healthz of the worker running on DPP_HTTP_ADDR and exit 0 if it is ready, 1 if not (the container image's HEALTHCHECK: it has no shell)")
	flag.Parse()
	if *version {
		fmt.Printf("worker %s (commit %s)\n", app.Version, app.Commit)
		return
	}
	if *healthcheck {
		os.Exit(probe())
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	app.SetMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config.Config) error {
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	// The policy gauges /metrics serves are recomputed in the background, every
	// DPP_METRICS_REFRESH, until the worker stops (before a.Close).
	stopGauges := a.StartGauges(ctx)
	defer stopGauges()
	httpErr, stopHTTP := serve(app.NewHTTPServer(cfg.HTTPAddr, a.HTTPHandler()))
	defer stopHTTP()
	// The public listener is separate so the ingress can never reach the codec
	// or metrics; the domains' routes are registered before it serves.
	publicErr, stopPublic := serve(a.PublicServer())
	defer stopPublic()

	w := a.NewWorker()
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()
	a.Log.Info("Worker started", zap.String("taskQueue", cfg.TaskQueue), zap.String("temporal", cfg.TemporalAddress),
		zap.String("namespace", cfg.TemporalNamespace), zap.String("http", cfg.HTTPAddr), zap.Bool("spapiSandbox", cfg.Sandbox()),
		zap.String("public", cfg.PublicAddr), zap.Bool("slack", a.Slack != nil), zap.Bool("slackRequests", cfg.SlackSigningSecret != ""),
		zap.Strings("ingest", a.Public().IngestPaths()),
		zap.Any("spapiTaskQueues", a.SPAPIQueues()))
	// On SIGTERM the deferred calls run in reverse: w.Stop stops polling and
	// waits up to DPP_WORKER_STOP_TIMEOUT for running activities, while the HTTP
	// listener still answers /healthz with "draining"; then the listener stops.
	defer a.BeginDrain()
	select {
	case <-ctx.Done():
		a.Log.Info("Stopping worker")
		return nil
	case err := <-httpErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("DPP_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	case err := <-publicErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("DPP_PUBLIC_ADDR %s: %w", cfg.PublicAddr, err)
	case <-worker.InterruptCh():
		return nil
	}
}

// serve runs srv in the background; its error (http.ErrServerClosed after
// stop) arrives on the channel, and stop shuts it down gracefully.
func serve(srv *http.Server) (<-chan error, func()) {
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	return errs, func() {
		shutdown, cancel := context.WithTimeout(context.Background(), app.HTTPShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}
}

// probe is `worker -healthcheck`: it reads only DPP_HTTP_ADDR, so it answers
// for the running worker even where the rest of the environment is not set.
func probe() int {
	url, err := app.ProbeURL(config.Value(os.Getenv, "DPP_HTTP_ADDR"), "/healthz")
	if err == nil {
		err = app.Probe(url, 5*time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker -healthcheck: DPP_HTTP_ADDR /healthz:", err)
		return 1
	}
	return 0
}
