package metrics

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

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
// values (WriteTo). A failed refresh of a gauge keeps its last value, counts a
// failure and logs the error; its last-refresh timestamp shows how stale it is.
// The zero value is not usable; use NewGauges.
type Gauges struct {
	gauges  []Gauge
	log     *zap.Logger
	timeout time.Duration
	now     func() time.Time

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

// WriteTo writes the last values in the Prometheus text format: each gauge that
// was read at least once, then the time of each gauge's last successful refresh
// (dpp_gauges_last_refresh_timestamp_seconds) and its failed refreshes
// (dpp_gauges_refresh_failures_total).
func (g *Gauges) WriteTo(w io.Writer) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, x := range g.gauges {
		if st := g.state[x.Name]; st.ok {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", x.Name, x.Help, x.Name, x.Name, st.value)
		}
	}
	b.WriteString("# HELP dpp_gauges_last_refresh_timestamp_seconds When each dpp gauge was last computed (Unix time; 0: never).\n" +
		"# TYPE dpp_gauges_last_refresh_timestamp_seconds gauge\n")
	for _, x := range g.gauges {
		var ts float64
		if st := g.state[x.Name]; st.ok {
			ts = float64(st.refreshed.UnixMilli()) / 1000
		}
		fmt.Fprintf(&b, "dpp_gauges_last_refresh_timestamp_seconds{gauge=%q} %g\n", x.Name, ts)
	}
	b.WriteString("# HELP dpp_gauges_refresh_failures_total Failed computations of each dpp gauge (the details are logged).\n" +
		"# TYPE dpp_gauges_refresh_failures_total counter\n")
	for _, x := range g.gauges {
		fmt.Fprintf(&b, "dpp_gauges_refresh_failures_total{gauge=%q} %d\n", x.Name, g.state[x.Name].failures)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
