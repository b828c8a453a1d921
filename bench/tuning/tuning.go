// Package tuning parses the worker-tuning experiments the harness can apply to
// the baseline's worker and to bench/benchworker, so a proposed production
// setting can be measured before it is made: "sticky=30s,autoscale=true,cache=500".
package tuning

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/worker"
)

// Tuning is a set of worker options to try. The zero value changes nothing.
type Tuning struct {
	// StickyScheduleToStart is worker.Options.StickyScheduleToStartTimeout (SDK default 5s).
	StickyScheduleToStart time.Duration
	// Autoscale uses poller autoscaling for workflow and activity tasks.
	Autoscale bool
	// WorkflowPollers / ActivityPollers set a simple maximum of pollers (SDK default 2 each).
	WorkflowPollers, ActivityPollers int
	// CacheSize is worker.SetStickyWorkflowCacheSize (SDK default 10000).
	CacheSize int
	// Raw is the string it was parsed from.
	Raw string
}

// Parse reads "key=value,..." with keys sticky, autoscale, wfpollers, actpollers, cache.
func Parse(s string) (Tuning, error) {
	t := Tuning{Raw: s}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return t, fmt.Errorf("tuning %q: want key=value", kv)
		}
		var err error
		switch k {
		case "sticky":
			t.StickyScheduleToStart, err = time.ParseDuration(v)
		case "autoscale":
			t.Autoscale, err = strconv.ParseBool(v)
		case "wfpollers":
			t.WorkflowPollers, err = strconv.Atoi(v)
		case "actpollers":
			t.ActivityPollers, err = strconv.Atoi(v)
		case "cache":
			t.CacheSize, err = strconv.Atoi(v)
		default:
			return t, fmt.Errorf("tuning %q: unknown key (sticky, autoscale, wfpollers, actpollers, cache)", k)
		}
		if err != nil {
			return t, fmt.Errorf("tuning %q: %w", kv, err)
		}
	}
	return t, nil
}

// Empty reports whether t changes nothing.
func (t Tuning) Empty() bool {
	return t.StickyScheduleToStart == 0 && !t.Autoscale && t.WorkflowPollers == 0 && t.ActivityPollers == 0 && t.CacheSize == 0
}

// Apply sets t on o (and the process-wide sticky cache size).
func (t Tuning) Apply(o *worker.Options) {
	if t.StickyScheduleToStart > 0 {
		o.StickyScheduleToStartTimeout = t.StickyScheduleToStart
	}
	if t.Autoscale {
		o.WorkflowTaskPollerBehavior = worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{})
		o.ActivityTaskPollerBehavior = worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{})
	} else {
		// A fixed poller count replaces the production autoscaling (they are
		// mutually exclusive in the SDK).
		if t.WorkflowPollers > 0 {
			o.WorkflowTaskPollerBehavior = nil
			o.MaxConcurrentWorkflowTaskPollers = t.WorkflowPollers
		}
		if t.ActivityPollers > 0 {
			o.ActivityTaskPollerBehavior = nil
			o.MaxConcurrentActivityTaskPollers = t.ActivityPollers
		}
	}
	if t.CacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(t.CacheSize)
	}
}
