package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// GoAWSOptions say how to run goaws.
type GoAWSOptions struct {
	// Dir holds its configuration (goaws.yaml) and its output (goaws.log).
	Dir string
	// Region and AccountID appear in its queue URLs and ARNs.
	Region, AccountID string
	// Binary is goaws (default: bin/goaws of this repository).
	Binary string
}

// GoAWS is goaws, an SQS emulator (query protocol; SQSJSONAdapter speaks the SDK's JSON protocol
// to it), on a fixed port with no queues. It keeps queues in memory: a restart empties them.
// goaws listens on all interfaces whatever it is told, like local-kms, so the port is a high
// random one.
type GoAWS struct {
	// Addr is its listener, host:port.
	Addr string

	opts GoAWSOptions
	restartable
}

// NewGoAWS writes the configuration and picks the port; nothing runs until Start.
func NewGoAWS(opts GoAWSOptions) (*GoAWS, error) {
	if opts.Dir == "" || opts.Region == "" || opts.AccountID == "" {
		return nil, errors.New("goaws: Dir, Region and AccountID are required")
	}
	var err error
	if opts.Binary, err = binaryOr(opts.Binary, "goaws"); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("goaws: %w", err)
	}
	// Visibility 30 s and no long-poll default: the consumer asks for both per call.
	conf := fmt.Sprintf(`Local:
  Host: 127.0.0.1
  Port: %d
  Region: %s
  AccountId: "%s"
  LogToFile: false
  QueueAttributeDefaults:
    VisibilityTimeout: 30
    ReceiveMessageWaitTimeSeconds: 0
  Queues: []
  Topics: []
`, port, opts.Region, opts.AccountID)
	if err := os.WriteFile(filepath.Join(opts.Dir, "goaws.yaml"), []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("goaws: %w", err)
	}
	return &GoAWS{Addr: loopback(port), opts: opts,
		restartable: restartable{name: "goaws", stopSignal: os.Interrupt, stopGrace: 10 * time.Second}}, nil
}

// Start starts goaws (again, after Kill or Stop) and returns once its health endpoint answers.
func (g *GoAWS) Start(ctx context.Context) error {
	g.startMu.Lock()
	defer g.startMu.Unlock()
	if err := g.launch(ctx, filepath.Join(g.opts.Dir, "goaws.log"), nil, g.opts.Binary,
		[]string{"-config", filepath.Join(g.opts.Dir, "goaws.yaml"), "Local"},
		30*time.Second, 50*time.Millisecond, g.Check); err != nil {
		return fmt.Errorf("goaws at %s: %w", g.Addr, err)
	}
	return nil
}

// Check asks goaws's health endpoint.
func (g *GoAWS) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return httpOK(ctx, "http://"+g.Addr+"/health")
}
