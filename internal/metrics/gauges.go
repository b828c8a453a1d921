package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Gauge is a value computed in the background (a COUNT over the database, a
// Temporal visibility query) and served from memory: a scrape never runs it.
type Gauge struct {
	Name string // Prometheus name, e.g. dpp_orders_sealed
	Help string
	// Read computes the current value. Each gauge has its own small function, so
	// changing where one comes from touches nothing else.
	Read func(ctx context.Context) (float64, error)
}

// Gauges refreshes a set of gauges every interval (Run) and serves their last
// values (it is a Prometheus collector: Collect). A failed refresh of a gauge keeps its last value, counts a
// failure and logs the error; its last-refresh timestamp shows how stale it is.
// The zero value is not usable; use NewGauges.
type Gauges struct {
	gauges  []Gauge
	log     *zap.Logger
	timeout time.Duration
	now     func() time.Time

	descs []*prometheus.Desc // descs[i] describes gauges[i]

	mu    sync.Mutex
	state map[string]*gaugeState
}

type gaugeState struct {
	value     float64
	ok        bool      // value was read at least once
	refreshed time.Time // last successful read
	failures  int64
}

// DefaultGaugeTimeout bounds each gauge's Read.
const DefaultGaugeTimeout = 10 * time.Second

// NewGauges returns gauges that are not refreshed yet (Run or Refresh does it).
func NewGauges(log *zap.Logger, gauges ...Gauge) *Gauges {
	if log == nil {
		log = zap.NewNop()
	}
	g := &Gauges{gauges: gauges, log: log, timeout: DefaultGaugeTimeout, now: time.Now, state: map[string]*gaugeState{}}
	for _, x := range gauges {
		g.state[x.Name] = &gaugeState{}
		g.descs = append(g.descs, prometheus.NewDesc(x.Name, x.Help, nil, nil))
	}
	return g
}

// Run refreshes every gauge now and then every interval until ctx is done.
func (g *Gauges) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads every gauge once, each independently, and reports how many
// reads failed (the errors are logged).
func (g *Gauges) Refresh(ctx context.Context) (failed int) {
	for _, x := range g.gauges {
		if ctx.Err() != nil {
			return failed
		}
		rctx, cancel := context.WithTimeout(ctx, g.timeout)
		v, err := x.Read(rctx)
		cancel()
		g.mu.Lock()
		st := g.state[x.Name]
		if err != nil {
			st.failures++
		} else {
			st.value, st.ok, st.refreshed = v, true, g.now()
		}
		g.mu.Unlock()
		if err != nil {
			failed++
			if ctx.Err() == nil {
				g.log.Warn("Cannot refresh a gauge; /metrics keeps serving its last value", zap.String("gauge", x.Name), zap.Error(err))
			}
		}
	}
	return failed
}

// Describe and Collect make Gauges a Prometheus collector (Registry.Register):
// each gauge that was read at least once, with its HELP text; the time of each
// gauge's last successful refresh (dpp_gauges_last_refresh_timestamp_seconds,
// 0: never); and its failed refreshes (dpp_gauges_refresh_failures_total). A
// scrape reads the last values from memory and never runs a Read.
func (g *Gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range g.descs {
		ch <- d
	}
	ch <- refreshedDesc
	ch <- failuresDesc
}

// Collect: see Describe.
func (g *Gauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.gauges {
		if st := g.state[x.Name]; st.ok {
			ch <- prometheus.MustNewConstMetric(g.descs[i], prometheus.GaugeValue, st.value)
		}
	}
	for _, x := range g.gauges {
		var ts float64
		if st := g.state[x.Name]; st.ok {
			ts = float64(st.refreshed.UnixMilli()) / 1000
		}
		ch <- prometheus.MustNewConstMetric(refreshedDesc, prometheus.GaugeValue, ts, x.Name)
	}
	for _, x := range g.gauges {
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(g.state[x.Name].failures), x.Name)
	}
}

var (
	refreshedDesc = prometheus.NewDesc("dpp_gauges_last_refresh_timestamp_seconds",
		"When each dpp gauge was last computed (Unix time; 0: never).", []string{"gauge"}, nil)
	failuresDesc = prometheus.NewDesc("dpp_gauges_refresh_failures_total",
		"Failed computations of each dpp gauge (the details are logged).", []string{"gauge"}, nil)
)
