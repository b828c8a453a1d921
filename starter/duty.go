package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"time"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/workflows"
)

// dutyCmd: starter duty complete <duty> <period> [flags].
func dutyCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "complete" {
		return errors.New("usage: starter duty complete <duty> <period> [-by ID] [-note TEXT] [-report FILE] [-rotated-at TIME]")
	}
	fs := flag.NewFlagSet("duty complete", flag.ExitOnError)
	by := fs.String("by", defaultUser(), "who did the duty: an operator, person or Slack user id")
	note := fs.String("note", "", "a short reference (ticket, document id); no personal data")
	report := fs.String("report", "", "a report file to attach as evidence (required for vulnerability-scan)")
	rotatedAt := fs.String("rotated-at", "", "lwa-secret-rotation: RFC 3339 time the new client secret was issued (default: now)")
	rest := args[1:]
	if len(rest) < 2 {
		return fmt.Errorf("usage: starter duty complete <duty> <period>; duties: %v", calendar.Duties)
	}
	duty, period := rest[0], rest[1]
	fs.Parse(rest[2:])
	if !calendar.Known(duty) {
		return fmt.Errorf("unknown duty; duties: %v", calendar.Duties)
	}
	if err := calendar.CheckPeriod(period); err != nil {
		return err
	}
	req := workflows.CompleteDutyRequest{By: *by, Note: *note}
	if duty == calendar.LWASecretRotation {
		t := time.Now().UTC()
		if *rotatedAt != "" {
			var err error
			if t, err = time.Parse(time.RFC3339, *rotatedAt); err != nil {
				return errors.New(`flag -rotated-at must be an RFC 3339 time like 2026-12-01T09:00:00Z`)
			}
		}
		req.RotatedAt = &t
	}
	var content []byte
	if *report != "" {
		var err error
		if content, err = os.ReadFile(*report); err != nil {
			return fmt.Errorf("read the report: %w", err)
		}
	}
	// Sealing: the note is sealed here and only its ref reaches the workflow.
	a, err := open(ctx, app.Sealing|app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	if content != nil {
		source := "operator"
		rep, err := a.Duties().AttachReport(ctx, duty, source, mime.TypeByExtension(filepath.Ext(*report)), content)
		if err != nil {
			return err
		}
		req.ReportSHA256 = rep.SHA256
		fmt.Printf("attached report sha256:%s (%d bytes)\n", rep.SHA256, rep.Size)
	}
	st, err := a.CompleteDuty(ctx, calendar.WorkflowID(duty, period), req)
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(st, "", "  ")
	fmt.Printf("%s\n", out)
	return nil
}
