package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const dbError = "failed to connect to `user=dpp_worker database=dpp`: 10.0.0.5:5432: password authentication failed"

// scrape serves g alone from a Prometheus registry, as /metrics does.
func scrape(t *testing.T, g *Gauges) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestGaugesServeTheirLastValuesAndNeverReadOnAScrape(t *testing.T) {
	var reads atomic.Int64
	var broken atomic.Bool
	sealed := 7.0
	core, logs := observer.New(zap.WarnLevel)
	g := NewGauges(zap.New(core),
		Gauge{Name: "dpp_orders_sealed", Help: "Orders sealed.", Read: func(context.Context) (float64, error) {
			reads.Add(1)
			if broken.Load() {
				return 0, errors.New(dbError)
			}
			return sealed, nil
		}},
		Gauge{Name: "dpp_sync_lag_seconds", Help: "Lag.", Read: func(context.Context) (float64, error) { return 1.5, nil }})
	now := time.Unix(1_800_000_000, 0)
	g.now = func() time.Time { return now }

	// Before the first refresh: no value, a zero timestamp.
	if out := scrape(t, g); strings.Contains(out, "dpp_orders_sealed ") ||
		!strings.Contains(out, `dpp_gauges_last_refresh_timestamp_seconds{gauge="dpp_orders_sealed"} 0`) {
		t.Fatalf("before any refresh:\n%s", out)
	}
	if failed := g.Refresh(context.Background()); failed != 0 {
		t.Fatalf("%d failures", failed)
	}
	for range 5 {
		scrape(t, g)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads for one refresh and five scrapes", n)
	}
	out := scrape(t, g)
	for _, want := range []string{"# HELP dpp_orders_sealed Orders sealed.\n# TYPE dpp_orders_sealed gauge\ndpp_orders_sealed 7\n", "dpp_sync_lag_seconds 1.5\n",
		`dpp_gauges_last_refresh_timestamp_seconds{gauge="dpp_orders_sealed"} 1.8e+09`} {
		if !strings.Contains(out, want) {
			t.Fatalf("lacks %q:\n%s", want, out)
		}
	}

	// The database fails: the last value stays, the failure is counted and
	// logged, the timestamp shows its age, and no error text is served.
	broken.Store(true)
	sealed = 8
	now = now.Add(time.Minute)
	if failed := g.Refresh(context.Background()); failed != 1 {
		t.Fatalf("%d failures, want 1", failed)
	}
	out = scrape(t, g)
	for _, want := range []string{"dpp_orders_sealed 7\n", `dpp_gauges_refresh_failures_total{gauge="dpp_orders_sealed"} 1`,
		`dpp_gauges_last_refresh_timestamp_seconds{gauge="dpp_orders_sealed"} 1.8e+09`,
		`dpp_gauges_last_refresh_timestamp_seconds{gauge="dpp_sync_lag_seconds"} 1.80000006e+09`} {
		if !strings.Contains(out, want) {
			t.Fatalf("lacks %q:\n%s", want, out)
		}
	}
	for _, leak := range []string{"password", "10.0.0.5", "dpp_worker"} {
		if strings.Contains(out, leak) {
			t.Fatalf("/metrics reveals %q", leak)
		}
	}
	if logs.FilterField(zap.String("gauge", "dpp_orders_sealed")).Len() != 1 || !strings.Contains(logs.All()[0].ContextMap()["error"].(string), "password") {
		t.Fatalf("the failure is not logged: %v", logs.All())
	}
}

func TestGaugesRunInTheBackgroundUntilCancelled(t *testing.T) {
	var reads atomic.Int64
	g := NewGauges(nil, Gauge{Name: "dpp_x", Help: "x", Read: func(context.Context) (float64, error) { return float64(reads.Add(1)), nil }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx, 10*time.Millisecond); close(done) }()
	for reads.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context was cancelled")
	}
	n := reads.Load()
	time.Sleep(50 * time.Millisecond)
	if reads.Load() != n {
		t.Fatal("gauges refreshed after Run returned")
	}
}
