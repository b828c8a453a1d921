package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/metrics"
)

// get fetches path from srv.
func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// awaitMetric scrapes until /metrics holds want (the background refresh ran).
func awaitMetric(ctx context.Context, t *testing.T, srv *httptest.Server, want string) string {
	t.Helper()
	for {
		code, body := get(t, srv, "/metrics")
		if code == 200 && strings.Contains(body, want) {
			return body
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/metrics never showed %q: %d\n%s", want, code, body)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	s.purgeNow(ctx, id)
	stop := s.app.StartGauges(ctx)
	defer stop()

	srv := httptest.NewServer(s.app.HTTPHandler())
	defer srv.Close()
	if code, body := get(t, srv, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	// Each gauge appears once it has been read; on a loaded machine the first
	// refresh takes a while, so wait for every gauge asserted on below.
	for _, g := range []string{"dpp_orders_purged 1\n", "dpp_purges_overdue 0\n", "dpp_tax_records_overdue 0\n", "\ndpp_sync_lag_seconds "} {
		awaitMetric(ctx, t, srv, g)
	}
	// The SDK's counters reach the registry on tally's next report (a second).
	body := awaitMetric(ctx, t, srv, "\ntemporal_workflow_completed_total{")
	for _, want := range []string{"dpp_orders_purged 1\n", "dpp_certificates 1\n", "dpp_purges_overdue 0\n",
		"dpp_orders_sealed 0\n", "dpp_tax_records_overdue 0\n", "# TYPE dpp_sync_lag_seconds gauge",
		"# HELP dpp_orders_sealed Orders whose buyer PII is held sealed.\n# TYPE dpp_orders_sealed gauge\n",
		"# HELP dpp_purges_overdue Sealed orders more than an hour past their purge due time",
		"# HELP dpp_sync_lag_seconds Age of the OrderSync watermark.\n# TYPE dpp_sync_lag_seconds gauge\n",
		`dpp_gauges_last_refresh_timestamp_seconds{gauge="dpp_orders_sealed"}`,
		"# TYPE dpp_gauges_refresh_failures_total counter\n",
		`dpp_gauges_refresh_failures_total{gauge="dpp_sync_lag_seconds"} 0`,
		// The SDK's metrics under the names Temporal's Grafana SDK dashboard queries.
		"# TYPE temporal_workflow_completed_total counter\n", "# TYPE temporal_request_total counter\n",
		"# TYPE temporal_request_latency_seconds histogram\n",
		"# TYPE temporal_workflow_task_schedule_to_start_latency_seconds histogram\n",
		"# TYPE temporal_activity_schedule_to_start_latency_seconds histogram\n",
		"# TYPE temporal_activity_execution_latency_seconds histogram\n",
		// Go runtime and process metrics.
		"# TYPE go_goroutines gauge\n", "go_memstats_heap_alloc_bytes ", "go_gc_duration_seconds_count ",
		"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	for _, timer := range []string{"temporal_workflow_task_schedule_to_start_latency_seconds", "temporal_request_latency_seconds",
		"temporal_activity_schedule_to_start_latency_seconds", "temporal_workflow_task_execution_latency_seconds"} {
		// Buckets up to +Inf with observations in them, labelled by namespace and task queue.
		bucket := regexp.MustCompile(`(?m)^` + timer + `_bucket\{[^}]*namespace="[^"]+"[^}]*le="0\.1"\} \d+$`)
		inf := regexp.MustCompile(`(?m)^` + timer + `_bucket\{[^}]*task_queue="[^"]+"[^}]*le="\+Inf"\} [1-9]\d*$`)
		if !bucket.MatchString(body) || !inf.MatchString(body) {
			t.Errorf("/metrics lacks the histogram %s:\n%s", timer, body)
		}
	}
}

var countWorkflowRequests = regexp.MustCompile(`(?m)^temporal_request_total\{[^}]*operation="CountWorkflowExecutions"[^}]*\} (\d+)$`)

// A scrape serves the gauges' last values: it queries neither PostgreSQL nor
// Temporal's visibility store, and keeps answering when both are gone. Health
// checks name a failed component, never its error.
func TestScrapesQueryNothingAndAnswersRevealNoErrors(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	s.purgeNow(ctx, id)
	stop := s.app.StartGauges(ctx)
	defer stop()
	srv := httptest.NewServer(s.app.HTTPHandler())
	defer srv.Close()
	awaitMetric(ctx, t, srv, "dpp_purges_overdue 0\n")

	// No visibility query per scrape: the SDK counts every CountWorkflowExecutions call.
	counts := func() string {
		_, body := get(t, srv, "/metrics")
		var all []string
		for _, m := range countWorkflowRequests.FindAllStringSubmatch(body, -1) {
			all = append(all, m[1])
		}
		return strings.Join(all, ",")
	}
	// The SDK's counters reach /metrics on tally's next report: let those of
	// earlier calls arrive first, and those of the scrapes' after.
	settle := func() { time.Sleep(2 * metrics.ReportInterval) }
	settle()
	first := counts()
	for range 5 {
		if now := counts(); now != first {
			t.Fatalf("CountWorkflowExecutions calls went from %s to %s over scrapes", first, now)
		}
	}
	settle()
	if now := counts(); now != first {
		t.Fatalf("CountWorkflowExecutions calls went from %s to %s over scrapes", first, now)
	}

	// PostgreSQL gone: scrapes still answer with the last values.
	s.worker.Stop()
	s.worker = nil
	s.app.Pool.Close()
	code, body := get(t, srv, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics with the database gone: %d %s", code, body)
	}
	for _, want := range []string{"dpp_orders_purged 1\n", "dpp_certificates 1\n", "dpp_purges_overdue 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q once the database is gone:\n%s", want, body)
		}
	}
	code, body = get(t, srv, "/healthz")
	if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "unhealthy: postgres" {
		t.Fatalf("/healthz: %d %q, want 503 naming only the component", code, body)
	}
	if !strings.Contains(s.logs.String(), "closed pool") {
		t.Fatalf("the health check's error is not logged")
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	h := http.NotFoundHandler()
	srv := app.NewHTTPServer("127.0.0.1:0", h)
	if srv.Addr != "127.0.0.1:0" || srv.Handler == nil {
		t.Fatalf("server %+v", srv)
	}
	for name, got := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout": srv.ReadTimeout, "WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if got <= 0 || got > 5*time.Minute {
			t.Errorf("%s = %v: want a bound", name, got)
		}
	}
	// A codec request of a few MiB over a slow link, and the KMS calls and
	// queueing it may wait for, fit in the read and write timeouts.
	if srv.ReadTimeout < 30*time.Second || srv.WriteTimeout < 30*time.Second || srv.ReadHeaderTimeout > srv.ReadTimeout {
		t.Errorf("timeouts too tight for codec requests: read %v, write %v", srv.ReadTimeout, srv.WriteTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes %d", srv.MaxHeaderBytes)
	}
}
