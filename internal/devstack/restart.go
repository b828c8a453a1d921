package devstack

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// restartable holds the current process of a component that is killed and started again.
type restartable struct {
	name       string
	stopSignal os.Signal
	stopGrace  time.Duration

	startMu sync.Mutex // one Start at a time; mu alone keeps Pid and Kill from waiting on a start
	mu      sync.Mutex
	proc    *Proc
}

// launch starts one process and waits until check passes; a process that exits or is not ready
// in time is killed. The caller holds startMu.
func (r *restartable) launch(ctx context.Context, logPath string, env []string, bin string, args []string,
	timeout, poll time.Duration, check func(context.Context) error) error {
	if p := r.running(); p != nil {
		return fmt.Errorf("%s is already running (pid %d)", r.name, p.Pid())
	}
	p, err := StartProc(r.name, logPath, env, bin, args...)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	if err := waitReady(ctx, p, timeout, poll, check); err != nil {
		p.Kill()
		return err
	}
	return nil
}

// running returns the process if it is alive, else nil.
func (r *restartable) running() *Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || !r.proc.Alive() {
		return nil
	}
	return r.proc
}

// Stop sends the component's stop signal (SIGINT to the dev server, SIGTERM to local-kms) and
// waits for the exit, SIGKILLing after a grace period (15 s, 5 s). It does nothing if the
// component is not running.
func (r *restartable) Stop() {
	if p := r.running(); p != nil {
		p.Stop(r.stopSignal, r.stopGrace)
	}
}

// Kill SIGKILLs the component, as a crash would, and waits for it.
func (r *restartable) Kill() {
	if p := r.running(); p != nil {
		p.Kill()
	}
}

// Pid is the running process's id, 0 if none runs.
func (r *restartable) Pid() int {
	if p := r.running(); p != nil {
		return p.Pid()
	}
	return 0
}
