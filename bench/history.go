package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
)

// Activity type names, as the worker registers them (methods of activities.Activities).
const (
	actSeal    = "FetchAndSeal"
	actInvoice = "IssueInvoice"
	actPurge   = "PurgeOrder"
)

// orderHistory is what the harness reads from one workflow's history.
type orderHistory struct {
	id         string
	events     int
	bytes      int // proto size of all events
	started    time.Time
	sealed     time.Time // ActivityTaskCompleted of FetchAndSeal
	invoiced   time.Time
	purged     time.Time
	fired      time.Time // the TimerFired that led to the purge (zero if none)
	closed     enumspb.EventType
	closedAt   time.Time
	signals    int
	timers     int
	canceled   int
	actFails   int // ActivityTaskFailed / TimedOut events (final failures of an attempt chain)
	busy       [][2]time.Time
	shape      []string // event types, short names
	piiHits    int
	piiExcerpt string
}

// analyse reads one workflow's history: timings, counts, busy spans, and whether
// any event (protobuf wire form: payloads, failures, search attributes as stored)
// contains the marker.
func analyse(ctx context.Context, c client.Client, id, runID string, markers [][]byte) (*orderHistory, error) {
	h := &orderHistory{id: id}
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	actType := map[int64]string{}
	pendingActs := 0
	busy := false
	var open time.Time
	openSpan := func(t time.Time) {
		if !busy {
			busy, open = true, t
		}
	}
	closeSpan := func(t time.Time) {
		if busy {
			h.busy = append(h.busy, [2]time.Time{open, t})
			busy = false
		}
	}
	var lastFired time.Time
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		h.events++
		b, err := proto.Marshal(ev)
		if err != nil {
			return nil, err
		}
		h.bytes += len(b)
		for _, m := range markers {
			if i := bytes.Index(b, m); i >= 0 {
				h.piiHits++
				if h.piiExcerpt == "" {
					lo, hi := max(i-80, 0), min(i+40, len(b))
					h.piiExcerpt = fmt.Sprintf("%s event %d: ...%q...", ev.GetEventType(), ev.GetEventId(), b[lo:hi])
				}
			}
		}
		t := ev.GetEventTime().AsTime()
		h.shape = append(h.shape, shortType(ev.GetEventType()))
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			h.started = t
			openSpan(t)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			h.signals++
			openSpan(t)
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			h.timers++
			if pendingActs == 0 {
				closeSpan(t)
			}
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			lastFired = t
			openSpan(t)
		case enumspb.EVENT_TYPE_TIMER_CANCELED:
			h.canceled++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			pendingActs++
			actType[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			if actType[ev.GetEventId()] == actPurge {
				h.fired = lastFired
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			pendingActs--
			switch actType[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
			case actSeal:
				h.sealed = t
			case actInvoice:
				h.invoiced = t
			case actPurge:
				h.purged = t
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			pendingActs--
			h.actFails++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			pendingActs--
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			h.closed, h.closedAt = ev.GetEventType(), t
			closeSpan(t)
		}
	}
	return h, nil
}

// shortType abbreviates EVENT_TYPE_WORKFLOW_TASK_COMPLETED to WorkflowTaskCompleted.
func shortType(t enumspb.EventType) string {
	s := strings.TrimPrefix(t.String(), "EVENT_TYPE_")
	var b strings.Builder
	for _, w := range strings.Split(strings.ToLower(s), "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return strings.ReplaceAll(b.String(), "WorkflowExecution", "Wf")
}

// analyseAll reads many histories with a few in flight at once.
func analyseAll(ctx context.Context, c client.Client, ids []string, markers [][]byte, progress func(done int)) ([]*orderHistory, []error) {
	out := make([]*orderHistory, len(ids))
	var errs []error
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	done := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				h, err := analyse(ctx, c, ids[i], "", markers)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				out[i] = h
				done++
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range ids {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return out, errs
}

// ---------------------------------------------------------------- statistics

// Dist is a latency distribution in seconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func dist(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := func(p float64) float64 { // nearest rank
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Dist{N: len(s), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1]}
}

// busySpans merges the orders' busy spans: the wall-clock intervals during which
// at least one order had work in progress (between a trigger — start, signal,
// timer — and the next point where it waited on a timer or finished), so idle
// waits on timers do not count.
func busySpans(hs []*orderHistory) [][2]time.Time {
	var spans [][2]time.Time
	for _, h := range hs {
		if h != nil {
			spans = append(spans, h.busy...)
		}
	}
	if len(spans) == 0 {
		return nil
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0].Before(spans[j][0]) })
	out := [][2]time.Time{spans[0]}
	for _, s := range spans[1:] {
		cur := &out[len(out)-1]
		if s[0].After(cur[1]) {
			out = append(out, s)
		} else if s[1].After(cur[1]) {
			cur[1] = s[1]
		}
	}
	return out
}

