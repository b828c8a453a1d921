// Command starter is the operator's CLI: it sets up Temporal (search attributes,
// schedules), prints and verifies evidence, exports invoices, and runs the SP-API
// sandbox for development. Configuration comes from the same environment as the
// worker (`worker -help`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: starter <command> [flags]

Commands:
  setup                              register search attributes and create (or update) the schedules
  start <amazonOrderId>              start an order's lifecycle now (OrderSync does this on its own)
  certificate <amazonOrderId>        print the order's certificates of sanitization and check them
  evidence verify                    check the whole evidence chain; non-zero exit names the first broken link
  invoice <amazonOrderId> -o FILE    export the order's VAT invoice PDF (recorded in the evidence log)
  sandbox [-addr HOST:PORT]          serve the SP-API sandbox (dev default when no LWA credentials are set)

Run 'starter <command> -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "-help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "setup":
		err = setup(ctx, args)
	case "start":
		err = start(ctx, args)
	case "certificate":
		err = certificate(ctx, args)
	case "evidence":
		err = evidenceCmd(ctx, args)
	case "invoice":
		err = exportInvoice(ctx, args)
	case "sandbox":
		err = serveSandbox(ctx, args)
	default:
		fmt.Fprintf(os.Stderr, "starter: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "starter %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
