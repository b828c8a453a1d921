package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/workflows"
)

// uploadInvoice is `starter invoice upload <amazonOrderId>`: the operator runs
// the invoice's TaxDocumentUpload again after fixing what Amazon rejected.
func uploadInvoice(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("invoice upload", flag.ExitOnError)
	wait := fs.Bool("wait", false, "wait for Amazon's verdict and print the upload's status")
	orderID := parseAroundID(fs, args)
	if orderID == "" {
		return errors.New("usage: starter invoice upload <amazonOrderId> [-wait]")
	}
	a, err := open(ctx, app.Sealing|app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	run, err := a.UploadInvoice(ctx, orderID)
	if err != nil {
		return err
	}
	fmt.Printf("started %s (run %s) for order %s\n", run.GetID(), run.GetRunID(), orderID)
	if !*wait {
		fmt.Printf("follow it: temporal workflow query --workflow-id %s --name %s\n", run.GetID(), workflows.QueryStatus)
		return nil
	}
	var st workflows.TaxDocumentUploadStatus
	if err := run.Get(ctx, &st); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	fmt.Println(string(b))
	return nil
}

// parseAroundID parses flags given before or after one positional id (Go's
// flag package stops at the first non-flag) and returns the id, "" if none.
func parseAroundID(fs *flag.FlagSet, args []string) string {
	id := ""
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	fs.Parse(args)
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	return id
}
