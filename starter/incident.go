package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/workflows"
)

// incidentCmd: starter incident declare|report.
func incidentCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: starter incident declare|report (starter -h lists their flags)")
	}
	switch args[0] {
	case "declare":
		return incidentDeclare(ctx, args[1:])
	case "report":
		return incidentReport(ctx, args[1:])
	}
	return fmt.Errorf("unknown incident command %q: declare or report", args[0])
}

func incidentDeclare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("incident declare", flag.ExitOnError)
	var in workflows.IncidentInput
	fs.StringVar(&in.ID, "id", "", "incident id (default: a new one, YYYYMMDD-xxxxxx)")
	fs.StringVar(&in.Title, "title", "", "what happened, in a line (required; sealed)")
	fs.StringVar(&in.Summary, "summary", "", "more detail (sealed)")
	fs.StringVar(&in.Severity, "severity", "high", "low, medium, high or critical")
	fs.StringVar(&in.DetectedAt, "detected-at", "", "RFC 3339 time of detection (default: now; not in the future)")
	fs.StringVar(&in.ReportedBy, "by", defaultUser(), "who declares: an operator id or Slack user id")
	fs.BoolVar(&in.PersonalData, "personal-data", false, "personal data is involved: the ICO's 72-hour clock runs too")
	fs.Parse(args)
	// Refused before connecting to anything.
	if _, err := in.Validate(time.Now().UTC()); err != nil {
		return err
	}
	a, err := open(ctx, app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	id, existing, err := a.DeclareIncident(ctx, in)
	if err != nil {
		return err
	}
	if existing {
		fmt.Printf("%s is already declared: nothing started\n", workflows.IncidentWorkflowID(id))
		return nil
	}
	fmt.Printf("declared %s (Amazon must be notified within %s of detection)\n", workflows.IncidentWorkflowID(id), a.Config.IncidentAmazonDeadline)
	return nil
}

func incidentReport(ctx context.Context, args []string) error {
	id := ""
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("incident report", flag.ExitOnError)
	out := fs.String("o", "", "write <o>.md and <o>.pdf (default: incident-<id>.md and .pdf)")
	fs.Parse(args)
	if id == "" {
		return errors.New("usage: starter incident report <id> [-o NAME]")
	}
	if *out == "" {
		*out = workflows.IncidentWorkflowID(id)
	}
	a, err := open(ctx, app.Sealing)
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := a.IncidentService().Report(ctx, id, time.Now())
	if err != nil {
		return err
	}
	pdf, err := rep.PDF()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out+".md", []byte(rep.Markdown()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".pdf", pdf, 0o600); err != nil {
		return err
	}
	fmt.Printf("wrote %s.md and %s.pdf (%d timeline entries)\n", *out, *out, len(rep.Timeline))
	return nil
}
