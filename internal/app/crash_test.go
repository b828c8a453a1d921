package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/workflows"
)

// buildWorker builds the production worker binary (./worker) for the test.
func buildWorker(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the crash test builds ./worker and needs the go command on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/plusranger/dpp/worker").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./worker: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// workerProcess is the production worker running as a child process with the
// stack's settings: killing it is a real crash (no deferred cleanup, no graceful
// stop, its connections cut by the kernel).
type workerProcess struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{}
}

// startWorkerProcess starts the worker binary and waits until its /healthz
// answers (it then has the database, KMS and Temporal).
func (s *stack) startWorkerProcess(ctx context.Context, bin, name string) *workerProcess {
	s.t.Helper()
	for attempt := 1; ; attempt++ {
		w, err := s.tryWorkerProcess(ctx, bin, name, freeAddr(s.t))
		if err == nil {
			return w
		}
		// The free port was taken between the check and the worker's listen.
		if attempt == 3 || !strings.Contains(w.output.String(), "address already in use") {
			s.t.Fatalf("%v\n%s", err, w.output.String())
		}
	}
}

func (s *stack) tryWorkerProcess(ctx context.Context, bin, name, addr string) (*workerProcess, error) {
	s.t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_ACCESS_KEY_ID=" + os.Getenv("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY=" + os.Getenv("AWS_SECRET_ACCESS_KEY")}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	// Each worker process gets its own public listener too (default
	// 127.0.0.1:8089), unless the test chose one.
	public := s.env["DPP_PUBLIC_ADDR"]
	if public == "" {
		public = freeAddr(s.t)
	}
	env = append(env, "DPP_HTTP_ADDR="+addr, "DPP_PUBLIC_ADDR="+public)
	w := &workerProcess{t: s.t, name: name, cmd: exec.Command(bin), output: &syncBuffer{}, exited: make(chan struct{})}
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = w.output, w.output
	if err := w.cmd.Start(); err != nil {
		return w, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.exited)
	}()
	s.t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			<-w.exited
		}
		if s.t.Failed() {
			s.t.Logf("%s output:\n%s", name, w.output.String())
		}
	})
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		select {
		case <-w.exited:
			return w, fmt.Errorf("%s exited before it was ready: %v", name, w.cmd.ProcessState)
		case <-ctx.Done():
			return w, fmt.Errorf("%s never answered /healthz on %s", name, addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (w *workerProcess) kill() {
	w.t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		w.t.Fatalf("kill %s: %v", w.name, err)
	}
	<-w.exited
	if st, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || st.Signal() != syscall.SIGKILL {
		w.t.Fatalf("%s ended by %v, not by SIGKILL: the crash did not happen\n%s", w.name, w.cmd.ProcessState, w.output.String())
	}
}

// blockWrites locks table against writes (reads go on) in a transaction of the
// schema owner, so that a step that writes it stops inside its own transaction.
// The returned func lifts the lock.
func (s *stack) blockWrites(ctx context.Context, table string) (release func()) {
	s.t.Helper()
	conn, err := pgx.Connect(ctx, s.env["DPP_MIGRATIONS_DATABASE_URL"])
	s.must(err, "connect as owner")
	tx, err := conn.Begin(ctx)
	s.must(err, "begin")
	_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN SHARE MODE")
	s.must(err, "lock %s", table)
	released := false
	release = func() {
		if !released {
			released = true
			_ = tx.Rollback(context.Background())
			_ = conn.Close(context.Background())
		}
	}
	s.t.Cleanup(release)
	return release
}

// awaitBlockedWriter waits until a session waits for the write lock on table.
func (s *stack) awaitBlockedWriter(ctx context.Context, table string) {
	s.t.Helper()
	for {
		var waiting int
		err := s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, table).Scan(&waiting)
		if err == nil && waiting > 0 {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("no step ever waited to write %s (last error %v)", table, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// assertInFlight checks that the order's step activityType has started and not
// finished: a kill now lands in the middle of it.
func (s *stack) assertInFlight(ctx context.Context, orderID, activityType string) {
	s.t.Helper()
	desc, err := s.app.Temporal.DescribeWorkflow(ctx, workflows.OrderWorkflowID(orderID), "")
	s.must(err, "describe")
	var seen []string
	for _, pa := range desc.RawResponse.GetPendingActivities() {
		if pa.GetActivityType().GetName() == activityType && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			return
		}
		seen = append(seen, fmt.Sprintf("%s %s", pa.GetActivityType().GetName(), pa.GetState()))
	}
	s.t.Fatalf("%s is not in flight; pending activities: %v", activityType, seen)
}

func TestWorkerCrashBetweenStepsChangesNothing(t *testing.T) {
	s := newStack(t, nil)
	// The production worker binary runs the order; the stack's in-process worker
	// must not poll the same task queue.
	s.worker.Stop()
	s.worker = nil
	// Each crash costs a step's StartToClose timeout (30 s) before Temporal retries
	// it elsewhere: this context only stops a hung test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := buildWorker(t)
	id := s.sandbox.Generate(1)[0]
	want, _ := s.sandbox.Order(id)

	// Crash 1: SIGKILL while FetchAndSeal is inside its transaction (the order row
	// and data key inserted, the sealed fields waiting to be written).
	release := s.blockWrites(ctx, "sealed_fields")
	w1 := s.startWorkerProcess(ctx, bin, "worker 1")
	started, err := s.app.StartOrder(ctx, id)
	s.must(err, "start")
	if !started {
		t.Fatal("not started")
	}
	s.awaitBlockedWriter(ctx, "sealed_fields")
	s.assertInFlight(ctx, id, "FetchAndSeal")
	w1.kill()
	release()
	if _, err := s.app.Orders.Facts(ctx, id); !errors.Is(err, orders.ErrNotSealed) {
		t.Fatalf("after a crash mid-seal: %v, want nothing sealed", err)
	}

	// Crash 2: the next worker retries the seal, and is killed while IssueInvoice is
	// inside its transaction (number taken, tax-record key inserted, the invoice
	// row waiting).
	release = s.blockWrites(ctx, "invoices")
	w2 := s.startWorkerProcess(ctx, bin, "worker 2")
	s.awaitBlockedWriter(ctx, "invoices")
	s.assertInFlight(ctx, id, "IssueInvoice")
	w2.kill()
	release()
	if _, err := s.app.Orders.Facts(ctx, id); err != nil {
		t.Fatalf("the retried seal did not commit: %v", err)
	}
	if _, err := s.app.Orders.Invoice(ctx, id); !errors.Is(err, orders.ErrNoInvoice) {
		t.Fatalf("after a crash mid-invoice: %v, want no invoice", err)
	}

	// A third worker finishes the order.
	w3 := s.startWorkerProcess(ctx, bin, "worker 3")
	s.waitStage(ctx, id, workflows.StageAwaitingDelivery)
	if st := s.status(ctx, id); st.InvoiceNumber != "INV-000001" {
		t.Fatalf("invoice number %q, want INV-000001", st.InvoiceNumber)
	}
	rows, err := s.app.Pool.Query(ctx, `SELECT field FROM sealed_fields WHERE amazon_order_id = $1 ORDER BY field`, id)
	s.must(err, "sealed fields")
	sealed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	s.must(err, "sealed fields")
	var fields []string
	for f := range piiValues(&want) {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	if strings.Join(sealed, ",") != strings.Join(fields, ",") {
		t.Fatalf("sealed fields %v, want each PII field once: %v", sealed, fields)
	}
	var orderRows, keys int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM data_keys)`).
		Scan(&orderRows, &keys), "count")
	if orderRows != 1 || keys != 2 {
		t.Fatalf("orders=%d data keys=%d; want 1 order, 2 keys (PII, tax record)", orderRows, keys)
	}

	// Re-running a step that already committed must be harmless too.
	acts := s.app.LifecycleActivities()
	_, err = acts.FetchAndSeal(ctx, activities.FetchAndSealInput{AmazonOrderID: id})
	s.must(err, "FetchAndSeal again")
	res := s.purgeNow(ctx, id)
	if res.PurgeReason != workflows.PurgeReasonPurgeNow || res.CertificateSeq == 0 {
		t.Fatalf("result %+v", res)
	}
	if os.Getenv("DPP_SAVE_HISTORIES") != "" {
		s.saveHistory(ctx, workflows.OrderWorkflowID(id), "order_lifecycle_worker_restart_purge_now.json")
	}
	_, err = acts.PurgeOrder(ctx, activities.PurgeInput{AmazonOrderID: id, Reason: "again"})
	s.must(err, "PurgeOrder again")
	inv, err := acts.IssueInvoice(ctx, activities.IssueInvoiceInput{AmazonOrderID: id})
	s.must(err, "IssueInvoice again")

	var invoices, lastNumber, certs, left int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM invoices), (SELECT coalesce(max(last_number), 0) FROM invoice_counters),
		(SELECT count(*) FROM evidence_log WHERE kind = 'certificate-of-sanitization'), (SELECT count(*) FROM data_keys),
		(SELECT count(*) FROM orders)`).Scan(&invoices, &lastNumber, &certs, &keys, &orderRows), "count")
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM sealed_fields`).Scan(&left), "count")
	if invoices != 1 || lastNumber != 1 || inv.Number != "INV-000001" || certs != 1 || keys != 1 || orderRows != 1 || left != 0 {
		t.Fatalf("invoices=%d counter=%d number=%s certificates=%d keys=%d orders=%d sealed fields=%d; want one invoice INV-000001 "+
			"and the counter at 1, one certificate, one key (the tax record's), one order, no sealed field",
			invoices, lastNumber, inv.Number, certs, keys, orderRows, left)
	}
	certificates, err := s.app.Certificates(ctx, id)
	s.must(err, "certificates")
	if len(certificates) != 1 || !certificates[0].SignatureValid || !certificates[0].ChainIntact {
		t.Fatalf("certificates %+v", certificates)
	}
	rep, err := s.app.VerifyEvidence(ctx)
	s.must(err, "verify evidence")
	if !rep.OK() {
		t.Fatalf("evidence report %+v", rep)
	}
	// The production worker's own logs, crashes included, hold none of the buyer's PII.
	for _, w := range []*workerProcess{w1, w2, w3} {
		out := []byte(w.output.String())
		if !bytes.Contains(out, []byte(id)) {
			t.Fatalf("%s logged nothing of the order: the leak check on its logs proves nothing", w.name)
		}
		if hits := piiHits(out, piiNeedles(t, piiValues(&want))); len(hits) > 0 {
			t.Errorf("%s logged buyer PII %v", w.name, hits)
		}
	}
}
