package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/calendar"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

const dpoChannel = "C0DPO"

// On the real stack: a calendar run opens a duty and reminds the DPO channel;
// a scanner's webhook completes the scan with its report, a Slack click the
// risk assessment; the alert check, reading the real visibility store, raises
// the near deadline once and announces it resolved once the duty is done.
func TestCalendarDutiesAndDeadlineAlertOnTheStack(t *testing.T) {
	sl := testenv.StartSlack(t)
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["SLACK_BOT_TOKEN"] = "xoxb-e2e"
		env["SLACK_SIGNING_SECRET"] = testSigningSecret
		env["SLACK_API_URL"] = sl.APIURL()
		env["DPP_PUBLIC_ADDR"] = freeAddr(t)
		env["DPP_INGEST_TOKEN"] = ingestToken
		env["DPP_DPO_CHANNEL"] = dpoChannel
		env["DPP_DUTY_WINDOW"] = "2h"
		env["DPP_DUTY_REMINDERS"] = "1h"
	})
	base := servePublic(t, s.app)
	ctx := s.ctx()
	tc := s.app.Temporal
	runCalendar := func(duty string) workflows.ComplianceCalendarResult {
		t.Helper()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cal-" + duty + "-" + t.Name(), TaskQueue: s.app.Config.TaskQueue},
			workflows.ComplianceCalendarName, workflows.ComplianceCalendarInput{Duty: duty})
		s.must(err, "start calendar %s", duty)
		var res workflows.ComplianceCalendarResult
		s.must(run.Get(ctx, &res), "calendar %s", duty)
		return res
	}
	reminder := func(what string) testenv.SlackMessage {
		t.Helper()
		var msg testenv.SlackMessage
		sl.WaitFor(t, what, func() bool {
			for _, m := range sl.Messages() {
				if m.Channel == dpoChannel && strings.Contains(m.Text, what) {
					msg = m
					return true
				}
			}
			return false
		})
		return msg
	}
	dutyResult := func(id string) workflows.DutyStatus {
		t.Helper()
		var st workflows.DutyStatus
		s.must(tc.GetWorkflow(ctx, id, "").Get(ctx, &st), "duty %s", id)
		return st
	}

	scan := runCalendar(calendar.VulnerabilityScan)
	reminder("Vulnerability scan")
	req, _ := http.NewRequest(http.MethodPost, base+app.DutyReportPath+"?source=trivy", bytes.NewReader([]byte(`{"findings":[]}`)))
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	s.must(err, "post report")
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	s.saveHistory(ctx, "cal-"+calendar.VulnerabilityScan+"-"+t.Name(), "compliance_calendar.json")
	if st := dutyResult(scan.WorkflowID); st.Completed == nil || st.Completed.ReportSHA256 == "" || st.Completed.CompletedBy != "trivy" {
		t.Fatalf("scan: %+v", st)
	} else {
		out, _ := json.MarshalIndent(st, "", "  ")
		t.Logf("scan result: %s", out)
	}

	risk := runCalendar(calendar.RiskAssessment)
	if again := runCalendar(calendar.RiskAssessment); again.WorkflowID != risk.WorkflowID {
		t.Fatalf("a second run started %s", again.WorkflowID)
	}
	msg := reminder("Annual risk assessment")

	alertSaved := false
	alertRun := func() activities.CheckAlertsResult {
		t.Helper()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: s.app.Config.TaskQueue},
			workflows.AlertCheckName, workflows.AlertCheckInput{Schedules: []string{workflows.OrderSyncScheduleID}})
		s.must(err, "start alert check")
		var res activities.CheckAlertsResult
		s.must(run.Get(ctx, &res), "alert check")
		if !alertSaved {
			s.saveRunHistory(ctx, run.GetID(), run.GetRunID(), "alert_check.json")
			alertSaved = true
		}
		return res
	}
	key := "deadline-near/" + risk.WorkflowID
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(allTexts(sl), key) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s alert; messages: %s", key, allTexts(sl))
		}
		alertRun()
	}
	alertRun()
	if n := strings.Count(allTexts(sl), "*Alert* `"+key+"`"); n != 1 {
		t.Fatalf("alert %s sent %d times", key, n)
	}

	body, err := testenv.InteractionBody(sl.BlockClick("U0DPO", msg.Channel, msg.TS, activities.ActionDutyComplete, risk.WorkflowID))
	s.must(err, "click body")
	creq, err := testenv.SignedSlackRequest(base+app.SlackInteractionsPath, testSigningSecret, time.Now(), body)
	s.must(err, "click request")
	cresp, err := http.DefaultClient.Do(creq)
	s.must(err, "click")
	cresp.Body.Close()
	if st := dutyResult(risk.WorkflowID); st.Completed == nil || st.Completed.CompletedBy != "U0DPO" || st.Completed.EvidenceSeq == 0 {
		t.Fatalf("risk assessment: %+v", st)
	}
	s.saveHistory(ctx, risk.WorkflowID, "compliance_duty_reminded_completed.json")
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(allTexts(sl), "*Resolved* `"+key+"`") {
		if time.Now().After(deadline) {
			t.Fatalf("not resolved; messages: %s", allTexts(sl))
		}
		alertRun()
	}
	t.Logf("DPO channel:\n%s", allTexts(sl))

	// The daily Amazon data sweep, with nothing old enough to delete: one batch.
	sweep, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: s.app.Config.TaskQueue},
		workflows.AmazonDataSweepName, workflows.AmazonDataSweepInput{})
	s.must(err, "start amazon data sweep")
	var swept workflows.TaxRecordSweepResult
	s.must(sweep.Get(ctx, &swept), "amazon data sweep")
	s.saveRunHistory(ctx, sweep.GetID(), sweep.GetRunID(), "amazon_data_sweep.json")

	// An offboarding started before Offboarding set ComplianceDeadline: its
	// status query's deadline is read. A stand-in with the real type name, on
	// its own queue.
	fake := worker.New(tc, s.app.Config.TaskQueue+"-fake", worker.Options{})
	fake.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		st := map[string]any{"deadline": workflow.Now(ctx).Add(-time.Minute), "done": false}
		if err := workflow.SetQueryHandler(ctx, workflows.QueryStatus, func() (map[string]any, error) { return st, nil }); err != nil {
			return err
		}
		workflow.GetSignalChannel(ctx, "stop").Receive(ctx, nil)
		return nil
	}, workflow.RegisterOptions{Name: workflows.OffboardingName})
	s.must(fake.Start(), "fake worker")
	defer fake.Stop()
	off, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "offboarding-p-leaver-" + t.Name(), TaskQueue: s.app.Config.TaskQueue + "-fake"},
		workflows.OffboardingName)
	s.must(err, "start offboarding")
	okey := "deadline-passed/" + off.GetID()
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(allTexts(sl), okey) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s alert; messages: %s", okey, allTexts(sl))
		}
		alertRun()
	}
	s.must(tc.SignalWorkflow(ctx, off.GetID(), "", "stop", nil), "stop offboarding")
	s.must(off.Get(ctx, nil), "offboarding")
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(allTexts(sl), "*Resolved* `"+okey+"`") {
		if time.Now().After(deadline) {
			t.Fatalf("%s not resolved; messages: %s", okey, allTexts(sl))
		}
		alertRun()
	}
}

// allTexts is every message's text, one a line.
func allTexts(sl *testenv.Slack) string {
	var b strings.Builder
	for _, m := range sl.Messages() {
		b.WriteString(m.Text + "\n")
	}
	return b.String()
}
