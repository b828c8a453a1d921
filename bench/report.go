package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plusranger/dpp/internal/devstack"
)

// Result is the whole run, written as JSON.
type Result struct {
	Mode        string            `json:"mode"`
	StartedAt   string            `json:"startedAt"`
	WallSeconds float64           `json:"wallSeconds"`
	Machine     Machine           `json:"machine"`
	Config      Config            `json:"config"`
	Baseline    *BaselineResult   `json:"baseline,omitempty"`
	Pipeline    *PipelineResult   `json:"pipeline,omitempty"`
	Targets     []Target          `json:"targets,omitempty"`
	Invariants  []Invariant       `json:"invariants,omitempty"`
	Chaos       *ChaosReport      `json:"chaos,omitempty"`
	Crypto      *CryptoResult     `json:"crypto,omitempty"`
	Profile     *ProfileResult    `json:"workerProfile,omitempty"`
	Notes       []string          `json:"notes,omitempty"`
	Extra       map[string]string `json:"extra,omitempty"`

	// Notifications is the notification phase (phase_notifications.go).
	Notifications *NotificationsResult `json:"notifications,omitempty"`
}

type Machine struct {
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memoryGiB"`
	CPUModel  string  `json:"cpuModel"`
	GoVersion string  `json:"goVersion"`
	OS        string  `json:"os"`
	Kernel    string  `json:"kernel"`
	Postgres  string  `json:"postgres"`
	Temporal  string  `json:"temporalCLI"`
}

type Config struct {
	Orders        int    `json:"orders"`
	Worker        string `json:"worker"`
	DeliveryAfter string `json:"sandboxDeliveryAfter"`
	Retention     string `json:"piiRetention"`
	SyncEvery     string `json:"pauseBetweenSyncPasses"`
	Deadline      string `json:"deadline"`
	Seed          int64  `json:"seed"`
	LogLevel      string `json:"workerLogLevel"`
	PerfTemporal  string `json:"perfTemporal,omitempty"`
	Notifications int    `json:"notificationOrders,omitempty"`
	WorkerEnv     string `json:"extraWorkerEnv,omitempty"`
}

type BaselineResult struct {
	Stage
	TaskQueue     string  `json:"taskQueue"`
	IntakeSeconds float64 `json:"intakeSeconds"`
	CPU           CPU     `json:"cpu"`
	BusyCPU       CPU     `json:"cpuDuringBusyTime"`
	intake        time.Duration
}

type PipelineResult struct {
	Stage
	WorkerKind       string           `json:"worker"`
	Makespan         float64          `json:"wallSecondsUntilAllPurged"`
	RatioToBaseline  float64          `json:"ratioToBaseline"`
	KMS              map[string]int64 `json:"kmsCallsByOperation"`
	KMSCallsPerOrder float64          `json:"kmsCallsPerOrder"`
	KMSProxyErrors   int64            `json:"kmsProxyErrors"`
	DB               DBPeak           `json:"databaseAtPeak"`
	PeakWorkerRSSMiB float64          `json:"peakWorkerRSSMiB"`
	RSSAtPeakMiB     float64          `json:"workerRSSWhenAllLiveMiB"`
	DeliveryPaths    map[string]int   `json:"deliveryPaths"`
	Sync             SyncSummary      `json:"orderSync"`
	CPU              CPU              `json:"cpu"`
	BusyCPU          CPU              `json:"cpuDuringBusyTime"`
	InvoiceKinds     map[string]int   `json:"invoiceKinds"`
}

