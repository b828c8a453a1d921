package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// TemporalOptions say how to run a Temporal dev server.
type TemporalOptions struct {
	// Dir holds the server's SQLite file (temporal.db) and its output (temporal.log). A restart
	// reuses both, so workflows, namespaces and search attributes survive it.
	Dir string
	// SearchAttributes are registered at every start, in the NAME=Type form of
	// workflows.SearchAttributeFlags(); readiness waits until each has its type. They are passed
	// in rather than read here because workflows' own tests start servers through this package.
	SearchAttributes []string
	// Binary is the temporal CLI (default: bin/temporal of this repository).
	Binary string
	// ReadyTimeout bounds one start's wait for readiness (default 2 minutes).
	ReadyTimeout time.Duration
}

// Temporal is a dev server on loopback with fixed ports and a fixed SQLite file: Start, Kill or
// Stop, and Start again reaches the same server state at the same Address.
type Temporal struct {
	// Address is the frontend's host:port, for client.Options.HostPort.
	Address string
	// Namespace is the namespace the server creates ("default").
	Namespace string

	opts TemporalOptions
	args []string
	restartable
}

// NewTemporal picks the ports and the arguments; nothing runs until Start.
func NewTemporal(opts TemporalOptions) (*Temporal, error) {
	if opts.Dir == "" {
		return nil, errors.New("temporal dev server: no directory for its database")
	}
	var err error
	if opts.Binary, err = binaryOr(opts.Binary, "temporal"); err != nil {
		return nil, err
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	var ports [3]int // frontend, HTTP API, metrics: fixed so that a restart binds the same ones
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	t := &Temporal{Address: loopback(ports[0]), Namespace: "default", opts: opts,
		restartable: restartable{name: "temporal", stopSignal: os.Interrupt, stopGrace: 15 * time.Second}}
	t.args = []string{"server", "start-dev",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
		"--http-port", strconv.Itoa(ports[1]), "--metrics-port", strconv.Itoa(ports[2]),
		"--namespace", t.Namespace,
		"--headless",
		"--db-filename", filepath.Join(opts.Dir, "temporal.db"),
		// WAL more than doubles the SQLite store's throughput on two cores (REFERENCE.md).
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
		"--log-level", "error",
		// No call home from tests or benchmarks.
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
	}
	// Updates need no dynamic config: the server that CLI v1.5.1 embeds (1.29.1) enables them.
	for _, sa := range opts.SearchAttributes {
		t.args = append(t.args, "--search-attribute", sa)
	}
	return t, nil
}

// Args are the command-line arguments of every start.
func (t *Temporal) Args() []string { return append([]string(nil), t.args...) }

// Start starts the server (again, after Kill or Stop) and returns once the namespace answers and
// every search attribute is registered. A server that exits or is not ready in time is stopped,
// and the error carries the end of its output.
func (t *Temporal) Start(ctx context.Context) error {
	t.startMu.Lock()
	defer t.startMu.Unlock()
	if err := os.MkdirAll(t.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("temporal dev server: %w", err)
	}
	if err := t.launch(ctx, filepath.Join(t.opts.Dir, "temporal.log"), nil, t.opts.Binary, t.args,
		t.opts.ReadyTimeout, 100*time.Millisecond, t.Check); err != nil {
		return fmt.Errorf("temporal dev server at %s: %w", t.Address, err)
	}
	return nil
}

// Check asks the server whether it is ready (see CheckTemporal).
func (t *Temporal) Check(ctx context.Context) error {
	return CheckTemporal(ctx, t.Address, t.Namespace, t.opts.SearchAttributes)
}

// CheckTemporal dials addr once and reports whether the namespace can be described and each of
// searchAttributes (NAME=Type) is registered with its type.
func CheckTemporal(ctx context.Context, addr, namespace string, searchAttributes []string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: namespace, Logger: QuietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(ctx,
		&workflowservice.DescribeNamespaceRequest{Namespace: namespace}); err != nil {
		return err
	}
	if len(searchAttributes) == 0 {
		return nil
	}
	resp, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return err
	}
	for _, sa := range searchAttributes {
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

// WaitTemporal asks a server that something else runs until CheckTemporal passes or timeout ends.
func WaitTemporal(ctx context.Context, addr, namespace string, searchAttributes []string, timeout time.Duration) error {
	return waitReady(ctx, nil, timeout, 100*time.Millisecond, func(ctx context.Context) error {
		return CheckTemporal(ctx, addr, namespace, searchAttributes)
	})
}

// QuietLogger is a Temporal SDK logger that drops everything: the clients here dial servers that
// may not be up yet, and each failed try would otherwise be logged.
func QuietLogger() tlog.Logger { return tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

// waitReady calls check every poll until it passes, p (if any) exits, ctx ends or timeout passes.
func waitReady(ctx context.Context, p *Proc, timeout, poll time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var exited <-chan struct{}
	if p != nil {
		exited = p.Done()
	}
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			status := "exited"
			if err := p.ExitErr(); err != nil {
				status = err.Error()
			}
			return fmt.Errorf("%s exited during start-up (%s); its output:\n%s", p.name, status, p.Tail(3000))
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (%v)", last, ctx.Err())
		case <-time.After(poll):
		}
	}
}
