package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/plusranger/dpp/internal/auditpack"
)

const exportUsage = "usage: starter evidence export --from YYYY-MM-DD --to YYYY-MM-DD -o DIR [--head SEQ:HASH, repeatable]"

// evidenceExport writes the auditor's pack for a period, from the database and
// the evidence chain alone (DATABASE_URL as dpp_auditor, DPP_EVIDENCE_KEYS).
func evidenceExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("evidence export", flag.ExitOnError)
	from := fs.String("from", "", "first day of the period, YYYY-MM-DD (UTC)")
	to := fs.String("to", "", "last day of the period, YYYY-MM-DD (UTC), included")
	dir := fs.String("o", "", "directory to write report.json, report.pdf, evidence.jsonl and verification.json into")
	heads := headFlags(fs)
	fs.Parse(args)
	if fs.NArg() != 0 || *from == "" || *to == "" || *dir == "" {
		return errors.New(exportUsage)
	}
	start, err := time.Parse(time.DateOnly, *from)
	if err != nil {
		return fmt.Errorf("--from %q: want a date, YYYY-MM-DD", *from)
	}
	last, err := time.Parse(time.DateOnly, *to)
	if err != nil {
		return fmt.Errorf("--to %q: want a date, YYYY-MM-DD", *to)
	}
	if last.Before(start) {
		return fmt.Errorf("--to %s is before --from %s", *to, *from)
	}
	a, err := openAuditor(ctx, true)
	if err != nil {
		return err
	}
	defer a.Close()
	pack, recs, err := auditpack.Build(ctx, a.Pool, auditpack.Options{From: start, To: last.AddDate(0, 0, 1), Keys: a.Keys, Heads: *heads, Now: time.Now()})
	if err != nil {
		return err
	}
	if err := auditpack.Write(*dir, pack, recs); err != nil {
		return err
	}
	problems := 0
	for _, c := range pack.Clauses {
		problems += len(c.Problems)
	}
	fmt.Printf("wrote %s: %d clauses, %d evidence entries (seq %d to %d), %d overdue or failed items\n",
		filepath.Join(*dir, auditpack.ReportPDF), len(pack.Clauses), len(recs), pack.Verification.FirstSeq, pack.Verification.LastSeq, problems)
	fmt.Printf("chain head %s\n", pack.Verification.Head)
	if !pack.Verification.OK {
		return fmt.Errorf("evidence chain BROKEN: %s (the pack records it)", pack.Verification.FirstBroken)
	}
	return nil
}
