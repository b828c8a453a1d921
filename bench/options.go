package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// options are the command-line flags; parseFlags fills in the defaults.
type options struct {
	orders       int
	out          string
	chaos        bool
	deadline     time.Duration
	workerKind   string
	baseline     bool
	deliverAfter time.Duration
	retention    time.Duration
	syncEvery    time.Duration
	adminDSN     string
	seed         int64
	logLevel     string
	crypto       bool
	pgRestart    bool
	perfTemporal time.Duration
	workerEnv    string
	tune         string
	// notifications is the notification phase's order count (0: off), sent
	// at notificationRate orders/s (0: all at once).
	notifications    int
	notificationRate float64
}

// parseFlags reads the command line and fills in the defaults that depend on -chaos; a bad
// -worker value ends the program with status 2.
func parseFlags() options {
	var o options
	flag.IntVar(&o.orders, "orders", 0, "orders to drive (default 2000; 200 with -chaos)")
	flag.StringVar(&o.out, "out", "", "JSON result file (default bench/results/<timestamp>[-chaos].json)")
	flag.BoolVar(&o.chaos, "chaos", false, "inject faults (worker SIGKILLs, a PostgreSQL restart, a KMS outage, SP-API 429/500 bursts) and check the invariants")
	flag.DurationVar(&o.deadline, "deadline", 0, "give up on orders not purged after this long (default 45m; 15m with -chaos)")
	flag.StringVar(&o.workerKind, "worker", "", "bench: worker built from bench/benchworker (the real wiring, SP-API client limits raised to the sandbox's, CPU profile); real: ./worker unchanged (default: bench; -chaos always uses real)")
	flag.BoolVar(&o.baseline, "baseline", true, "run the no-op baseline first")
	flag.DurationVar(&o.deliverAfter, "delivery-after", 0, "sandbox orders are delivered this long after creation (0: chosen from the baseline)")
	flag.DurationVar(&o.retention, "retention", 0, "DPP_PII_RETENTION for the worker (0: chosen from -orders)")
	flag.DurationVar(&o.syncEvery, "sync-every", 0, "pause between OrderSync passes (default 5s; 15s with -chaos, where the real worker's SP-API client keeps Amazon's searchOrders limit of 20 requests, then one per 3 minutes)")
	flag.StringVar(&o.adminDSN, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL admin DSN (may CREATE and DROP databases)")
	flag.Int64Var(&o.seed, "seed", 0, "seed of the generated orders and the chaos schedule (0: from the clock)")
	flag.StringVar(&o.logLevel, "log-level", "", "worker DPP_LOG_LEVEL (default info; debug with -chaos)")
	flag.BoolVar(&o.crypto, "crypto", true, "also run the vault Go benchmarks (envelope vs raw AES-GCM)")
	flag.BoolVar(&o.pgRestart, "pg-restart", true, "chaos: restart the PostgreSQL cluster once (affects everyone on the machine)")
	flag.StringVar(&o.workerEnv, "worker-env", "", "extra worker environment, KEY=VALUE,KEY=VALUE (tuning experiments)")
	flag.StringVar(&o.tune, "tune", "", "worker options to try on the baseline's worker and the bench worker, e.g. sticky=30s,autoscale=true,cache=500 (bench/tuning)")
	flag.IntVar(&o.notifications, "notifications", 300, "orders of the notification phase after the pipeline: ORDER_CHANGE notifications through goaws to sealed (0: off; never with -chaos). "+
		"300 keeps it under a minute and gives a p95 over 15 orders")
	flag.Float64Var(&o.notificationRate, "notifications-rate", 0, "orders/s at which the notification phase places its orders (0: all at once, which measures capacity; below capacity the latency is the consumer's own)")
	flag.DurationVar(&o.perfTemporal, "perf-temporal", 0, "record the Temporal server with perf for this long from the first order (0: off)")
	flag.Parse()
	if o.orders <= 0 {
		o.orders = 2000
		if o.chaos {
			o.orders = 200
		}
	}
	if o.deadline == 0 {
		o.deadline = 45 * time.Minute
		if o.chaos {
			o.deadline = 15 * time.Minute
		}
	}
	if o.chaos {
		o.workerKind = "real"
		o.notifications = 0
	} else if o.workerKind == "" {
		o.workerKind = "bench"
	}
	if o.workerKind != "bench" && o.workerKind != "real" {
		fmt.Fprintln(os.Stderr, "bench: -worker must be bench or real")
		os.Exit(2)
	}
	if o.syncEvery == 0 {
		o.syncEvery = 5 * time.Second
		if o.chaos {
			o.syncEvery = 15 * time.Second
		}
	}
	if o.logLevel == "" {
		o.logLevel = "info"
		if o.chaos {
			o.logLevel = "debug"
		}
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o
}
