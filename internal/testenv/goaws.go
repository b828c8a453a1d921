package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/devstack"
)

// GoAWS is a running goaws: an SQS emulator (query protocol) that stands in for the SQS queue
// SP-API delivers ORDER_CHANGE notifications to.
type GoAWS struct {
	// Addr is goaws's own listener, host:port (query protocol only).
	Addr string
	// adapter translates the SDK's JSON protocol to goaws's (devstack.SQSJSONAdapter).
	adapter     *http.Server
	adapterAddr string
	// Region is the region in its queue ARNs.
	Region string

	stopOnce sync.Once
	stop     func()
}

// Endpoint is the SQS endpoint for the AWS SDK (AWS_ENDPOINT_URL_SQS form): the protocol adapter
// in front of goaws.
func (g *GoAWS) Endpoint() string { return "http://" + g.adapterAddr }

// goawsAccount is the account id in goaws's queue URLs and ARNs.
const goawsAccount = "100010001000"

// StartGoAWS starts bin/goaws on a free port with no queues (each test creates its own) and returns
// once its health endpoint answers. goaws listens on all interfaces whatever it is told, like
// local-kms: the port is a high random one.
func StartGoAWS(ctx context.Context) (*GoAWS, error) {
	exe, err := devstack.Binary("goaws")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	port, err := devstack.FreePort()
	if err != nil {
		return nil, fmt.Errorf("testenv: goaws: %w", err)
	}
	dir, err := os.MkdirTemp("", "dpp-goaws-")
	if err != nil {
		return nil, fmt.Errorf("testenv: goaws: %w", err)
	}
	const region = "eu-west-2"
	conf := filepath.Join(dir, "goaws.yaml")
	// Visibility 30 s and no long-poll default: the consumer asks for both per call.
	yaml := fmt.Sprintf(`Local:
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
`, port, region, goawsAccount)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: goaws: %w", err)
	}
	output := &tailBuffer{max: 32 << 10}
	cmd := exec.Command(exe, "-config", conf, "Local")
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: starting %s: %w", exe, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stopProcess := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.RemoveAll(dir)
	}
	g := &GoAWS{Addr: fmt.Sprintf("127.0.0.1:%d", port), Region: region}
	if err := waitUntilReady(ctx, "goaws", exited, g.ping); err != nil {
		stopProcess()
		if out := strings.TrimSpace(output.String()); out != "" {
			err = fmt.Errorf("%w\n--- goaws output ---\n%s", err, out)
		}
		return nil, fmt.Errorf("testenv: goaws: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stopProcess()
		return nil, fmt.Errorf("testenv: goaws adapter: %w", err)
	}
	g.adapterAddr = l.Addr().String()
	g.adapter = &http.Server{Handler: &devstack.SQSJSONAdapter{GoAWS: "http://" + g.Addr}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = g.adapter.Serve(l) }()
	disarm := startOrphanGuard(cmd.Process.Pid, "INT", dir)
	g.stop = func() {
		_ = g.adapter.Close()
		disarm()
		stopProcess()
	}
	return g, nil
}

func (g *GoAWS) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.Addr+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: %s", resp.Status)
	}
	return nil
}

// Stop stops goaws. Safe to call more than once and on nil.
func (g *GoAWS) Stop() {
	if g == nil || g.stop == nil {
		return
	}
	g.stopOnce.Do(g.stop)
}

var sharedGoAWS = shared[*GoAWS]{name: "goaws (SQS)", timeout: time.Minute, start: StartGoAWS}

// GoAWSForTest returns the test binary's shared goaws, starting it on first use; it fails the test
// if goaws cannot start. Tests share it by giving each queue a name of its own.
func GoAWSForTest(t testing.TB) *GoAWS { t.Helper(); return sharedGoAWS.get(t) }

// StopGoAWS stops the shared goaws of GoAWSForTest, if one was started.
func StopGoAWS() { sharedGoAWS.stop() }
