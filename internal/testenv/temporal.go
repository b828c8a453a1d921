package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
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
// a free loopback port, with a fresh SQLite file in WAL mode, no Web UI and the project's search
// attributes registered. It returns once the "default" namespace answers. If
// DPP_TEST_TEMPORAL_ADDRESS is set it checks that server instead and returns it; Stop is then a
// no-op.
func StartTemporal(ctx context.Context) (*Temporal, error) {
	if addr := strings.TrimSpace(os.Getenv(EnvTemporalAddress)); addr != "" {
		if err := waitTemporalReady(ctx, addr, "default", nil); err != nil {
			return nil, fmt.Errorf("testenv: Temporal at %s=%s: %w", EnvTemporalAddress, addr, err)
		}
		return &Temporal{Address: addr, Namespace: "default"}, nil
	}

	exe, err := repoBinary("temporal")
	if err != nil {
		return nil, err
	}
	hostPort, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dpp-temporal-")
	if err != nil {
		return nil, fmt.Errorf("testenv: temporal: %w", err)
	}

	args := []string{
		"--sqlite-pragma", "journal_mode=wal",
		"--sqlite-pragma", "synchronous=normal",
	}
	for _, sa := range TemporalSearchAttributes {
		args = append(args, "--search-attribute", sa)
	}
	// Update is enabled by default in the server that CLI v1.5.1 embeds (1.29.1,
	// frontend.enableUpdateWorkflowExecution defaults to true), so no dynamic config is needed.

	output := &tailBuffer{max: 64 << 10}
	startCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// StartDevServer does not hand back the process when it fails, and nothing would stop the
	// server if this test binary exited without calling Stop. Find the child by its arguments so we
	// can notice an early exit, kill it on failure, and arm the orphan guard.
	_, port, _ := net.SplitHostPort(hostPort)
	before := map[int]bool{}
	for _, c := range childrenRunning(exe) {
		before[c.pid] = true
	}
	found := make(chan int, 1)
	watchDone := make(chan struct{})
	go watchTemporalChild(startCtx, cancel, exe, port, before, found, watchDone)

	server, err := testsuite.StartDevServer(startCtx, testsuite.DevServerOptions{
		ExistingPath: exe,
		ClientOptions: &client.Options{
			HostPort:  hostPort,
			Namespace: "default",
			Logger:    temporalQuietLogger(),
		},
		DBFilename: filepath.Join(dir, "temporal.db"),
		EnableUI:   false, // adds --headless
		LogLevel:   "error",
		ExtraArgs:  args,
		Stdout:     output,
		Stderr:     output,
	})
	cancel(nil)
	<-watchDone
	pid := 0
	select {
	case pid = <-found:
	default:
	}

	fail := func(err error) (*Temporal, error) {
		if server != nil {
			stopDevServer(server, pid)
		} else if pid != 0 {
			killAndReap(pid)
		}
		_ = os.RemoveAll(dir)
		if out := strings.TrimSpace(output.String()); out != "" {
			err = fmt.Errorf("%w\n--- temporal server output ---\n%s", err, out)
		}
		return nil, err
	}
	if err != nil {
		if cause := context.Cause(startCtx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return fail(fmt.Errorf("testenv: starting %s: %w", exe, err))
	}
	server.Client().Close() // we dial our own clients; this one is not needed

	if err := waitTemporalReady(ctx, hostPort, "default", TemporalSearchAttributes); err != nil {
		return fail(fmt.Errorf("testenv: temporal dev server at %s: %w", hostPort, err))
	}

	var stopGuard func()
	if pid != 0 {
		stopGuard = startOrphanGuard(pid, "INT", dir)
	}
	return &Temporal{
		Address:   hostPort,
		Namespace: "default",
		stop: func() {
			if stopGuard != nil {
				stopGuard()
			}
			stopDevServer(server, pid)
			_ = os.RemoveAll(dir)
		},
	}, nil
}

// stopDevServer interrupts the server and waits for it, killing it if it takes too long.
func stopDevServer(server *testsuite.DevServer, pid int) {
	done := make(chan struct{})
	go func() {
		_ = server.Stop() // SIGINT + wait; the exit status after an interrupt is not interesting
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		if pid != 0 {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
		<-done
	}
}

// waitTemporalReady dials addr until the namespace can be described and (if wantSA is given) the
// search attributes are registered.
func waitTemporalReady(ctx context.Context, addr, namespace string, wantSA []string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last error
	for {
		last = checkTemporal(ctx, addr, namespace, wantSA)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (%v)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func checkTemporal(ctx context.Context, addr, namespace string, wantSA []string) error {
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(callCtx, client.Options{HostPort: addr, Namespace: namespace, Logger: temporalQuietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(callCtx,
		&workflowservice.DescribeNamespaceRequest{Namespace: namespace}); err != nil {
		return err
	}
	if len(wantSA) == 0 {
		return nil
	}
	resp, err := c.OperatorService().ListSearchAttributes(callCtx,
		&operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return err
	}
	for _, sa := range wantSA {
		name, typ, _ := strings.Cut(sa, "=")
		got, ok := resp.GetCustomAttributes()[name]
		if !ok {
			return fmt.Errorf("search attribute %s is not registered", name)
		}
		if want, err := enumspb.IndexedValueTypeFromString(typ); err == nil && got != want {
			return fmt.Errorf("search attribute %s has type %v, want %v", name, got, want)
		}
	}
	return nil
}

var (
	temporalMu     sync.Mutex
	temporalShared *Temporal
	temporalErr    error
	temporalDone   bool
)

// TemporalForTest returns the test binary's shared Temporal server, starting it on first use. It
// fails the test (it never skips) if the server cannot start. Call StopTemporal (or StopAll) from
// TestMain after m.Run; if a binary forgets, the server still exits when the binary does.
func TemporalForTest(t testing.TB) *Temporal {
	skipInShortMode(t, "the Temporal dev server")
	t.Helper()
	temporalMu.Lock()
	defer temporalMu.Unlock()
	if !temporalDone {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		temporalShared, temporalErr = StartTemporal(ctx)
		cancel()
		temporalDone = true
	}
	if temporalErr != nil {
		t.Fatalf("testenv: Temporal is required for this test and could not start: %v", temporalErr)
	}
	return temporalShared
}

// StopTemporal stops the shared server of TemporalForTest, if one was started. A later call of
// TemporalForTest starts a new one.
func StopTemporal() {
	temporalMu.Lock()
	defer temporalMu.Unlock()
	temporalShared.Stop()
	temporalShared, temporalErr, temporalDone = nil, nil, false
}

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

func temporalQuietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}

// repoBinary returns <repository root>/bin/<name>, or an error telling how to get it. The root is
// the nearest directory above the working directory that holds go.mod (go test runs in the
// package directory).
func repoBinary(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: no go.mod above the working directory; cannot find bin/%s", name)
		}
		dir = parent
	}
	exe := filepath.Join(dir, "bin", name)
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	info, err := os.Stat(exe)
	if err != nil || info.IsDir() {
		return "", fmt.Errorf("testenv: %s is missing: run `make tools` in %s to install it (tests never download binaries)", exe, dir)
	}
	return exe, nil
}

// freeLoopbackAddr returns 127.0.0.1:<port> for a port nobody listens on. Like the SDK's helper, it
// leaves the port in TIME_WAIT so the kernel does not hand it out again right away.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testenv: free port: %w", err)
	}
	defer l.Close()
	addr := l.Addr().String()
	if runtime.GOOS == "linux" {
		if c, err := net.Dial("tcp", addr); err == nil {
			if s, err := l.Accept(); err == nil {
				_ = s.Close() // server side closes first: the port sits in TIME_WAIT
			}
			_ = c.Close()
		}
	}
	return addr, nil
}

// watchTemporalChild looks (Linux /proc only) for the dev server process this process started for
// the given port and sends its pid on found. If the process exits before ctx ends, it cancels ctx
// with an error, so the caller does not wait a minute for a server that is gone. before holds the
// children that already ran exe when the start began; they are never taken for the new one.
func watchTemporalChild(ctx context.Context, cancel context.CancelCauseFunc, exe, port string, before map[int]bool, found chan<- int, done chan<- struct{}) {
	defer close(done)
	if runtime.GOOS != "linux" {
		return
	}
	pid := 0
	for {
		if pid == 0 {
			pid = findChildProcess(exe, "--port", port, before)
			if pid != 0 {
				found <- pid
			}
		}
		if pid != 0 && !processRunningLinux(pid) {
			cancel(fmt.Errorf("temporal dev server (pid %d) exited during start-up", pid))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// childProcess is a child of this process as /proc shows it.
type childProcess struct {
	pid   int
	state byte
	comm  string
}

// childrenRunning lists the children of this process whose command name is that of exe (Linux).
func childrenRunning(exe string) []childProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	comm := filepath.Base(exe)
	if len(comm) > 15 { // the kernel keeps 15 bytes of it
		comm = comm[:15]
	}
	self := os.Getpid()
	var out []childProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := procStatLinux(pid)
		if ok && st.ppid == self && st.comm == comm {
			out = append(out, childProcess{pid: pid, state: st.state, comm: st.comm})
		}
	}
	return out
}

// findChildProcess returns the pid of a child of this process, not in skip, that runs exe with the
// adjacent arguments flag and value, or that already exited (a zombie keeps its name but not its
// arguments). 0 if there is none.
func findChildProcess(exe, flag, value string, skip map[int]bool) int {
	for _, c := range childrenRunning(exe) {
		if skip[c.pid] {
			continue
		}
		if c.state == 'Z' || c.state == 'X' {
			return c.pid
		}
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/cmdline")
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		// argv[0] is exe for a binary; a script run through its #! interpreter has exe in argv[1].
		if len(argv) < 2 || (argv[0] != exe && argv[1] != exe) {
			continue
		}
		if i := slices.Index(argv, flag); i >= 0 && i+1 < len(argv) && argv[i+1] == value {
			return c.pid
		}
	}
	return 0
}

type procStat struct {
	state byte
	ppid  int
	comm  string
}

// procStatLinux reads the command name, state letter and parent pid from /proc/<pid>/stat.
func procStatLinux(pid int) (procStat, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// "pid (comm) S ppid ...": comm may contain spaces and parentheses, so cut at the last ')'.
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	fields := strings.Fields(string(raw[end+1:]))
	if len(fields) < 2 || len(fields[0]) != 1 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: fields[0][0], ppid: ppid, comm: string(raw[open+1 : end])}, true
}

// processRunningLinux reports whether pid exists and is not a zombie.
func processRunningLinux(pid int) bool {
	st, ok := procStatLinux(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// killAndReap kills a child process that has no exec.Cmd here and collects its exit status.
func killAndReap(pid int) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	_ = p.Kill()
	_, _ = p.Wait()
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

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

var _ io.Writer = (*tailBuffer)(nil)

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
