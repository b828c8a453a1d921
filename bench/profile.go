package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SyncSummary describes the OrderSync passes the harness ran.
type SyncSummary struct {
	Passes         int     `json:"passes"`
	Failed         int     `json:"failed"`
	MeanSeconds    float64 `json:"meanSeconds"`
	MaxSeconds     float64 `json:"maxSeconds"`
	Seen           int     `json:"seen"`
	Started        int     `json:"started"`
	AlreadyStarted int     `json:"alreadyStarted"`
	Delivered      int     `json:"deliveredSignals"`
	Pages          int     `json:"pages"`
	FirstError     string  `json:"firstError,omitempty"`
}

func summariseSync(runs []syncRun) SyncSummary {
	var s SyncSummary
	var total time.Duration
	for _, r := range runs {
		if r.cancelled {
			continue
		}
		s.Passes++
		total += r.took
		s.MaxSeconds = max(s.MaxSeconds, r.took.Seconds())
		if r.err != nil {
			s.Failed++
			if s.FirstError == "" {
				s.FirstError = r.err.Error()
			}
			continue
		}
		if r.res != nil {
			s.Seen += r.res.Seen
			s.Started += r.res.Started
			s.AlreadyStarted += r.res.AlreadyStarted
			s.Delivered += r.res.Delivered
			s.Pages += r.res.Pages
		}
	}
	if s.Passes > 0 {
		s.MeanSeconds = total.Seconds() / float64(s.Passes)
	}
	return s
}

// ProfileResult points at the worker's CPU and heap profiles (bench worker only).
type ProfileResult struct {
	File     string `json:"cpuProfile"`
	HeapFile string `json:"heapProfile,omitempty"`
	Top      string `json:"top"`
	HeapTop  string `json:"heapTop,omitempty"`
	// PeakHeap* are the heap and goroutine profiles written when every order was live.
	PeakHeapFile     string `json:"peakHeapProfile,omitempty"`
	PeakHeapTop      string `json:"peakHeapTop,omitempty"`
	PeakGoroutineTop string `json:"peakGoroutineTop,omitempty"`
	// TemporalTop is `perf report` of the Temporal dev server (-perf-temporal).
	TemporalTop string `json:"temporalServerPerfTop,omitempty"`
}

// perfRecord samples the Temporal server's stacks for d and returns the top
// symbols (self time); the full report goes to the artifacts directory.
func (e *env) perfRecord(ctx context.Context, pid int, d time.Duration) string {
	data := filepath.Join(e.art, "temporal.perf.data")
	rec := exec.CommandContext(ctx, "perf", "record", "-F", "199", "-g", "-p", fmt.Sprint(pid), "-o", data, "--", "sleep", fmt.Sprint(int(d.Seconds())))
	if out, err := rec.CombinedOutput(); err != nil {
		return fmt.Sprintf("perf record failed: %v %s", err, out)
	}
	report := func(args ...string) string {
		out, _ := exec.CommandContext(context.Background(), "perf", append([]string{"report", "-i", data, "--stdio", "--percent-limit", "0.7"}, args...)...).Output()
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	self := report("--no-children", "--sort", "dso,symbol", "-g", "none")
	cum := report("--children", "--sort", "symbol", "-g", "none")
	_ = os.WriteFile(filepath.Join(e.art, "temporal.perf.txt"), []byte("# self\n"+self+"\n\n# children (cumulative)\n"+cum+"\n"), 0o644)
	// The cumulative view names the server's subsystems; runtime and kernel
	// frames are left to the file.
	var top []string
	for _, l := range strings.Split(cum, "\n") {
		if strings.Contains(l, "runtime.") || strings.Contains(l, "[k]") || strings.Contains(l, "grpc.") ||
			strings.Contains(l, "interceptor") || strings.Contains(l, "Interceptor") {
			continue
		}
		f := strings.Fields(l)
		if len(f) >= 4 {
			top = append(top, fmt.Sprintf("  %7s  %s", f[0], f[3]))
		}
		if len(top) == 30 {
			break
		}
	}
	return strings.Join(top, "\n")
}

func (e *env) profileSummary(ctx context.Context) *ProfileResult {
	cpu := filepath.Join(e.art, "worker.cpu.pprof")
	heap := filepath.Join(e.art, "worker.heap.pprof")
	if _, err := os.Stat(cpu); err != nil {
		return nil
	}
	bin := filepath.Join(e.art, "benchworker")
	// Keep the binary beside the profiles so they can be read later.
	if b, err := os.ReadFile(e.workers.bin); err == nil {
		_ = os.WriteFile(bin, b, 0o755)
	}
	top := func(args ...string) string {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, args...)...)
		cmd.Dir = e.root
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	head := func(s string, n int) string {
		lines := strings.Split(s, "\n")
		return strings.Join(lines[:min(len(lines), n)], "\n")
	}
	p := &ProfileResult{File: rel(e.root, cpu), Top: head(top("-top", "-nodecount=25", bin, cpu), 32)}
	if _, err := os.Stat(heap); err == nil {
		p.HeapFile = rel(e.root, heap)
		p.HeapTop = head(top("-top", "-nodecount=15", "-sample_index=inuse_space", bin, heap), 22)
	}
	if peak := heap + ".peak.heap"; fileExists(peak) {
		p.PeakHeapFile = rel(e.root, peak)
		p.PeakHeapTop = head(top("-top", "-nodecount=25", "-sample_index=inuse_space", bin, peak), 32)
		p.PeakGoroutineTop = head(top("-top", "-nodecount=10", bin, heap+".peak.goroutine"), 17)
		_ = os.WriteFile(filepath.Join(e.art, "worker.peak.heap.txt"), []byte(
			top("-top", "-cum", "-nodecount=80", "-sample_index=inuse_space", bin, peak)+"\n\n"+
				top("-top", "-nodecount=40", bin, heap+".peak.goroutine")+"\n"), 0o644)
	}
	_ = os.WriteFile(filepath.Join(e.art, "worker.cpu.top.txt"), []byte(top("-top", "-nodecount=60", bin, cpu)+"\n\n"+
		top("-top", "-cum", "-nodecount=60", bin, cpu)+"\n"), 0o644)
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// CryptoResult compares the envelope path with raw AES-256-GCM on one order's PII
// (internal/vault's BenchmarkSealOpenOrder and BenchmarkRawAESGCM).
type CryptoResult struct {
	EnvelopeNsPerOp float64 `json:"envelopeNsPerOrder"`
	RawNsPerOp      float64 `json:"rawAESGCMNsPerOrder"`
	Ratio           float64 `json:"ratio"`
	Output          string  `json:"output"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\w+)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

func (e *env) cryptoBench(ctx context.Context) *CryptoResult {
	e.prog.say("vault benchmarks: envelope seal+open vs raw AES-GCM")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^(BenchmarkSealOpenOrder|BenchmarkRawAESGCM)$",
		"-benchmem", "-count", "3", "./internal/vault")
	cmd.Dir = e.root
	out, err := cmd.CombinedOutput()
	r := &CryptoResult{Output: strings.TrimSpace(string(out))}
	if err != nil {
		r.Output = fmt.Sprintf("%v: %s", err, r.Output)
		return r
	}
	best := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		if cur, ok := best[m[1]]; !ok || v < cur {
			best[m[1]] = v
		}
	}
	r.EnvelopeNsPerOp, r.RawNsPerOp = best["BenchmarkSealOpenOrder"], best["BenchmarkRawAESGCM"]
	if r.RawNsPerOp > 0 {
		r.Ratio = r.EnvelopeNsPerOp / r.RawNsPerOp
	}
	return r
}
