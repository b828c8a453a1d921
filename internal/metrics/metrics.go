// Package metrics is the worker's Prometheus registry, served on /metrics.
//
// The Temporal SDK reports into it the way Temporal documents for Go: through
// go.temporal.io/sdk/contrib/tally and tally's Prometheus reporter, with
// Prometheus naming (counters end in _total, timers in _seconds) and timers as
// histograms, so Temporal's published Grafana SDK dashboard
// (temporal-go-java-sdks-tally.json) and the usual schedule-to-start alerts work
// on it unchanged. Our own policy gauges (Gauges), the Go runtime and the
// process metrics join the same registry.
package metrics

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.uber.org/zap"
)

// Buckets are the histogram buckets (seconds) of every SDK timer: from a
// millisecond (a request, a workflow task) to an hour (a schedule-to-start
// behind a long outage); longer observations, such as an order's 30-day
// end-to-end latency, land in +Inf.
var Buckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
}

// ReportInterval is how often tally hands the SDK's counters and gauges to the
// Prometheus registry (timers go at once): a counter an activity increments is
// on /metrics within this long.
const ReportInterval = time.Second

// Registry is the worker's Prometheus registry with the SDK's handler reporting
// into it. The zero value is not usable; use New. Close stops the reporting.
type Registry struct {
	prom    *prometheus.Registry
	scope   tally.Scope
	closer  io.Closer
	handler client.MetricsHandler
	http    http.Handler
	log     *zap.Logger

	mu     sync.Mutex
	warned map[string]bool
}

// New returns a registry holding the Go runtime and process collectors, ready
// for the SDK (Handler) and for our collectors (Register). log (nil: none)
// hears of series the registry refuses.
func New(log *zap.Logger) *Registry {
	return newRegistry(log, ReportInterval)
}

func newRegistry(log *zap.Logger, interval time.Duration) *Registry {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Registry{prom: prometheus.NewRegistry(), log: log, warned: map[string]bool{}}
	r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              r.prom,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: Buckets,
		// A name reported with a second set of label names cannot join a
		// Prometheus registry: that series is dropped, and said once, instead
		// of the reporter's default panic.
		OnRegisterError: r.registerError,
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:         reporter,
		Separator:              tallyprom.DefaultSeparator,
		SanitizeOptions:        &sdktally.PrometheusSanitizeOptions,
		OmitCardinalityMetrics: true,
	}, interval)
	r.scope, r.closer = sdktally.NewPrometheusNamingScope(scope), closer
	r.handler = sdktally.NewMetricsHandler(r.scope)
	r.http = promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{
		ErrorLog:      zapErrorLog{r.log},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return r
}

func (r *Registry) registerError(err error) {
	r.mu.Lock()
	first := !r.warned[err.Error()]
	r.warned[err.Error()] = true
	r.mu.Unlock()
	if first {
		r.log.Warn("A metric series cannot join the Prometheus registry and is dropped", zap.Error(err))
	}
}

// Handler is the registry as the Temporal SDK's metrics handler
// (client.Options.MetricsHandler); activities and workflows reach it through
// activity.GetMetricsHandler and workflow.GetMetricsHandler. Counters get
// _total and timers _seconds appended to their names.
func (r *Registry) Handler() client.MetricsHandler { return r.handler }

// Register adds a collector of ours (e.g. Gauges) to the registry.
func (r *Registry) Register(c prometheus.Collector) error { return r.prom.Register(c) }

// Gatherer is the registry, for tests and tools that read it directly.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.prom }

// HTTPHandler serves the registry in the Prometheus exposition format. A
// collector that fails is left out of the answer and logged; the answer never
// carries an error's text.
func (r *Registry) HTTPHandler() http.Handler {
	return r.http
}

// Value is the sum of every series of the named counter or gauge as /metrics
// would serve it now (0 if there is none), for tests and tools. The SDK's
// counters and gauges arrive up to ReportInterval after they change.
func (r *Registry) Value(name string) float64 {
	families, _ := r.prom.Gather()
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return total
}

// Close reports what the SDK buffered one last time and stops reporting.
func (r *Registry) Close() error { return r.closer.Close() }

type zapErrorLog struct{ log *zap.Logger }

func (l zapErrorLog) Println(v ...any) { l.log.Sugar().Warn(v...) }
