package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/metrics"
)

// Timeouts of the worker's HTTP listener (DPP_HTTP_ADDR). A codec request of a
// few MiB from a slow client, queued behind others (up to 10 s) and waiting for
// KMS (5 s per data key), fits in them; a client that holds a connection open
// without sending (slowloris) or reading is cut off.
const (
	HTTPReadHeaderTimeout = 5 * time.Second
	HTTPReadTimeout       = 30 * time.Second
	HTTPWriteTimeout      = 60 * time.Second
	HTTPIdleTimeout       = 2 * time.Minute
	HTTPMaxHeaderBytes    = 64 << 10
)

// NewHTTPServer is the worker's HTTP server on addr, with the timeouts above.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h,
		ReadHeaderTimeout: HTTPReadHeaderTimeout, ReadTimeout: HTTPReadTimeout,
		WriteTimeout: HTTPWriteTimeout, IdleTimeout: HTTPIdleTimeout, MaxHeaderBytes: HTTPMaxHeaderBytes}
}

// HTTPHandler serves the worker's endpoints: /healthz (readiness), /livez
// (liveness), /metrics, and the codec
// server /codec/encode and /codec/decode (see internal/codec). Answers never
// carry an error's text: the details go to the log.
func (a *App) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /livez", a.livez)
	mux.HandleFunc("GET /metrics", a.metrics)
	if a.Codec != nil {
		mux.Handle("/codec/", codec.NewServer(a.Codec, codec.ServerOptions{
			Prefix: "/codec", Namespace: a.Config.TemporalNamespace, Token: a.Config.CodecToken,
			CORSOrigin: a.Config.CodecCORSOrigin, MaxBody: a.Config.CodecMaxBody, MaxDecoded: a.Config.CodecMaxDecoded,
			DisableEncode: !a.Config.CodecEncode, AllowUIWithoutToken: a.Config.CodecAllowUIWithoutToken,
			Log: a.Log.Named("codec"),
		}))
	}
	return mux
}

// healthz answers "ok", or 503 naming the components that failed (postgres,
// temporal) and logging why, or 503 "draining" once the worker is stopping.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	if a.Draining() {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var failed []string
	if err := a.Pool.Ping(ctx); err != nil {
		failed = append(failed, "postgres")
		a.Log.Warn("Health check: PostgreSQL unreachable", zap.Error(err))
	}
	if a.Temporal != nil {
		if _, err := a.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			failed = append(failed, "temporal")
			a.Log.Warn("Health check: Temporal unreachable", zap.Error(err))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unhealthy: "+strings.Join(failed, ", "))
		return
	}
	fmt.Fprintln(w, "ok")
}

// metrics serves the App's Prometheus registry: the SDK's metrics, the policy
// gauges' last values (refreshed in the background by StartGauges, so a scrape
// queries nothing), Go runtime and process metrics.
func (a *App) metrics(w http.ResponseWriter, r *http.Request) {
	a.gauges()
	a.Metrics.HTTPHandler().ServeHTTP(w, r)
}

// StartGauges refreshes the policy gauges now and then every DPP_METRICS_REFRESH
// until ctx is done or stop is called; stop waits for the refresher to finish.
func (a *App) StartGauges(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	interval := a.Config.MetricsRefresh
	if interval <= 0 {
		interval = 30 * time.Second
	}
	go func() {
		defer close(done)
		a.gauges().Run(ctx, interval)
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// gauges returns the App's policy gauges, built and added to App.Metrics on
// first use.
func (a *App) gauges() *metrics.Gauges {
	a.gaugesOnce.Do(func() {
		a.policyGauges = metrics.NewGauges(a.Log.Named("metrics"), a.PolicyGauges()...)
		if err := a.Metrics.Register(a.policyGauges); err != nil {
			a.Log.Error("The policy gauges cannot join /metrics", zap.Error(err))
		}
	})
	return a.policyGauges
}

// PolicyGauges are the gauges of the policy /metrics serves. Their names are a
// contract (dashboards and alerts use them); each is read by one small function,
// so changing where one comes from changes only that function.
func (a *App) PolicyGauges() []metrics.Gauge {
	gs := []metrics.Gauge{
		{Name: "dpp_orders_sealed", Help: "Orders whose buyer PII is held sealed.", Read: a.ordersSealed},
		{Name: "dpp_orders_purged", Help: "Orders whose buyer PII was crypto-erased.", Read: a.ordersPurged},
		{Name: "dpp_certificates", Help: "Certificates of sanitization in the evidence log.", Read: a.certificates},
		{Name: "dpp_tax_records_overdue", Help: "Tax records more than 2 days past their retention.", Read: a.taxRecordsOverdue},
	}
	gs = append(gs, metrics.Gauge{Name: "dpp_purges_overdue",
		Help: "Sealed orders more than an hour past their purge due time and not on legal hold, whatever the state of their workflow (RetentionAudit purges those whose workflow is gone).", Read: a.purgesOverdue},
		metrics.Gauge{Name: "dpp_orders_with_problems",
			Help: "Orders with a step that failed for good (e.g. no invoice issued); find them with OrderProblem in the Web UI.", Read: a.ordersWithProblems})
	gs = append(gs, a.alertGauges()...)
	return append(gs, metrics.Gauge{Name: "dpp_sync_lag_seconds", Help: "Age of the OrderSync watermark.", Read: a.syncLag})
}

func (a *App) scalar(ctx context.Context, sql string) (float64, error) {
	var v float64
	err := a.Pool.QueryRow(ctx, sql).Scan(&v)
	return v, err
}

func (a *App) ordersSealed(ctx context.Context) (float64, error) {
	return a.scalar(ctx, `SELECT count(*) FROM orders WHERE purged_at IS NULL`)
}

func (a *App) ordersPurged(ctx context.Context) (float64, error) {
	return a.scalar(ctx, `SELECT count(*) FROM orders WHERE purged_at IS NOT NULL`)
}

func (a *App) certificates(ctx context.Context) (float64, error) {
	return a.scalar(ctx, `SELECT count(*) FROM evidence_log WHERE kind = 'certificate-of-sanitization'`)
}

func (a *App) taxRecordsOverdue(ctx context.Context) (float64, error) {
	return a.scalar(ctx, `SELECT (SELECT count(*) FROM invoices WHERE purged_at IS NULL AND retain_until < now() - interval '2 days')
		+ (SELECT count(*) FROM credit_notes WHERE purged_at IS NULL AND amazon_order_id IN (SELECT amazon_order_id FROM credit_notes
			WHERE purged_at IS NULL GROUP BY amazon_order_id HAVING max(retain_until) < now() - interval '2 days'))`)
}

func (a *App) syncLag(ctx context.Context) (float64, error) {
	return a.scalar(ctx, `SELECT COALESCE((SELECT extract(epoch FROM now() - max(watermark)) FROM sync_state), 0)::float8`)
}

// purgesOverdue counts sealed orders more than an hour past their purge due
// time and not on hold, from the database: an order whose workflow failed, was
// terminated or never started counts too.
func (a *App) purgesOverdue(ctx context.Context) (float64, error) {
	n, err := a.Orders.CountOverdue(ctx, time.Now().Add(-time.Hour))
	return float64(n), err
}

func (a *App) ordersWithProblems(ctx context.Context) (float64, error) {
	return a.scalar(ctx, `SELECT count(*) FROM orders WHERE problem IS NOT NULL`)
}
