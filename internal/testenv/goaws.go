package testenv

import (
	"context"
	"fmt"
	"os"
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
	// endpoint is the adapter that translates the SDK's JSON protocol to goaws's
	// (devstack.SQSJSONAdapter).
	endpoint string
	// Region is the region in its queue ARNs.
	Region string

	stopOnce sync.Once
	stop     func()
}

// Endpoint is the SQS endpoint for the AWS SDK (AWS_ENDPOINT_URL_SQS form): the protocol adapter
// in front of goaws.
func (g *GoAWS) Endpoint() string { return g.endpoint }

// goawsAccount is the account id in goaws's queue URLs and ARNs.
const goawsAccount = "100010001000"

// StartGoAWS starts bin/goaws (through devstack) on a free port with no queues (each test creates
// its own) and returns once its health endpoint answers, with the SDK protocol adapter in front.
func StartGoAWS(ctx context.Context) (*GoAWS, error) {
	dir, err := os.MkdirTemp("", "dpp-goaws-")
	if err != nil {
		return nil, fmt.Errorf("testenv: goaws: %w", err)
	}
	const region = "eu-west-2"
	srv, err := devstack.NewGoAWS(devstack.GoAWSOptions{Dir: dir, Region: region, AccountID: goawsAccount})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	stop := guarded(srv, dir)
	endpoint, stopAdapter, err := devstack.ServeSQSAdapter("http://"+srv.Addr, "127.0.0.1:0")
	if err != nil {
		stop()
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return &GoAWS{Addr: srv.Addr, Region: region, endpoint: endpoint, stop: func() {
		stopAdapter()
		stop()
	}}, nil
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
