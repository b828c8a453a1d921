// Package doctor diagnoses a deployment against what the policy needs: that the
// configured SP-API application gets buyer PII at all (LWA credentials, the
// restricted roles), that KMS, the database roles and Temporal are set up, and,
// when DPP_ORDER_CHANGE_QUEUE_URL is set, that ORDER_CHANGE notifications reach
// the queue and are consumed (notifications.go). Each
// check says what it found and how to fix it. It reads, never changes (its KMS calls generate
// and unwrap a throwaway data key).
//
// Nothing it prints is personal data: it says whether buyer fields are present,
// never what they hold.
package doctor

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/config"
)

// Check outcomes.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "FAIL"
)

// Result is one check's outcome.
type Result struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Found  string `json:"found"`
	Fix    string `json:"fix,omitempty"`
}

// Options tune the checks.
type Options struct {
	// OrderID is the order getOrder is tried on; empty: the newest order of the
	// last 30 days that searchOrders finds.
	OrderID string
	// Timeout bounds each check. Default 20s.
	Timeout time.Duration
}

// Run runs every check against cfg, in order, and returns their results.
func Run(ctx context.Context, cfg *config.Config, opts Options) []Result {
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	var out []Result
	for _, group := range []func(context.Context, *config.Config, Options) []Result{
		checkSPAPI, checkKMS, checkDatabase, checkTemporal, checkNotifications,
	} {
		gctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		out = append(out, group(gctx, cfg, opts)...)
		cancel()
	}
	return out
}

// Failed reports whether any check failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Print writes the results for an operator: one block per check.
func Print(w io.Writer, rs []Result) {
	fails, warns := 0, 0
	for _, r := range rs {
		fmt.Fprintf(w, "[%-4s] %s: %s\n", r.Status, r.Check, r.Found)
		if r.Fix != "" {
			fmt.Fprintf(w, "       fix: %s\n", r.Fix)
		}
		switch r.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	fmt.Fprintf(w, "%d checks: %d failed, %d warnings\n", len(rs), fails, warns)
}

func ok(check, found string) Result { return Result{Check: check, Status: OK, Found: found} }
func warn(check, found, fix string) Result {
	return Result{Check: check, Status: Warn, Found: found, Fix: fix}
}
func fail(check, found, fix string) Result {
	return Result{Check: check, Status: Fail, Found: found, Fix: fix}
}

// oneLine keeps an error's text on one line for the report.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
