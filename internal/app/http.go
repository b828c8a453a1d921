package app

import (
	"fmt"
	"net/http"
)

// HTTPHandler serves the worker's endpoints: /healthz and /metrics.
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
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP dpp_orders_sealed Orders whose buyer PII is held sealed.\n# TYPE dpp_orders_sealed gauge\ndpp_orders_sealed %d\n", sealed)
	fmt.Fprintf(w, "# HELP dpp_orders_purged Orders whose buyer PII was crypto-erased.\n# TYPE dpp_orders_purged gauge\ndpp_orders_purged %d\n", purged)
	fmt.Fprintf(w, "# HELP dpp_certificates Certificates of sanitization in the evidence log.\n# TYPE dpp_certificates gauge\ndpp_certificates %d\n", certificates)
	fmt.Fprintf(w, "# HELP dpp_tax_records_overdue Tax records more than 2 days past their retention.\n# TYPE dpp_tax_records_overdue gauge\ndpp_tax_records_overdue %d\n", overdueTax)
	fmt.Fprintf(w, "# HELP dpp_sync_lag_seconds Age of the OrderSync watermark.\n# TYPE dpp_sync_lag_seconds gauge\ndpp_sync_lag_seconds %g\n", syncLag)
}
