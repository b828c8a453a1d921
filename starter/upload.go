package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/workflows"
)

// uploadInvoice is `starter invoice upload <amazonOrderId>`: the operator runs
// the invoice's TaxDocumentUpload again after fixing what Amazon rejected.
func uploadInvoice(ctx context.Context, args []string) error {
	return uploadAgain(ctx, args, "invoice upload", "<amazonOrderId>", (*app.App).UploadInvoice)
}

// uploadCreditNote is `starter credit-note upload <creditNoteNumber>`, the same
// for a credit note.
func uploadCreditNote(ctx context.Context, args []string) error {
	return uploadAgain(ctx, args, "credit-note upload", "<creditNoteNumber>", (*app.App).UploadCreditNote)
}

func uploadAgain(ctx context.Context, args []string, cmd, idName string,
	start func(*app.App, context.Context, string) (client.WorkflowRun, error)) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	wait := fs.Bool("wait", false, "wait for Amazon's verdict and print the upload's status")
	id := parseAroundID(fs, args)
	if id == "" {
		return fmt.Errorf("usage: starter %s %s [-wait]", cmd, idName)
	}
	a, err := open(ctx, app.Sealing|app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	run, err := start(a, ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("started %s (run %s) for %s\n", run.GetID(), run.GetRunID(), id)
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
