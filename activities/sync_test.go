package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// SP-API's rate limiter can hold a page for three minutes, longer than the sync
// activity's heartbeat timeout: the heartbeat must go on meanwhile, and stop after.
func TestKeepHeartbeatingUntilStopped(t *testing.T) {
	old := heartbeatEvery
	heartbeatEvery = 10 * time.Millisecond
	defer func() { heartbeatEvery = old }()
	var beats atomic.Int32
	stop := keepHeartbeating(context.Background(), func() { beats.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for beats.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if beats.Load() < 3 {
		t.Fatal("no heartbeats while waiting")
	}
	after := beats.Load()
	time.Sleep(50 * time.Millisecond)
	if n := beats.Load(); n > after+1 {
		t.Fatalf("heartbeats went on after stop: %d then %d", after, n)
	}
}
