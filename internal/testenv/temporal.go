package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/devstack"
)

// EnvTemporalAddress names the environment variable that points the tests at an already running
// Temporal server (host:port, namespace "default") instead of starting a dev server. That server
// must have the search attributes of TemporalSearchAttributes registered.
const EnvTemporalAddress = "DPP_TEST_TEMPORAL_ADDRESS"

// TemporalSearchAttributes are the custom search attributes the dev server registers at start, in
// the `--search-attribute NAME=Type` form. workflows.SearchAttributes is the table; this copy
// exists because workflows' own tests import testenv, and names_test.go keeps it (and
// scripts/dev-stack and docker-compose.yml) equal to the table.
var TemporalSearchAttributes = []string{
	"AmazonOrderId=Keyword",
	"OrderStage=Keyword",
	"PurgeDueAt=Datetime",
	"ComplianceDeadline=Datetime",
	"OrderProblem=Keyword",
}

// Temporal is a Temporal server the tests can use.
type Temporal struct {
	// Address is the frontend's host:port, for client.Options.HostPort.
	Address string
	// Namespace is the namespace to use ("default").
	Namespace string

	stopOnce sync.Once
	stop     func()
}

// Stop shuts the server down (if this process started it) and removes its files. It is safe to
// call more than once and on a nil *Temporal.
func (t *Temporal) Stop() {
	if t == nil || t.stop == nil {
		return
	}
	t.stopOnce.Do(t.stop)
}

// StartTemporal starts a Temporal dev server (bin/temporal of this repository, never a download) on
// free loopback ports, with a fresh SQLite file in WAL mode, no Web UI and the project's search
// attributes registered: devstack's arguments, the ones the benchmark runs too. It returns once
// the "default" namespace answers. If DPP_TEST_TEMPORAL_ADDRESS is set it checks that server
// instead and returns it; Stop is then a no-op.
func StartTemporal(ctx context.Context) (*Temporal, error) {
	if addr := strings.TrimSpace(os.Getenv(EnvTemporalAddress)); addr != "" {
		if err := devstack.WaitTemporal(ctx, addr, "default", nil, 90*time.Second); err != nil {
			return nil, fmt.Errorf("testenv: Temporal at %s=%s: %w", EnvTemporalAddress, addr, err)
		}
		return &Temporal{Address: addr, Namespace: "default"}, nil
	}

	dir, err := os.MkdirTemp("", "dpp-temporal-")
	if err != nil {
		return nil, fmt.Errorf("testenv: temporal: %w", err)
	}
	srv, err := devstack.NewTemporal(devstack.TemporalOptions{Dir: dir, SearchAttributes: TemporalSearchAttributes})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return &Temporal{Address: srv.Address, Namespace: srv.Namespace, stop: guarded(srv, dir)}, nil
}

// guarded returns the stop of a component this binary started in dir: stop it, remove dir. Linux
// SIGKILLs the component when this binary dies (devstack starts it so); an orphan guard also
// interrupts it elsewhere and removes dir either way.
func guarded(srv interface {
	Pid() int
	Stop()
}, dir string) func() {
	disarm := startOrphanGuard(srv.Pid(), "INT", dir)
	return func() {
		disarm()
		srv.Stop()
		_ = os.RemoveAll(dir)
	}
}

var sharedTemporal = shared[*Temporal]{name: "the Temporal dev server", timeout: 3 * time.Minute, start: StartTemporal}

// TemporalForTest returns the test binary's shared Temporal server, starting it on first use. It
// fails the test (it never skips) if the server cannot start. Call StopTemporal (or StopAll) from
// TestMain after m.Run; if a binary forgets, the server still exits when the binary does.
func TemporalForTest(t testing.TB) *Temporal { t.Helper(); return sharedTemporal.get(t) }

// StopTemporal stops the shared server of TemporalForTest, if one was started. A later call of
// TemporalForTest starts a new one.
func StopTemporal() { sharedTemporal.stop() }

// TaskQueue returns a task queue name unique to this test (and this run), so that workers of
// different tests sharing one server never take each other's tasks.
func TaskQueue(t testing.TB) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 80 {
		name = name[:80]
	}
	return "t-" + name + "-" + uniqueSuffixHex(4)
}

func uniqueSuffixHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// startOrphanGuard starts a tiny sh process that blocks reading a pipe whose only writer is this
// process. When this process exits for any reason (a panic, a `go test -timeout`, a test binary
// without TestMain), the kernel closes the pipe and the guard sends SIG<signal> to pid, then SIGKILL
// if it is still there after ten seconds, and finally removes dir (if not empty) that the process
// used. The returned func disarms the guard before a normal stop.
func startOrphanGuard(pid int, signal, dir string) (disarm func()) {
	if runtime.GOOS == "windows" {
		return func() {}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	const script = `cat >/dev/null
kill -$2 $1 2>/dev/null || exit 0
i=0
while kill -0 $1 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL $1 2>/dev/null
if [ -n "$3" ]; then sleep 0.2; rm -rf "$3"; fi
exit 0`
	guard := exec.Command("/bin/sh", "-c", script, "dpp-testenv-guard", strconv.Itoa(pid), signal, dir)
	guard.Stdin = r
	if err := guard.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return func() {}
	}
	_ = r.Close()
	// w stays open (it is close-on-exec, so no other child inherits it) until disarm.
	return func() {
		_ = guard.Process.Kill()
		_ = guard.Wait()
		_ = w.Close()
	}
}
