package devstack

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func requireLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("reads /proc, which %s does not have", runtime.GOOS)
	}
}

func TestProcfsReadersSeeThisProcess(t *testing.T) {
	requireLinux(t)
	// Burn some CPU so that at least one clock tick is charged to us.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if s := CPUSeconds(os.Getpid()); s <= 0 {
		t.Errorf("CPUSeconds(self) = %v, want > 0", s)
	}
	rss, hwm := Memory(os.Getpid())
	if rss <= 0 || hwm < rss {
		t.Errorf("Memory(self) = rss %d KiB, peak %d KiB", rss, hwm)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if pids := PidsByComm(strings.TrimSpace(string(comm))); !slices.Contains(pids, os.Getpid()) {
		t.Errorf("PidsByComm(%q) = %v, misses this process %d", comm, pids, os.Getpid())
	}
	busy, total := MachineCPU()
	if busy <= 0 || total < busy {
		t.Errorf("MachineCPU() = busy %v, total %v", busy, total)
	}
}

func TestProcfsReadersOfAGoneProcessAnswerZero(t *testing.T) {
	requireLinux(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid // reaped: /proc has no entry for it any more
	if s := CPUSeconds(pid); s != 0 {
		t.Errorf("CPUSeconds = %v", s)
	}
	if rss, hwm := Memory(pid); rss != 0 || hwm != 0 {
		t.Errorf("Memory = %d, %d", rss, hwm)
	}
	if pids := PidsByComm("no-such-command-name"); len(pids) != 0 {
		t.Errorf("PidsByComm = %v", pids)
	}
}

func TestProcKillStopAndTail(t *testing.T) {
	requireLinux(t)
	dir := t.TempDir()
	start := func(name string) *Proc {
		p, err := StartProc(name, dir+"/"+name+".log", nil, "/bin/sh", "-c", "echo started "+name+"; exec sleep 60")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(syscall.SIGKILL, time.Second) })
		for p.Tail(100) == "" && p.Alive() {
			time.Sleep(10 * time.Millisecond)
		}
		return p
	}

	a := start("a")
	if !a.Alive() || a.Pid() == 0 {
		t.Fatal("a is not running")
	}
	if got := a.Tail(100); got != "started a" {
		t.Errorf("Tail = %q", got)
	}
	if got := a.Tail(3); got != "...d a" {
		t.Errorf("Tail(3) = %q", got)
	}
	a.Kill()
	if a.Alive() || !a.Killed() || a.ExitErr() == nil {
		t.Errorf("after Kill: alive %v, killed %v, exit %v", a.Alive(), a.Killed(), a.ExitErr())
	}

	b := start("b")
	b.Stop(syscall.SIGTERM, 10*time.Second)
	if b.Alive() || b.Killed() {
		t.Errorf("after Stop: alive %v, killed %v (Killed is only for Kill)", b.Alive(), b.Killed())
	}
	b.Stop(syscall.SIGTERM, time.Second) // stopping a stopped process is a no-op

	// A process in its own group does not get the terminal's Ctrl-C, and a restarted
	// component appends to the same log.
	if pgid, err := syscall.Getpgid(a.Pid()); err == nil && pgid == syscall.Getpgrp() {
		t.Error("the child shares this process's group")
	}
	c, err := StartProc("a", dir+"/a.log", nil, "/bin/sh", "-c", "echo again")
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if got := c.Tail(100); got != "started a\nagain" {
		t.Errorf("log after a restart = %q", got)
	}
}

func TestBinaryNamesTheMissingFileAndTheFix(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/go.mod", []byte("module example.com/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir+"/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir + "/a/b")
	root, err := RepoRoot()
	if err != nil || root != dir {
		t.Fatalf("RepoRoot = %q, %v; want %q", root, err, dir)
	}
	_, err = Binary("temporal")
	if err == nil || !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), dir+"/bin/temporal") {
		t.Fatalf("Binary error = %v", err)
	}
}
