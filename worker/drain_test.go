package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/spapi/sandbox/sandboxtest"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

// TestSIGTERMDrainsRunningActivities runs the real worker (this binary's
// main) against the real stack, holds its FetchAndSeal inside the SP-API call,
// sends SIGTERM, and checks what Kubernetes relies on: /healthz turns to 503
// "draining" at once while /livez stays ok, the running activity completes
// (the order is sealed and its history records the completion), nothing new
// is picked up, and the process exits 0 within DPP_WORKER_STOP_TIMEOUT.
func TestSIGTERMDrainsRunningActivities(t *testing.T) {
	const (
		stopTimeout = 8 * time.Second
		hold        = 3 * time.Second // how long getOrder takes: well inside stopTimeout
	)
	temporal := testenv.TemporalForTest(t)
	kms := testenv.KMSForTest(t)
	ownerDSN := testenv.Database(t)
	sb, sbURL := sandboxtest.Start(t, sandbox.Options{Seed: time.Now().UnixNano(), Limits: sandbox.TestLimits(),
		DeliveryAfter: time.Hour, LatestDeliveryAfter: 2 * time.Hour})
	orderID := sb.Generate(1)[0]

	// A slow SP-API: every getOrder is held for `hold`, and the test hears when one arrives.
	target, err := url.Parse(sbURL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	arrived := make(chan struct{}, 16)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/orders/2026-01-01/orders/") {
			arrived <- struct{}{}
			time.Sleep(hold)
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)

	httpAddr := testenv.FreeAddr(t)
	env := map[string]string{
		"DATABASE_URL":              testenv.AsRole(t, ownerDSN, store.WorkerRole),
		"TEMPORAL_ADDRESS":          temporal.Address,
		"TEMPORAL_NAMESPACE":        temporal.Namespace,
		"TEMPORAL_CONFIG_FILE":      os.DevNull,
		"DPP_TASK_QUEUE":            testenv.TaskQueue(t),
		"AWS_REGION":                "eu-west-2",
		"AWS_ENDPOINT_URL_KMS":      kms.Endpoint,
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
		"DPP_KMS_KEY_ID":            kms.KeyID,
		"SPAPI_ENDPOINT":            slow.URL,
		"DPP_SPAPI_SANDBOX_SPEEDUP": "1000",
		"DPP_HTTP_ADDR":             httpAddr,
		// Its own public port: the default 127.0.0.1:8089 may be a dev stack's.
		"DPP_PUBLIC_ADDR":         testenv.FreeAddr(t),
		"DPP_WORKER_STOP_TIMEOUT": stopTimeout.String(),
		"DPP_SELLER_NAME":         "Plusranger Ltd",
		"DPP_SELLER_ADDRESS":      "1 High St|Leeds",
		"DPP_SELLER_VAT_NUMBER":   "GB123456789",
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"DPP_WORKER_RUN_MAIN=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logPath := filepath.Join(t.TempDir(), "worker.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("worker output:\n%s", b)
		}
	})

	healthz, livez := "http://"+httpAddr+"/healthz", "http://"+httpAddr+"/livez"
	waitFor(t, 90*time.Second, exited, "/healthz ok", func() bool { code, _ := get(healthz); return code == http.StatusOK })

	// The image's HEALTHCHECK: `worker -healthcheck` asks the running worker.
	if out, code := runWorker(t, "-healthcheck", "DPP_HTTP_ADDR="+httpAddr); code != 0 {
		t.Errorf("worker -healthcheck against a ready worker: exit %d, want 0: %s", code, out)
	}

	// The test's own client, built the way `starter start` builds it (codec included).
	t.Setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
	t.Setenv("AWS_SECRET_ACCESS_KEY", env["AWS_SECRET_ACCESS_KEY"])
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := app.New(ctx, cfg, app.Options{Uses: app.Temporal})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.StartOrder(ctx, orderID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case err := <-exited:
		t.Fatalf("worker exited before FetchAndSeal ran: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("FetchAndSeal never called getOrder")
	}

	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness turns off while the activity is still inside getOrder;
	// liveness stays on, so the pod is not killed mid-drain.
	waitFor(t, hold, exited, `/healthz 503 "draining"`, func() bool {
		code, body := get(healthz)
		return code == http.StatusServiceUnavailable && strings.TrimSpace(body) == "draining"
	})
	if code, _ := get(livez); code != http.StatusOK {
		t.Errorf("/livez answered %d while draining, want 200", code)
	}
	if out, code := runWorker(t, "-healthcheck", "DPP_HTTP_ADDR="+httpAddr); code != 1 {
		t.Errorf("worker -healthcheck against a draining worker: exit %d, want 1: %s", code, out)
	}

	select {
	case err := <-exited:
		took := time.Since(signalled)
		if err != nil {
			t.Fatalf("worker exit after SIGTERM: %v", err)
		}
		if took >= stopTimeout {
			t.Errorf("worker took %s to exit after SIGTERM, DPP_WORKER_STOP_TIMEOUT is %s", took, stopTimeout)
		}
		t.Logf("worker exited %s after SIGTERM (getOrder held %s, stop timeout %s)", took.Round(time.Millisecond), hold, stopTimeout)
	case <-time.After(stopTimeout + 10*time.Second):
		t.Fatalf("worker still running %s after SIGTERM", time.Since(signalled))
	}

	// The activity finished: its completion is in the history, the order is
	// sealed, and nothing after it ran (the workflow waits for the next worker).
	var fetchScheduled int64
	completed := false
	iter := c.Temporal.GetWorkflowHistory(ctx, workflows.OrderWorkflowID(orderID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "FetchAndSeal" {
			fetchScheduled = ev.GetEventId()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && a.GetScheduledEventId() == fetchScheduled {
			completed = true
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "IssueInvoice" {
			t.Errorf("IssueInvoice was scheduled: the draining worker took a new workflow task")
		}
	}
	if !completed {
		t.Errorf("FetchAndSeal (event %d) has no ActivityTaskCompleted: the drain cut it off", fetchScheduled)
	}
	conn, err := pgx.Connect(ctx, ownerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var sealed bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE amazon_order_id = $1)`, orderID).Scan(&sealed); err != nil || !sealed {
		t.Errorf("order not sealed after the drain (%v)", err)
	}
}

func get(u string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls ok every 50 ms until it holds, failing after timeout or if the
// process exits first.
func waitFor(t *testing.T, timeout time.Duration, exited chan error, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("worker exited while waiting for %s: %v", what, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
	}
}
