package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/plusranger/dpp/internal/devstack"
	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/workflows"
)

// The notification phase (issue 14): intake through ORDER_CHANGE notifications.
// After the pipeline, the worker is started again with the queue configured,
// `starter notifications setup` subscribes the sandbox to a goaws queue and
// starts OrderNotifications, and the sandbox places -notifications orders one
// after the other, each sending its notification as Amazon would. The phase
// measures each order from the moment its notification was sent to the moment
// its order row was sealed (orders.sealed_at): the consumer's long poll, the
// lifecycle's start, getOrder and the sealing, on the real SQS consumer.

// NotificationsResult is the notification phase's part of the result.
type NotificationsResult struct {
	Orders int `json:"orders"`
	Sealed int `json:"sealed"`
	// Rate is the pace of the orders (orders/s); 0: a burst, which measures
	// capacity.
	Rate float64 `json:"ordersPerSecondSent"`
	// SendSeconds is how long the sandbox took to place the orders and send
	// their notifications.
	SendSeconds float64 `json:"sendSeconds"`
	// OrdersPerSecond is Sealed over the time from the first notification sent
	// to the last order sealed.
	OrdersPerSecond float64 `json:"ordersPerSecond"`
	SentToSealed    Dist    `json:"sentToSealedSeconds"`
	// Recorded counts the order_notifications rows (one per notification handled).
	Recorded int `json:"orderNotificationsRows"`
	// Settings are the consumer's, as the worker runs them in production.
	Settings string   `json:"consumerSettings"`
	Setup    []string `json:"setupOutput"`
	Error    string   `json:"error,omitempty"`
}

// consumerSettings describes activities.ConsumeOrderChanges and app's
// notificationVisibility, which the phase does not change.
const consumerSettings = "one OrderNotifications consumer; SQS long poll 20 s, up to 10 messages a receive, visibility 60 s, each message handled then deleted"

// goawsQueue is the SQS queue of the notification phase, started before the
// sandbox (which sends to it) when the phase is on.
type goawsQueue struct {
	endpoint, url string
	sqs           *sqs.Client
}

func (e *env) startQueue(ctx context.Context) (*goawsQueue, error) {
	const region = "eu-west-2"
	g, err := devstack.NewGoAWS(devstack.GoAWSOptions{Dir: mkdir(e.tmp, "goaws"), Region: region, AccountID: "100010001000"})
	if err != nil {
		return nil, err
	}
	atExit(g.Stop)
	if err := g.Start(ctx); err != nil {
		return nil, err
	}
	endpoint, stop, err := devstack.ServeSQSAdapter("http://"+g.Addr, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	atExit(stop)
	c, err := notifications.NewSQSClient(ctx, region, endpoint)
	if err != nil {
		return nil, err
	}
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("order-change-bench-" + randHex(4))})
	if err != nil {
		return nil, fmt.Errorf("goaws CreateQueue: %w", err)
	}
	return &goawsQueue{endpoint: endpoint, url: aws.ToString(q.QueueUrl), sqs: c}, nil
}

// runNotifications runs the phase; a failure is recorded in the result and
// makes the exit status 1, the other phases' figures stand.
func (e *env) runNotifications(ctx context.Context, starterBin string) error {
	n := e.o.notifications
	r := &NotificationsResult{Orders: n, Rate: e.o.notificationRate, Settings: consumerSettings}
	e.res.Notifications = r
	err := e.notificationPhase(ctx, starterBin, r)
	if err != nil {
		r.Error = err.Error()
		return err
	}
	inv := e.notificationLeaks(ctx)
	e.res.Invariants = append(e.res.Invariants, inv)
	if inv.Violations > 0 {
		return fmt.Errorf("marker PII in the notification phase: %s", inv.Detail)
	}
	return nil
}

