// Command bench is the benchmark and fault-injection harness (issue 4).
//
//	go run ./bench [-orders N] [-out file.json]          # make bench BENCH_ORDERS=N BENCH_OUT=file.json
//	go run ./bench -chaos [-orders N] [-deadline 15m]   # make chaos CHAOS_ORDERS=N
//
// It starts, on loopback only, the Temporal dev server (SQLite file, WAL pragmas),
// local-kms behind a counting proxy, a fresh PostgreSQL database, the SP-API
// sandbox (in process, marked PII) and the worker as a subprocess; runs a no-op
// baseline of the same workflow shape, then drives N orders from the sandbox
// through OrderSync and the whole OrderLifecycle until every one is purged. It
// prints one table, writes it as JSON and checks the invariants (chaos mode adds
// worker SIGKILLs, a PostgreSQL restart, a 30 s KMS outage and SP-API error
// bursts). Every process it starts is stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// marker is in every piece of PII the sandbox makes up; the leak checks look for it in
// histories, logs and database dumps.
const marker = "BENCHPII7Q"

func main() {
	o := parseFlags()

	// local-kms accepts any credentials; the AWS SDK only needs some.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"} {
		_ = os.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	var interrupted atomic.Bool
	go func() {
		<-sigs
		interrupted.Store(true)
		fmt.Fprintln(os.Stderr, "\nbench: interrupted: stopping everything it started (Ctrl-C again to force)")
		cancel()
		<-sigs
		runCleanups()
		os.Exit(130)
	}()

	code, err := run(ctx, o)
	cancel()
	runCleanups()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if code == 0 {
			code = 1
		}
	}
	if interrupted.Load() {
		code = 130
	}
	os.Exit(code)
}
