package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/workflows"
)

// incidentCmd: starter incident declare|report|<decision>.
func incidentCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: starter incident declare|report|" + strings.Join(workflows.IncidentUpdates, "|") + " (starter -h lists their flags)")
	}
	switch args[0] {
	case "declare":
		return incidentDeclare(ctx, args[1:])
	case "report":
		return incidentReport(ctx, args[1:])
	}
	if slices.Contains(workflows.IncidentUpdates, args[0]) {
		return incidentDecide(ctx, args[0], args[1:])
	}
	return fmt.Errorf("unknown incident command %q: declare, report, or one of %s", args[0], strings.Join(workflows.IncidentUpdates, ", "))
}

// incidentDecide sends a decision as an Update: the incident's answer (its
// status, or why it refused) is printed at once. "by" may be an approver's
// address: it is turned into approver-<n> here, so no address reaches the
// workflow's history.
func incidentDecide(ctx context.Context, name string, args []string) error {
	id := ""
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("incident "+name, flag.ExitOnError)
	by := fs.String("by", defaultUser(), "who decides: a Slack user id, an operator id or an approver's e-mail address")
	target := fs.String("target", "amazon", "approve-notification: amazon or ico")
	text := fs.String("text", "", "approve-notification: the edited notification text (default: the drafted one)")
	stage := fs.String("stage", "", "advance-stage: the stage (default: the next one)")
	note := fs.String("note", "", "advance-stage: a note (sealed)")
	reference := fs.String("reference", "", "ico-reported: the ICO's reference number")
	lessons := fs.String("lessons", "", "close: the lessons-learned note (sealed)")
	falsePositive := fs.Bool("false-positive", false, "close: propose closing as a false positive (a second approver confirms)")
	reason := fs.String("reason", "", "close -false-positive: why (sealed)")
	asJSON := fs.Bool("json", false, "print the whole status (the status query's JSON) instead of a summary")
	fs.Parse(args)
	if id == "" {
		return fmt.Errorf("usage: starter incident %s <id> [flags] (starter incident %s -h lists them)", name, name)
	}
	a, err := open(ctx, app.Temporal|app.Sealing)
	if err != nil {
		return err
	}
	defer a.Close()
	who, err := a.IncidentBy(ctx, *by)
	if err != nil {
		return err
	}
	var payload interface{ Validate() error }
	switch name {
	case workflows.UpdateApproveNotification:
		payload = workflows.ApproveNotificationSignal{By: who, Target: *target, Text: *text}
	case workflows.UpdateAdvanceStage:
		payload = workflows.AdvanceStageSignal{By: who, Stage: *stage, Note: *note}
	case workflows.UpdateICOReported:
		payload = workflows.ICOReportedSignal{By: who, Reference: *reference}
	case workflows.UpdateClose:
		payload = workflows.CloseSignal{By: who, Lessons: *lessons, FalsePositive: *falsePositive, Reason: *reason}
	case workflows.UpdateConfirmFalsePositive:
		payload = workflows.ConfirmFalsePositiveSignal{By: who}
	}
	if err := payload.Validate(); err != nil {
		return err
	}
	st, err := a.DecideIncident(ctx, id, name, who, payload)
	if err != nil {
		return fmt.Errorf("incident %s: %w", id, err)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(st, "", "  ")
		fmt.Println(string(out))
		return nil
	}
	fmt.Printf("%s %s: done; %s\n", name, workflows.IncidentWorkflowID(id), summary(st))
	return nil
}

// summary is the status in a line: stage, each notification, what waits.
func summary(st workflows.IncidentStatus) string {
	state := func(n workflows.NotificationState, verb string, done *time.Time) string {
		switch {
		case done != nil:
			return verb + " " + done.UTC().Format(time.RFC3339)
		case n.Sending:
			return "approved by " + n.ApprovedBy + ", sending"
		case n.ApprovedBy != "":
			return "approved by " + n.ApprovedBy + ", due " + n.DueAt.UTC().Format(time.RFC3339)
		}
		return "due " + n.DueAt.UTC().Format(time.RFC3339)
	}
	parts := []string{"stage " + st.Stage, "Amazon " + state(st.Amazon, "notified", st.Amazon.SentAt)}
	if st.ICO != nil {
		parts = append(parts, "ICO "+state(*st.ICO, "reported", st.ICO.ReportedAt))
	}
	if st.FalsePositiveProposedBy != "" && !st.Closed {
		parts = append(parts, "false positive proposed by "+st.FalsePositiveProposedBy)
	}
	if st.Closed {
		parts = append(parts, "closed: "+st.Outcome)
	} else if len(st.OpenApprovals) > 0 {
		parts = append(parts, "awaiting approval: "+strings.Join(st.OpenApprovals, ", "))
	}
	return strings.Join(parts, "; ")
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