type Target struct {
	Name   string  `json:"name"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

type Invariant struct {
	Name       string `json:"name"`
	Checked    int    `json:"checked"`
	Violations int    `json:"violations"`
	Detail     string `json:"detail,omitempty"`
}

func newResult(o options) *Result {
	mode := "bench"
	if o.chaos {
		mode = "chaos"
	}
	return &Result{Mode: mode, StartedAt: time.Now().UTC().Format(time.RFC3339), Machine: machine(),
		Config: Config{Orders: o.orders, Worker: o.workerKind, SyncEvery: o.syncEvery.String(),
			Deadline: o.deadline.String(), Seed: o.seed, LogLevel: o.logLevel, PerfTemporal: o.perfTemporal.String(),
			WorkerEnv: o.workerEnv, Notifications: o.notifications}}
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb float64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %f kB", &kb); err == nil {
				m.MemoryGiB = float64(int(kb/1024/1024*10+0.5)) / 10
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("psql", "-XAtq", "postgres://postgres@127.0.0.1:5432/postgres", "-c", "show server_version").Output(); err == nil {
		m.Postgres = strings.TrimSpace(string(out))
	}
	if root, err := devstack.RepoRoot(); err == nil {
		if out, err := exec.Command(filepath.Join(root, "bin", "temporal"), "--version").Output(); err == nil {
			m.Temporal = strings.TrimSpace(string(out))
		}
	}
	return m
}

func (r *Result) evaluateTargets() {
	p := r.Pipeline
	if p == nil || r.Mode != "bench" { // chaos numbers include restarts and retries
		return
	}
	if r.Baseline != nil {
		// Issue 8: at least 0.85 of the no-op baseline (the project aims at 0.95).
		r.Targets = append(r.Targets, Target{Name: "orders/s vs baseline", Target: ">= 0.85", Value: p.RatioToBaseline, Met: p.RatioToBaseline >= 0.85})
	}
	if p.Completed > 0 {
		// Issue 8: a third below the 33 ms/order its rerun measured.
		ms := msPerOrder(p.BusyCPU, p.Completed, "worker")
		r.Targets = append(r.Targets, Target{Name: "worker CPU ms per order (busy time)", Target: "<= 22", Value: ms, Met: ms <= 22})
	}
	r.Targets = append(r.Targets,
		// Rounded to two decimals: a process's one-off calls (its codec key) are
		// not a per-order cost.
		Target{Name: "KMS calls per order", Target: "<= 2", Value: p.KMSCallsPerOrder, Met: math.Round(p.KMSCallsPerOrder*100) <= 200},
		Target{Name: "history events per order (mean)", Target: "<= 40", Value: p.EventsMean, Met: p.EventsMean <= 40},
		Target{Name: "history events per order (max)", Target: "<= 40", Value: float64(p.EventsMax), Met: p.EventsMax <= 40},
	)
	if r.Mode == "bench" {
		t := Target{Name: fmt.Sprintf("peak worker RSS, MiB (%d orders, peak %d live)", r.Config.Orders, p.DB.LiveOrders),
			Target: "< 200", Value: p.PeakWorkerRSSMiB, Met: p.PeakWorkerRSSMiB < 200}
		r.Targets = append(r.Targets, t)
	}
	if c := r.Crypto; c != nil && c.Ratio > 0 {
		r.Targets = append(r.Targets, Target{Name: "envelope seal+open vs raw AES-GCM", Target: "<= 3x", Value: c.Ratio, Met: c.Ratio <= 3})
	}
}

// evaluateNotificationTargets adds the notification phase's one target: every
// notified order sealed (its orders/s is reported, not judged: issue 14 sets
// no figure).
func (r *Result) evaluateNotificationTargets() {
	n := r.Notifications
	if n == nil || r.Mode != "bench" {
		return
	}
	r.Targets = append(r.Targets,
		Target{Name: "ORDER_CHANGE orders sealed", Target: fmt.Sprintf("= %d", n.Orders), Value: float64(n.Sealed), Met: n.Sealed == n.Orders})
	if n.Error != "" {
		r.Notes = append(r.Notes, "notification phase: "+n.Error)
	}
}

func (r *Result) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func f1(x float64) string { return fmt.Sprintf("%.1f", x) }
func f2(x float64) string { return fmt.Sprintf("%.2f", x) }

func distCell(d Dist) string {
	if d.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f", d.P50, d.P95, d.P99)
}

// print writes the one table.
func (r *Result) print(w io.Writer, out string) {
	m := r.Machine
	fmt.Fprintf(w, "\n== dpp %s: %d orders, %s worker  (%d cores, %.1f GiB, %s, %s, PostgreSQL %s)\n",
		r.Mode, r.Config.Orders, r.Config.Worker, m.Cores, m.MemoryGiB, m.CPUModel, m.GoVersion, m.Postgres)
	fmt.Fprintf(w, "   sandbox delivery after %s, PII retention %s, OrderSync pause %s; wall time %.0fs\n\n",
		r.Config.DeliveryAfter, r.Config.Retention, r.Config.SyncEvery, r.WallSeconds)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tpipeline\tbaseline (no-op activities)")
	b := r.Baseline
	bv := func(f func(*BaselineResult) string) string {
		if b == nil {
			return "-"
		}
		return f(b)
	}
	if p := r.Pipeline; p != nil {
		fmt.Fprintf(tw, "orders completed\t%d / %d\t%s\n", p.Completed, p.Orders, bv(func(b *BaselineResult) string { return fmt.Sprintf("%d / %d", b.Completed, b.Orders) }))
		fmt.Fprintf(tw, "orders/s (busy time)\t%s (busy %.0fs)\t%s\n", f1(p.OrdersPerSecond), p.BusySeconds,
			bv(func(b *BaselineResult) string {
				return fmt.Sprintf("%s (busy %.0fs)", f1(b.OrdersPerSecond), b.BusySeconds)
			}))
		if b != nil {
			fmt.Fprintf(tw, "ratio to baseline\t%s\t\n", f2(p.RatioToBaseline))
		}
		fmt.Fprintf(tw, "start -> sealed p50/p95/p99 s\t%s\t%s\n", distCell(p.StartToSealed), bv(func(b *BaselineResult) string { return distCell(b.StartToSealed) }))
		fmt.Fprintf(tw, "start -> invoiced p50/p95/p99 s\t%s\t%s\n", distCell(p.StartToInvoiced), bv(func(b *BaselineResult) string { return distCell(b.StartToInvoiced) }))
		fmt.Fprintf(tw, "start -> purged p50/p95/p99 s (incl. delivery + retention)\t%s\t%s\n", distCell(p.StartToPurged), bv(func(b *BaselineResult) string { return distCell(b.StartToPurged) }))
		fmt.Fprintf(tw, "retention timer -> purged p50/p95/p99 s\t%s\t%s\n", distCell(p.TimerToPurged), bv(func(b *BaselineResult) string { return distCell(b.TimerToPurged) }))
		fmt.Fprintf(tw, "history events per order (mean, min-max)\t%s (%d-%d)\t%s\n", f1(p.EventsMean), p.EventsMin, p.EventsMax,
			bv(func(b *BaselineResult) string {
				return fmt.Sprintf("%s (%d-%d)", f1(b.EventsMean), b.EventsMin, b.EventsMax)
			}))
		fmt.Fprintf(tw, "signals per order (delivered)\t%s\t%s\n", f2(p.SignalsMean), bv(func(b *BaselineResult) string { return f2(b.SignalsMean) }))
		fmt.Fprintf(tw, "history bytes per order\t%.0f\t%s\n", p.HistoryBytesMean, bv(func(b *BaselineResult) string { return fmt.Sprintf("%.0f", b.HistoryBytesMean) }))
		fmt.Fprintf(tw, "KMS calls per order\t%s %s\t\n", f2(p.KMSCallsPerOrder), kmsCell(p.KMS))
		fmt.Fprintf(tw, "invoices (full / simplified)\t%d / %d\t\n", p.InvoiceKinds["full"], p.InvoiceKinds["simplified"])
		fmt.Fprintf(tw, "database rows per live order\t%s (peak %d live)\t\n", f1(p.DB.RowsPerLiveOrder), p.DB.LiveOrders)
		fmt.Fprintf(tw, "database bytes per live order\t%.0f tables, %.0f database growth\t\n", p.DB.BytesPerLiveOrder, p.DB.DBBytesPerLive)
		atPeak := ""
		if p.RSSAtPeakMiB > 0 {
			atPeak = fmt.Sprintf(" (%s MiB when all orders live)", f1(p.RSSAtPeakMiB))
		}
		fmt.Fprintf(tw, "peak worker RSS (VmHWM)\t%s MiB%s\t\n", f1(p.PeakWorkerRSSMiB), atPeak)
		fmt.Fprintf(tw, "OrderSync passes (mean / max s)\t%d (%.1f / %.1f), %d failed\t\n", p.Sync.Passes, p.Sync.MeanSeconds, p.Sync.MaxSeconds, p.Sync.Failed)
		fmt.Fprintf(tw, "CPU s in busy time: temporal / worker / postgres / kms / bench\t%s\t%s\n", cpuCell(p.BusyCPU), bv(func(b *BaselineResult) string { return cpuCell(b.BusyCPU) }))
		fmt.Fprintf(tw, "CPU ms per order: temporal / worker / postgres\t%s\t%s\n", perOrder(p.BusyCPU, p.Completed), bv(func(b *BaselineResult) string { return perOrder(b.BusyCPU, b.Completed) }))
		fmt.Fprintf(tw, "machine busy during busy time\t%.0f%% of %.0f core-s\t%s\n", p.BusyCPU.MachineBusyShare*100, p.BusyCPU.MachineCapacity,
			bv(func(b *BaselineResult) string {
				return fmt.Sprintf("%.0f%% of %.0f core-s", b.BusyCPU.MachineBusyShare*100, b.BusyCPU.MachineCapacity)
			}))
	}
	if n := r.Notifications; n != nil {
		fmt.Fprintf(tw, "ORDER_CHANGE intake: orders sealed\t%d / %d (notifications recorded %d)\t\n", n.Sealed, n.Orders, n.Recorded)
		pace := "all at once"
		if n.Rate > 0 {
			pace = fmt.Sprintf("%g/s", n.Rate)
		}
		fmt.Fprintf(tw, "ORDER_CHANGE intake: orders/s, notification sent -> sealed\t%s (sent %s, in %.1fs)\t\n", f1(n.OrdersPerSecond), pace, n.SendSeconds)
		fmt.Fprintf(tw, "ORDER_CHANGE intake: sent -> sealed p50/p95/max s\t%s / %s / %s\t\n", f2(n.SentToSealed.P50), f2(n.SentToSealed.P95), f2(n.SentToSealed.Max))
	}
	if c := r.Crypto; c != nil {
		fmt.Fprintf(tw, "envelope seal+open / raw AES-GCM (one order)\t%.0f ns / %.0f ns = %.2fx\t\n", c.EnvelopeNsPerOp, c.RawNsPerOp, c.Ratio)
	}
	tw.Flush()
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range r.Targets {
			mark := "MET "
			if !t.Met {
				mark = "MISS"
			}
			fmt.Fprintf(w, "  [%s] %-55s %10.2f  (target %s)\n", mark, t.Name, t.Value, t.Target)
		}
	}
	if c := r.Chaos; c != nil {
		fmt.Fprintln(w, "\n(chaos: the figures above include the outages and restarts; they are not a benchmark)")
		fmt.Fprintln(w, "\nfaults injected:")
		for _, f := range c.Faults {
			fmt.Fprintf(w, "  %7.1fs  %s\n", f.AtSeconds, f.What)
		}
	}
	if len(r.Invariants) > 0 {
		fmt.Fprintln(w, "\ninvariants:")
		for _, v := range r.Invariants {
			mark := "ok  "
			if v.Violations > 0 {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  [%s] %-70s checked %5d  violations %d", mark, v.Name, v.Checked, v.Violations)
			if v.Detail != "" {
				fmt.Fprintf(w, "  (%s)", v.Detail)
			}
			fmt.Fprintln(w)
		}
	}
	if p := r.Profile; p != nil && p.Top != "" {
		fmt.Fprintf(w, "\nworker CPU profile (%s), top functions:\n%s\n", p.File, p.Top)
	}
	if p := r.Profile; p != nil && p.PeakHeapTop != "" {
		fmt.Fprintf(w, "\nworker heap when all orders were live (%s):\n%s\n", p.PeakHeapFile, p.PeakHeapTop)
	}
	if p := r.Profile; p != nil && p.TemporalTop != "" {
		fmt.Fprintf(w, "\nTemporal server (perf, cumulative, first %s of the pipeline):\n%s\n", r.Config.PerfTemporal, p.TemporalTop)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "\nresult: %s\n", out)
}

func kmsCell(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func perOrder(c CPU, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", msPerOrder(c, n, "temporal"), msPerOrder(c, n, "worker"), msPerOrder(c, n, "postgres"))
}

func cpuCell(c CPU) string {
	g := func(k string) float64 {
		for name, v := range c.ByProcess {
			if strings.HasPrefix(name, k) {
				return v
			}
		}
		return 0
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f / %.0f", g("temporal"), g("worker"), g("postgres"), g("local-kms"), g("bench"))
}

// msPerOrder is the CPU milliseconds per order of the process whose name
// starts with prefix.
func msPerOrder(c CPU, n int, prefix string) float64 {
	for name, v := range c.ByProcess {
		if strings.HasPrefix(name, prefix) {
			return v * 1000 / float64(n)
		}
	}
	return 0
}
