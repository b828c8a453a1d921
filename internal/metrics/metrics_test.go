package metrics

import (
	"strings"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	r := New()
	h := r.Handler().WithTags(map[string]string{"namespace": "default"})
	h.Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"operation": "Poll"}).Counter("temporal_request").Inc(1)
	h.Gauge("temporal-worker.slots").Update(5)
	h.Timer("temporal_activity_execution_latency").Record(1500 * time.Millisecond)
	h.Timer("temporal_activity_execution_latency").Record(500 * time.Millisecond)
	r.Counter("dpp_orders_sealed_total", nil).Inc(1)
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE temporal_request counter\n",
		`temporal_request{namespace="default"} 2` + "\n",
		`temporal_request{namespace="default",operation="Poll"} 1` + "\n",
		`temporal_worker_slots{namespace="default"} 5` + "\n",
		`temporal_activity_execution_latency_sum{namespace="default"} 2` + "\n",
		`temporal_activity_execution_latency_count{namespace="default"} 2` + "\n",
		"dpp_orders_sealed_total 1\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}
