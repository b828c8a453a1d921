package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func get(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.HTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// awaitScrape scrapes until the answer holds every want (counters and gauges
// reach the registry on tally's next report).
func awaitScrape(t *testing.T, r *Registry, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := get(t, r)
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The SDK's handler: counters end in _total, timers are histograms in seconds
// ending in _seconds (the names Temporal's Grafana SDK dashboard queries), tags
// are labels; our gauges, Go runtime and process metrics share the registry.
func TestMetricsExposition(t *testing.T) {
	r := newRegistry(nil, 10*time.Millisecond)
	defer r.Close()
	h := r.Handler().WithTags(map[string]string{"namespace": "default"})
	h.WithTags(map[string]string{"operation": "Poll"}).Counter("temporal_request").Inc(2)
	h.Gauge("temporal-worker.slots").Update(5)
	h.Timer("temporal_activity_execution_latency").Record(1500 * time.Millisecond)
	h.Timer("temporal_activity_execution_latency").Record(3 * time.Millisecond)
	g := NewGauges(nil, Gauge{Name: "dpp_orders_sealed", Help: "Orders whose buyer PII is held sealed.",
		Read: func(context.Context) (float64, error) { return 3, nil }})
	if err := r.Register(g); err != nil {
		t.Fatal(err)
	}
	g.Refresh(context.Background())

	awaitScrape(t, r,
		"# TYPE temporal_request_total counter\n",
		`temporal_request_total{namespace="default",operation="Poll"} 2`+"\n",
		`temporal_worker_slots{namespace="default"} 5`+"\n",
		"# TYPE temporal_activity_execution_latency_seconds histogram\n",
		`temporal_activity_execution_latency_seconds_bucket{namespace="default",le="0.005"} 1`+"\n",
		`temporal_activity_execution_latency_seconds_bucket{namespace="default",le="2.5"} 2`+"\n",
		`temporal_activity_execution_latency_seconds_bucket{namespace="default",le="+Inf"} 2`+"\n",
		`temporal_activity_execution_latency_seconds_sum{namespace="default"} 1.503`+"\n",
		`temporal_activity_execution_latency_seconds_count{namespace="default"} 2`+"\n",
		"# HELP dpp_orders_sealed Orders whose buyer PII is held sealed.\n# TYPE dpp_orders_sealed gauge\ndpp_orders_sealed 3\n",
		"# TYPE go_goroutines gauge\n", "go_memstats_heap_alloc_bytes ", "# TYPE go_gc_duration_seconds summary\n",
		"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
	)
}

// A name reported again with other label names cannot join a Prometheus
// registry: that series is dropped and logged once, nothing panics, and the
// rest is still served.
func TestMetricsWithClashingLabelsAreDroppedNotPanics(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	r := newRegistry(zap.New(core), 10*time.Millisecond)
	defer r.Close()
	h := r.Handler()
	h.WithTags(map[string]string{"a": "1"}).Timer("dpp_step").Record(time.Millisecond)
	for range 3 {
		h.WithTags(map[string]string{"b": "1"}).Timer("dpp_step").Record(time.Millisecond)
	}
	h.Counter("dpp_fine").Inc(1)
	out := awaitScrape(t, r, `dpp_step_seconds_count{a="1"} 1`, "dpp_fine_total 1\n")
	if strings.Contains(out, `b="1"`) {
		t.Fatalf("the clashing series is served:\n%s", out)
	}
	if n := logs.FilterMessageSnippet("cannot join").Len(); n != 1 {
		t.Fatalf("%d warnings, want 1: %v", n, logs.All())
	}
}