// busyUnion is the total busy time, and the first and last instants of work.
func busyUnion(hs []*orderHistory) (time.Duration, time.Time, time.Time) {
	spans := busySpans(hs)
	if len(spans) == 0 {
		return 0, time.Time{}, time.Time{}
	}
	var total time.Duration
	for _, s := range spans {
		total += s[1].Sub(s[0])
	}
	return total, spans[0][0], spans[len(spans)-1][1]
}

// Stage summarises a set of order histories.
type Stage struct {
	Orders           int         `json:"orders"`
	Completed        int         `json:"completed"`
	BusySeconds      float64     `json:"busySeconds"`
	MakespanSeconds  float64     `json:"makespanSeconds"`
	OrdersPerSecond  float64     `json:"ordersPerSecond"`
	StartToSealed    Dist        `json:"startToSealedSeconds"`
	StartToInvoiced  Dist        `json:"startToInvoicedSeconds"`
	StartToPurged    Dist        `json:"startToPurgedSeconds"`
	TimerToPurged    Dist        `json:"retentionTimerToPurgedSeconds"`
	EventsMean       float64     `json:"historyEventsPerOrder"`
	EventsMin        int         `json:"historyEventsMin"`
	EventsMax        int         `json:"historyEventsMax"`
	EventsHistogram  map[int]int `json:"historyEventsHistogram"`
	HistoryBytesMean float64     `json:"historyBytesPerOrder"`
	SignalsMean      float64     `json:"signalsPerOrder"`
	TimersMean       float64     `json:"timersPerOrder"`
	// Shapes are the most common event sequences, most frequent first.
	Shapes []Shape `json:"historyShapes"`
}

// Shape is one sequence of history event types and how many orders had it.
type Shape struct {
	Orders int    `json:"orders"`
	Events int    `json:"events"`
	Types  string `json:"eventTypes"`
}

func summarise(hs []*orderHistory) Stage {
	st := Stage{Orders: len(hs), EventsHistogram: map[int]int{}, EventsMin: -1}
	var sealed, invoiced, purged, fired []float64
	var events, bytes, signals, timers int
	n := 0
	for _, h := range hs {
		if h == nil {
			continue
		}
		n++
		if h.closed == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
			st.Completed++
		}
		events += h.events
		bytes += h.bytes
		signals += h.signals
		timers += h.timers
		st.EventsHistogram[h.events]++
		if st.EventsMin < 0 || h.events < st.EventsMin {
			st.EventsMin = h.events
		}
		st.EventsMax = max(st.EventsMax, h.events)
		if !h.sealed.IsZero() {
			sealed = append(sealed, h.sealed.Sub(h.started).Seconds())
		}
		if !h.invoiced.IsZero() {
			invoiced = append(invoiced, h.invoiced.Sub(h.started).Seconds())
		}
		if !h.purged.IsZero() {
			purged = append(purged, h.purged.Sub(h.started).Seconds())
			if !h.fired.IsZero() {
				fired = append(fired, h.purged.Sub(h.fired).Seconds())
			}
		}
	}
	if n > 0 {
		st.EventsMean = float64(events) / float64(n)
		st.HistoryBytesMean = float64(bytes) / float64(n)
		st.SignalsMean = float64(signals) / float64(n)
		st.TimersMean = float64(timers) / float64(n)
	}
	shapes := map[string]*Shape{}
	for _, h := range hs {
		if h == nil {
			continue
		}
		k := strings.Join(h.shape, " ")
		if shapes[k] == nil {
			shapes[k] = &Shape{Events: len(h.shape), Types: k}
		}
		shapes[k].Orders++
	}
	for _, v := range shapes {
		st.Shapes = append(st.Shapes, *v)
	}
	sort.Slice(st.Shapes, func(i, j int) bool { return st.Shapes[i].Orders > st.Shapes[j].Orders })
	st.Shapes = st.Shapes[:min(len(st.Shapes), 4)]
	st.StartToSealed, st.StartToInvoiced, st.StartToPurged, st.TimerToPurged = dist(sealed), dist(invoiced), dist(purged), dist(fired)
	busy, first, last := busyUnion(hs)
	st.BusySeconds = busy.Seconds()
	st.MakespanSeconds = last.Sub(first).Seconds()
	if busy > 0 {
		st.OrdersPerSecond = float64(st.Completed) / busy.Seconds()
	}
	return st
}
