package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/workflows"
)

// HTTPHandler serves the worker's endpoints: /healthz, /metrics, and the codec
// server /codec/encode and /codec/decode (see internal/codec).
func (a *App) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Ready(r.Context()); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", a.metrics)
	if a.Codec != nil {
		mux.Handle("/codec/", codec.NewServer(a.Codec, codec.ServerOptions{
			Prefix: "/codec", Namespace: a.Config.TemporalNamespace, Token: a.Config.CodecToken,
			CORSOrigin: a.Config.CodecCORSOrigin, MaxBody: a.Config.CodecMaxBody, DisableEncode: !a.Config.CodecEncode,
			AllowUIWithoutToken: a.Config.CodecAllowUIWithoutToken, Log: a.Log.Named("codec"),
		}))
	}
	return mux
}

// metrics exposes the policy's own gauges in the Prometheus text format, read
// from the sealed store so every worker reports the same truth.
func (a *App) metrics(w http.ResponseWriter, r *http.Request) {
	var sealed, purged, certificates, overdueTax int64
	var syncLag float64
	err := a.Pool.QueryRow(r.Context(), `SELECT
		(SELECT count(*) FROM orders WHERE purged_at IS NULL),
		(SELECT count(*) FROM orders WHERE purged_at IS NOT NULL),
		(SELECT count(*) FROM evidence_log WHERE kind = 'certificate-of-sanitization'),
		(SELECT count(*) FROM invoices WHERE purged_at IS NULL AND retain_until < now() - interval '2 days'),
		COALESCE((SELECT extract(epoch FROM now() - max(watermark)) FROM sync_state), 0)`).
		Scan(&sealed, &purged, &certificates, &overdueTax, &syncLag)
	if err != nil {
		http.Error(w, "metrics unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	overdue := a.overduePurges(r.Context())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP dpp_orders_sealed Orders whose buyer PII is held sealed.\n# TYPE dpp_orders_sealed gauge\ndpp_orders_sealed %d\n", sealed)
	fmt.Fprintf(w, "# HELP dpp_orders_purged Orders whose buyer PII was crypto-erased.\n# TYPE dpp_orders_purged gauge\ndpp_orders_purged %d\n", purged)
	fmt.Fprintf(w, "# HELP dpp_certificates Certificates of sanitization in the evidence log.\n# TYPE dpp_certificates gauge\ndpp_certificates %d\n", certificates)
	fmt.Fprintf(w, "# HELP dpp_tax_records_overdue Tax records more than 2 days past their retention.\n# TYPE dpp_tax_records_overdue gauge\ndpp_tax_records_overdue %d\n", overdueTax)
	if overdue >= 0 {
		fmt.Fprintf(w, "# HELP dpp_purges_overdue Orders still holding PII more than an hour after their purge was due (holds excluded).\n# TYPE dpp_purges_overdue gauge\ndpp_purges_overdue %d\n", overdue)
	}
	fmt.Fprintf(w, "# HELP dpp_sync_lag_seconds Age of the OrderSync watermark.\n# TYPE dpp_sync_lag_seconds gauge\ndpp_sync_lag_seconds %g\n", syncLag)
	_, _ = a.Metrics.WriteTo(w)
}

// overduePurges counts running orders whose purge is more than an hour overdue
// and not on legal hold, from Temporal's visibility store; -1 if unknown.
func (a *App) overduePurges(ctx context.Context) int64 {
	if a.Temporal == nil {
		return -1
	}
	q := fmt.Sprintf(`WorkflowType = %q AND ExecutionStatus = "Running" AND %s < %q AND %s != %q`,
		workflows.OrderLifecycleName, workflows.PurgeDueAtKey.GetName(), time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		workflows.OrderStageKey.GetName(), workflows.StageOnHold)
	res, err := a.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: a.Config.TemporalNamespace, Query: q})
	if err != nil {
		a.Log.Warn("Cannot count overdue purges", zap.Error(err))
		return -1
	}
	return res.GetCount()
}
