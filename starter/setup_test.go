package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

// TestSetupWaitsForTemporal: `starter setup -wait` started before Temporal
// answers (docker compose, the chart's hook Job on a first install) keeps
// trying, then registers everything once the frontend is there.
func TestSetupWaitsForTemporal(t *testing.T) {
	temporal := testenv.TemporalForTest(t)
	kms := testenv.KMSForTest(t)
	late := testenv.FreeAddr(t) // where Temporal will answer, a few seconds from now
	env := []string{
		"DPP_STARTER_RUN_MAIN=1", "DPP_STARTER_ARGS=" + strings.Join([]string{"setup", "-wait", "60s"}, "\x1f"),
		"PATH=" + os.Getenv("PATH"), "TEMPORAL_CONFIG_FILE=" + os.DevNull,
		"TEMPORAL_ADDRESS=" + late, "TEMPORAL_NAMESPACE=" + temporal.Namespace, "DPP_TASK_QUEUE=" + testenv.TaskQueue(t),
		"AWS_ENDPOINT_URL_KMS=" + kms.Endpoint, "DPP_KMS_KEY_ID=" + kms.KeyID, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"DPP_SELLER_NAME=Plusranger Ltd", "DPP_SELLER_ADDRESS=1 High St|Leeds", "DPP_SELLER_VAT_NUMBER=GB123456789",
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = env
	var out bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }

	// It must have tried and said so before Temporal appears.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(output(), "not yet") {
		select {
		case err := <-done:
			t.Fatalf("starter setup -wait exited (%v) before Temporal was there:\n%s", err, output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("starter setup -wait said nothing about waiting:\n%s", output())
		}
	}
	forward(t, late, temporal.Address)

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("starter setup -wait: %v\n%s", err, output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("starter setup -wait still running a minute after Temporal appeared:\n%s", output())
	}
	for _, s := range workflows.Schedules {
		if !strings.Contains(output(), s.ID) {
			t.Errorf("setup's report does not name schedule %s:\n%s", s.ID, output())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// forward listens on addr and relays every connection to target until the test ends.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
}
