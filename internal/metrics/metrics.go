// Package metrics is a small Prometheus-text registry that the Temporal SDK
// reports into (it implements client.MetricsHandler) and that our own code
// updates; the worker serves it on /metrics. It avoids pulling a metrics stack
// into the worker for a few dozen series.
package metrics

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
)

type kind int

const (
	counter kind = iota
	gauge
	timer
)

type series struct {
	kind  kind
	value float64 // counter total or gauge value; timer: sum of seconds
	count int64   // timer observations
}

// Registry holds every series. The zero value is not usable; use New.
type Registry struct {
	mu     sync.Mutex
	series map[string]map[string]*series // name -> rendered labels -> series
	kinds  map[string]kind
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{series: map[string]map[string]*series{}, kinds: map[string]kind{}}
}

// Handler returns the registry as a Temporal SDK metrics handler.
func (r *Registry) Handler() client.MetricsHandler { return handler{r: r} }

// Counter returns a counter of ours.
func (r *Registry) Counter(name string, tags map[string]string) client.MetricsCounter {
	return handler{r: r, tags: tags}.Counter(name)
}

// Gauge returns a gauge of ours.
func (r *Registry) Gauge(name string, tags map[string]string) client.MetricsGauge {
	return handler{r: r, tags: tags}.Gauge(name)
}

func (r *Registry) get(name string, k kind, tags map[string]string) *series {
	name = sanitize(name)
	labels := renderLabels(tags)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[name]; !ok {
		r.kinds[name] = k
		r.series[name] = map[string]*series{}
	}
	s, ok := r.series[name][labels]
	if !ok {
		s = &series{kind: r.kinds[name]}
		r.series[name][labels] = s
	}
	return s
}

func (r *Registry) add(s *series, f func(*series)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(s)
}

// WriteTo writes every series in the Prometheus text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(r.series)) {
		switch r.kinds[name] {
		case counter:
			fmt.Fprintf(&b, "# TYPE %s counter\n", name)
		case gauge:
			fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
		case timer:
			fmt.Fprintf(&b, "# TYPE %s summary\n", name)
		}
		byLabels := r.series[name]
		for _, labels := range slices.Sorted(maps.Keys(byLabels)) {
			s := byLabels[labels]
			if s.kind == timer {
				fmt.Fprintf(&b, "%s_sum%s %g\n%s_count%s %d\n", name, labels, s.value, name, labels, s.count)
				continue
			}
			fmt.Fprintf(&b, "%s%s %g\n", name, labels, s.value)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

type handler struct {
	r    *Registry
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return handler{r: h.r, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter {
	s := h.r.get(name, counter, h.tags)
	return counterFunc(func(d int64) { h.r.add(s, func(s *series) { s.value += float64(d) }) })
}

func (h handler) Gauge(name string) client.MetricsGauge {
	s := h.r.get(name, gauge, h.tags)
	return gaugeFunc(func(v float64) { h.r.add(s, func(s *series) { s.value = v }) })
}

func (h handler) Timer(name string) client.MetricsTimer {
	s := h.r.get(name, timer, h.tags)
	return timerFunc(func(d time.Duration) {
		h.r.add(s, func(s *series) { s.value += d.Seconds(); s.count++ })
	})
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// sanitize makes a metric or label name valid for Prometheus.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

func renderLabels(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	parts := make([]string, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(tags[k])
		parts = append(parts, fmt.Sprintf(`%s="%s"`, sanitize(k), v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