// notificationLeaks looks for the sandbox's PII marker in OrderNotifications'
// history and the phase's worker log: the consumer decodes no PII, and its
// lifecycles are checked like the pipeline's.
func (e *env) notificationLeaks(ctx context.Context) Invariant {
	inv := Invariant{Name: "no marker PII in the notification phase (OrderNotifications history, its worker log)"}
	if h, err := analyse(ctx, e.tc, workflows.OrderNotificationsWorkflowID, "", markerForms(marker)); err != nil {
		inv.Violations, inv.Detail = 1, err.Error()
	} else {
		inv.Checked++
		if h.piiHits > 0 {
			inv.Violations++
			inv.Detail = "history: " + h.piiExcerpt
		}
	}
	if len(e.workers.logs) > 0 {
		b, err := os.ReadFile(e.workers.logs[len(e.workers.logs)-1])
		if err == nil {
			inv.Checked++
			if n, ex := findMarkers(b, markerForms(marker)); n > 0 {
				inv.Violations += n
				inv.Detail = "worker log: " + ex
			}
		}
	}
	return inv
}

func (e *env) notificationPhase(ctx context.Context, starterBin string, r *NotificationsResult) error {
	n := r.Orders
	// The worker as in production with notifications on; no profiling, so
	// the pipeline's profile stays as written.
	var envv []string
	for _, kv := range e.workers.env {
		if !strings.HasPrefix(kv, "BENCH_CPUPROFILE=") && !strings.HasPrefix(kv, "BENCH_MEMPROFILE=") {
			envv = append(envv, kv)
		}
	}
	envv = append(envv, "AWS_ENDPOINT_URL_SQS="+e.queue.endpoint, "DPP_ORDER_CHANGE_QUEUE_URL="+e.queue.url)
	e.workers.env = envv
	e.prog.say("notifications: starting the worker with DPP_ORDER_CHANGE_QUEUE_URL (goaws)")
	if err := e.workers.start(ctx); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, starterBin, "notifications", "setup")
	cmd.Env = envv
	out, err := cmd.CombinedOutput()
	r.Setup = strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return fmt.Errorf("starter notifications setup: %v: %s", err, out)
	}
	for _, l := range r.Setup {
		e.prog.say("  %s", l)
	}

	sent := make(map[string]time.Time, n)
	t0 := time.Now()
	for i := range n {
		if rate := e.o.notificationRate; rate > 0 {
			next := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if err := sleepCtx(ctx, time.Until(next)); err != nil {
				return err
			}
		}
		at := time.Now()
		sent[e.sb.Generate(1)[0]] = at
	}
	r.SendSeconds = time.Since(t0).Seconds()
	e.prog.say("notifications: %d orders placed, their notifications sent in %.1fs", n, r.SendSeconds)

	runCtx, cancel := context.WithTimeout(ctx, e.o.deadline)
	defer cancel()
	ids := make([]string, 0, n)
	for id := range sent {
		ids = append(ids, id)
	}
	e.prog.reset("notifications")
	var waitErr error
	for i := 0; ; i++ {
		var c int
		err := e.pool.QueryRow(runCtx, `SELECT count(*) FROM orders WHERE amazon_order_id = ANY($1)`, ids).Scan(&c)
		if err == nil && c >= n {
			break
		}
		if i%5 == 0 {
			e.prog.draw("notifications", c, n, "sealed")
		}
		if waitErr = sleepCtx(runCtx, 100*time.Millisecond); waitErr != nil {
			break
		}
	}
	e.prog.done()
	rows, err := e.pool.Query(ctx, `SELECT amazon_order_id, sealed_at FROM orders WHERE amazon_order_id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	var lat []float64
	var last time.Time
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return err
		}
		lat = append(lat, at.Sub(sent[id]).Seconds())
		if at.After(last) {
			last = at
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	r.Sealed = len(lat)
	r.SentToSealed = dist(lat)
	if r.Sealed > 0 {
		r.OrdersPerSecond = float64(r.Sealed) / last.Sub(t0).Seconds()
	}
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM order_notifications WHERE amazon_order_id = ANY($1)`, ids).Scan(&r.Recorded)
	e.prog.say("notifications: %d of %d sealed, %.1f orders/s from notification to sealed", r.Sealed, n, r.OrdersPerSecond)
	if waitErr != nil {
		return fmt.Errorf("notifications: %d of %d orders sealed before the deadline: %w", r.Sealed, n, waitErr)
	}
	return nil
}

// buildStarter builds ./starter next to the worker: the phase runs the real
// `starter notifications setup`.
func (e *env) buildStarter(ctx context.Context) (string, error) {
	bin := filepath.Join(e.tmp, "starter")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	return bin, buildBinary(ctx, e.root, "./starter", bin)
}
