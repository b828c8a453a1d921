package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

const (
	incidentChannel = "C0INCIDENTS"
	ingestToken     = "ingest-token-0123456789abcdef"
)

// incidentStack is the stack with Slack (slacktest), Mailpit and the public
// listener serving.
type incidentStack struct {
	*stack
	slack   *testenv.Slack
	mailpit *testenv.Mailpit
	amazon  string // DPP_AMAZON_SECURITY_EMAIL, unique to the test
	base    string // the public listener
}

func newIncidentStack(t *testing.T, setups ...func(env map[string]string)) *incidentStack {
	sl := testenv.StartSlack(t)
	mp := testenv.MailpitForTest(t)
	amazon := "security-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "@amazon.example"
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["SLACK_BOT_TOKEN"] = "xoxb-e2e"
		env["SLACK_SIGNING_SECRET"] = testSigningSecret
		env["SLACK_API_URL"] = sl.APIURL()
		env["DPP_PUBLIC_ADDR"] = freeAddr(t)
		env["DPP_INGEST_TOKEN"] = ingestToken
		env["DPP_INCIDENT_CHANNEL"] = incidentChannel
		env["DPP_INCIDENT_APPROVERS"] = "U0DPO,U0CTO"
		env["SMTP_URL"] = mp.SMTPURL()
		env["DPP_AMAZON_SECURITY_EMAIL"] = amazon
		env["DPP_MAIL_FROM"] = "dpp@plusranger.example"
		for _, f := range setups {
			f(env)
		}
	})
	return &incidentStack{stack: s, slack: sl, mailpit: mp, amazon: amazon, base: servePublic(t, s.app)}
}

func (s *incidentStack) post(path, token string, body any) (int, map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	s.must(err, "POST %s", path)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func (s *incidentStack) click(user, channel, ts, actionID, value string) int {
	s.t.Helper()
	body, err := testenv.InteractionBody(s.slack.BlockClick(user, channel, ts, actionID, value))
	s.must(err, "click body")
	req, err := testenv.SignedSlackRequest(s.base+app.SlackInteractionsPath, testSigningSecret, time.Now(), body)
	s.must(err, "click request")
	resp, err := http.DefaultClient.Do(req)
	s.must(err, "click")
	resp.Body.Close()
	return resp.StatusCode
}

// incidentMessage waits for the channel message that contains every want.
func (s *incidentStack) incidentMessage(what string, want ...string) testenv.SlackMessage {
	s.t.Helper()
	var msg testenv.SlackMessage
	s.slack.WaitFor(s.t, what, func() bool {
		for _, m := range s.slack.Messages() {
			ok := m.Channel == incidentChannel
			for _, w := range want {
				ok = ok && strings.Contains(m.BlocksJSON(), w)
			}
			if ok {
				msg = m
				return true
			}
		}
		return false
	})
	return msg
}

// submitView posts, signed, the submission by user of the modal view (as
// opened) for incident id with value in its input block and element, and
// returns the answer.
func (s *incidentStack) submitView(user string, view slack.ModalViewRequest, block, element, value string) string {
	s.t.Helper()
	return s.submitState(user, view, map[string]map[string]slack.BlockAction{block: {element: {Value: value}}})
}

// submitState posts, signed, the submission by user of the modal view with
// the given state, and returns the answer.
func (s *incidentStack) submitState(user string, view slack.ModalViewRequest, state map[string]map[string]slack.BlockAction) string {
	s.t.Helper()
	ic := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: user}}
	ic.View.CallbackID, ic.View.PrivateMetadata, ic.View.Blocks = view.CallbackID, view.PrivateMetadata, view.Blocks
	ic.View.State = &slack.ViewState{Values: state}
	body, err := testenv.InteractionBody(ic)
	s.must(err, "view body")
	req, err := testenv.SignedSlackRequest(s.base+app.SlackInteractionsPath, testSigningSecret, time.Now(), body)
	s.must(err, "view request")
	resp, err := http.DefaultClient.Do(req)
	s.must(err, "view submission")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (s *incidentStack) incidentStatus(ctx context.Context, id string) workflows.IncidentStatus {
	s.t.Helper()
	st, err := s.tryStatus(ctx, id)
	s.must(err, "query incident %s", id)
	return st
}

func (s *incidentStack) tryStatus(ctx context.Context, id string) (workflows.IncidentStatus, error) {
	var st workflows.IncidentStatus
	v, err := s.app.Temporal.QueryWorkflow(ctx, workflows.IncidentWorkflowID(id), "", workflows.QueryStatus)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

func (s *incidentStack) waitIncident(ctx context.Context, id, what string, ok func(workflows.IncidentStatus) bool) workflows.IncidentStatus {
	s.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st, err := s.tryStatus(ctx, id)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("incident %s never %s: %+v (%v)", id, what, st, err)
		}
	}
}

// TestIncidentDeclaredByMonitoringApprovedInSlackEmailedToAmazon: the whole
// path on real components. A monitoring system declares through POST
// /incidents; the incident message appears in the channel (slacktest); a
// non-approver's signed click is refused and recorded; the approver's signed
// click sends the notification through Mailpit; its Message-ID is on the
// timeline and in the evidence; the message shows it sent. The title never
// appears in plaintext in the history, the database or the logs.
func TestIncidentDeclaredByMonitoringApprovedInSlackEmailedToAmazon(t *testing.T) {
	s := newIncidentStack(t)
	ctx := s.ctx()
	title := "Leaked export of " + marker
	decl := map[string]any{"title": title, "severity": "critical", "summary": "Seen by " + marker,
		"detectedAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "personalData": false}

	if code, _ := s.post(app.IncidentsPath, "", decl); code != http.StatusUnauthorized {
		t.Fatalf("declaration without the token: %d", code)
	}
	if code, out := s.post(app.IncidentsPath, ingestToken, map[string]any{"title": title, "severity": "apocalyptic"}); code != http.StatusBadRequest ||
		!strings.Contains(out["error"].(string), `"severity"`) || strings.Contains(out["error"].(string), marker) {
		t.Fatalf("bad severity: %d %v", code, out)
	}
	code, out := s.post(app.IncidentsPath, ingestToken, decl)
	if code != http.StatusAccepted {
		t.Fatalf("declaration: %d %v", code, out)
	}
	id := out["id"].(string)
	decl["id"] = id
	if code, out := s.post(app.IncidentsPath, ingestToken, decl); code != http.StatusOK || out["existing"] != true {
		t.Fatalf("declaring %s again: %d %v", id, code, out)
	}

	msg := s.incidentMessage("the incident message", "Incident "+id, incident.ActionApproveAmazon)
	if !strings.Contains(msg.BlocksJSON(), "Incident "+id) || !strings.Contains(msg.BlocksJSON(), "Draft notification to Amazon") {
		t.Fatalf("incident message: %s", msg.BlocksJSON())
	}

	// The Web UI lists incidents by urgency: ComplianceDeadline is Amazon's deadline.
	before := s.incidentStatus(ctx, id)
	desc, err := s.app.Temporal.DescribeWorkflow(ctx, workflows.IncidentWorkflowID(id), "")
	s.must(err, "describe")
	if due, ok := desc.TypedSearchAttributes.GetTime(workflows.ComplianceDeadlineKey); !ok || !due.Equal(before.Amazon.DueAt) {
		t.Fatalf("ComplianceDeadline %s (%v), Amazon due %s", due, ok, before.Amazon.DueAt)
	}

	if code := s.click("U0INTRUDER", msg.Channel, msg.TS, incident.ActionApproveAmazon, id); code != http.StatusOK {
		t.Fatalf("intruder click: %d", code)
	}
	s.slack.WaitFor(t, "the not-an-approver reply", func() bool {
		for _, r := range s.slack.Responses() {
			if strings.Contains(r.Text, "only the incident approvers") {
				return true
			}
		}
		return false
	})
	if st := s.incidentStatus(ctx, id); st.Amazon.SentAt != nil {
		t.Fatal("a non-approver's click sent the notification")
	}

	if code := s.click("U0DPO", msg.Channel, msg.TS, incident.ActionApproveAmazon, id); code != http.StatusOK {
		t.Fatalf("approver click: %d", code)
	}
	st := s.waitIncident(ctx, id, "sent to Amazon", func(st workflows.IncidentStatus) bool { return st.Amazon.SentAt != nil })
	if st.Amazon.ApprovedBy != "U0DPO" || st.Amazon.MessageID != "<"+incident.MessageID(id, incident.TargetAmazon)+">" || st.Amazon.Preliminary {
		t.Fatalf("status after approval: %+v", st.Amazon)
	}

	// The e-mail, read back from Mailpit.
	msgs, err := s.mailpit.Messages(ctx)
	s.must(err, "Mailpit messages")
	var got *testenv.Message
	for i := range msgs {
		if msgs[i].SentTo(s.amazon) {
			got = &msgs[i]
		}
	}
	if got == nil || !strings.Contains(got.Subject, id) || "<"+got.MessageID+">" != st.Amazon.MessageID {
		t.Fatalf("e-mail to %s: %+v", s.amazon, got)
	}
	body, err := s.mailpit.MessageText(ctx, got.ID)
	s.must(err, "e-mail body")
	for _, want := range []string{"What happened: " + title, "When detected:", "Data affected: no personal data", "Actions taken:", "Contact: "} {
		if !strings.Contains(body, want) {
			t.Errorf("e-mail body lacks %q:\n%s", want, body)
		}
	}

	// The timeline and the evidence.
	tl, err := s.app.IncidentService().Timeline(ctx, id)
	s.must(err, "timeline")
	var kinds []string
	var sentEntry *incident.Entry
	for i, e := range tl {
		kinds = append(kinds, e.Kind+"/"+e.Actor)
		if e.Kind == "notification-sent" {
			sentEntry = &tl[i]
		}
	}
	if sentEntry == nil || sentEntry.Detail["messageId"] != st.Amazon.MessageID || sentEntry.Actor != "U0DPO" {
		t.Fatalf("timeline %v", kinds)
	}
	for _, want := range []string{"declared/ingest", "decision-refused/U0INTRUDER", "approved/U0DPO"} {
		if !strings.Contains(strings.Join(kinds, " "), want) {
			t.Errorf("timeline lacks %s: %v", want, kinds)
		}
	}
	var evidence int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log WHERE subject = $1`, workflows.IncidentWorkflowID(id)).Scan(&evidence), "evidence")
	if evidence != len(tl) {
		t.Errorf("%d evidence records for %d timeline entries", evidence, len(tl))
	}

	// The message shows it sent, without the approve button.
	s.slack.WaitFor(t, "the message updated", func() bool {
		m, _ := s.slack.Message(msg.Channel, msg.TS)
		return strings.Contains(m.BlocksJSON(), "Amazon: notified") && !strings.Contains(m.BlocksJSON(), incident.ActionApproveAmazon)
	})

	// Close it with lessons learned; the run ends.
	s.must(s.app.Temporal.SignalWorkflow(ctx, workflows.IncidentWorkflowID(id), "", workflows.SignalClose,
		workflows.CloseSignal{By: "U0CTO", Lessons: "Lessons about " + marker}), "close")
	var res workflows.IncidentStatus
	s.must(s.app.Temporal.GetWorkflow(ctx, workflows.IncidentWorkflowID(id), "").Get(ctx, &res), "result")
	if !res.Closed || res.Outcome != incident.OutcomeResolved {
		t.Fatalf("result %+v", res)
	}
	desc, err = s.app.Temporal.DescribeWorkflow(ctx, workflows.IncidentWorkflowID(id), "")
	s.must(err, "describe")
	if due, ok := desc.TypedSearchAttributes.GetTime(workflows.ComplianceDeadlineKey); ok {
		t.Errorf("a closed incident still has ComplianceDeadline %s", due)
	}
	s.saveHistory(ctx, workflows.IncidentWorkflowID(id), "incident_notification_approved.json")

	// The report, from the database and the evidence.
	rep, err := s.app.IncidentService().Report(ctx, id, time.Now())
	s.must(err, "report")
	md := rep.Markdown()
	for _, want := range []string{"# Incident " + id, title, "| Amazon (24 hours) |", "| met |", "notification-sent", "decision-refused", "closed"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "MISSING") {
		t.Errorf("a timeline entry has no evidence:\n%s", md)
	}
	pdf, err := rep.PDF()
	s.must(err, "report PDF")
	if txt := pdfText(t, pdf); !strings.Contains(txt, "Incident "+id) || !strings.Contains(txt, "met") {
		t.Errorf("report PDF text:\n%s", txt)
	}

	s.assertNoPII("the history (as stored)", s.history(ctx, workflows.IncidentWorkflowID(id)))
	s.assertNoPII("the database", s.pgDump())
	s.assertNoPII("the logs", []byte(s.logs.String()))
}

// TestIncidentSlashCommandDeclares: /incident through the public listener,
// signed, starts the workflow; a bad one is answered, not started. The ICO
// report of its personal-data breach is approved by button and its reference
// recorded through a modal.
func TestIncidentSlashCommandDeclares(t *testing.T) {
	s := newIncidentStack(t)
	ctx := s.ctx()
	send := func(text string) map[string]any {
		req, err := testenv.SignedSlackRequest(s.base+app.SlackCommandsPath, testSigningSecret, time.Now(),
			testenv.CommandBody("/incident", "U0OPS", "C0OPS", text, ""))
		s.must(err, "command")
		resp, err := http.DefaultClient.Do(req)
		s.must(err, "command")
		defer resp.Body.Close()
		var out map[string]any
		s.must(json.NewDecoder(resp.Body).Decode(&out), "command answer")
		return out
	}
	out := send("medium personal-data Laptop with exports stolen " + marker)
	text, _ := out["text"].(string)
	if !strings.HasPrefix(text, "Incident ") || strings.Contains(text, marker) {
		t.Fatalf("answer %v", out)
	}
	id := strings.Fields(text)[1]
	st := s.waitIncident(ctx, id, "declared", func(st workflows.IncidentStatus) bool { return st.Stage != "" })
	if st.Severity != "medium" || !st.PersonalData || st.ICO == nil {
		t.Fatalf("status %+v", st)
	}
	if out := send("critical"); !strings.Contains(out["text"].(string), "Usage: /incident") {
		t.Fatalf("no title: %v", out)
	}

	// Personal data: the ICO report is approved by button, then its reference
	// recorded through the modal (views.open, then a signed view submission).
	msg := s.incidentMessage("the incident message with the ICO button", "Incident "+id, incident.ActionApproveICO)
	if code := s.click("U0CTO", msg.Channel, msg.TS, incident.ActionApproveICO, id); code != http.StatusOK {
		t.Fatalf("ICO approval click: %d", code)
	}
	s.slack.WaitFor(t, "the ICO reference button", func() bool {
		m, _ := s.slack.Message(msg.Channel, msg.TS)
		return strings.Contains(m.BlocksJSON(), incident.ActionICOReference)
	})
	if code := s.click("U0CTO", msg.Channel, msg.TS, incident.ActionICOReference, id); code != http.StatusOK {
		t.Fatalf("ICO reference click: %d", code)
	}
	views := s.slack.Views()
	if len(views) != 1 || views[0].View.CallbackID != incident.ViewICOReported || views[0].View.PrivateMetadata != id {
		t.Fatalf("modal %+v", views)
	}
	submit := func(ref string) string {
		return s.submitView("U0CTO", views[0].View, incident.ICOReferenceBlock, incident.ICOReferenceElement, ref)
	}
	if answer := submit("not a reference"); !strings.Contains(answer, `"response_action":"errors"`) || !strings.Contains(answer, `"reference"`) {
		t.Fatalf("bad reference: %s", answer)
	}
	if answer := submit("IC-123456-A1B2"); answer != "" {
		t.Fatalf("good reference: %q, want an empty 200 (closes the modal)", answer)
	}
	st = s.waitIncident(ctx, id, "ICO reported", func(st workflows.IncidentStatus) bool { return st.ICO != nil && st.ICO.ReportedAt != nil })
	if st.ICO.Reference != "IC-123456-A1B2" || st.ICO.ApprovedBy != "U0CTO" {
		t.Fatalf("ICO %+v", st.ICO)
	}
	s.must(s.app.Temporal.TerminateWorkflow(ctx, workflows.IncidentWorkflowID(id), "", "test over"), "terminate")
}

// TestWorkerBinaryServesIncidentsOnItsPublicListener: the production worker
// binary, as a process, serves the public listener: a monitoring system's
// declaration, the incident message, the approver's signed click, the e-mail.
func TestWorkerBinaryServesIncidentsOnItsPublicListener(t *testing.T) {
	bin := buildWorker(t)
	s := newIncidentStack(t)
	ctx := s.ctx()
	// The in-process worker stops: the process does the work.
	s.worker.Stop()
	s.worker = nil
	public := freeAddr(t)
	s.env["DPP_PUBLIC_ADDR"] = public
	w := s.startWorkerProcess(ctx, bin, "worker")
	s.base = "http://" + public

	code, out := s.post(app.IncidentsPath, ingestToken, map[string]any{"title": "Worker process test " + marker, "severity": "low"})
	if code != http.StatusAccepted {
		t.Fatalf("declaration: %d %v", code, out)
	}
	id := out["id"].(string)
	msg := s.incidentMessage("the incident message", "Incident "+id)
	if code := s.click("U0DPO", msg.Channel, msg.TS, incident.ActionApproveAmazon, id); code != http.StatusOK {
		t.Fatalf("approver click: %d", code)
	}
	st := s.waitIncident(ctx, id, "sent", func(st workflows.IncidentStatus) bool { return st.Amazon.SentAt != nil })
	msgs, err := s.mailpit.Messages(ctx)
	s.must(err, "Mailpit")
	found := false
	for _, m := range msgs {
		found = found || (m.SentTo(s.amazon) && "<"+m.MessageID+">" == st.Amazon.MessageID)
	}
	if !found {
		t.Fatalf("no e-mail %s to %s", st.Amazon.MessageID, s.amazon)
	}
	s.assertNoPII("the worker's logs", []byte(w.output.String()))
	s.must(s.app.Temporal.TerminateWorkflow(ctx, workflows.IncidentWorkflowID(id), "", "test over"), "terminate")
}

// TestIncidentEditedInSlackIsSentAsEdited: an approver opens the drafted
// notification in a modal, edits it and approves; that text is what Amazon
// receives. Someone else cannot even open it.
func TestIncidentEditedInSlackIsSentAsEdited(t *testing.T) {
	s := newIncidentStack(t)
	ctx := s.ctx()
	code, out := s.post(app.IncidentsPath, ingestToken, map[string]any{"title": "Edited notice " + marker, "severity": "medium"})
	if code != http.StatusAccepted {
		t.Fatalf("declaration: %d %v", code, out)
	}
	id := out["id"].(string)
	msg := s.incidentMessage("the incident message", "Incident "+id, incident.ActionEditAmazon)
	s.click("U0INTRUDER", msg.Channel, msg.TS, incident.ActionEditAmazon, id)
	s.slack.WaitFor(t, "the refusal", func() bool {
		for _, r := range s.slack.Responses() {
			if strings.Contains(r.Text, "may edit and send") {
				return true
			}
		}
		return false
	})
	if len(s.slack.Views()) != 0 {
		t.Fatal("a non-approver opened the notification")
	}
	if code := s.click("U0DPO", msg.Channel, msg.TS, incident.ActionEditAmazon, id); code != http.StatusOK {
		t.Fatalf("edit click: %d", code)
	}
	views := s.slack.Views()
	if len(views) != 1 || views[0].View.CallbackID != incident.ViewApproveEdited || !strings.Contains(views[0].View.Blocks.BlockSet[0].(*slack.InputBlock).Element.(*slack.PlainTextInputBlockElement).InitialValue, "What happened: Edited notice "+marker) {
		t.Fatalf("modal %+v", views)
	}
	edited := "Security incident " + id + ": edited by the DPO. Contact dpo@plusranger.example."
	if answer := s.submitView("U0DPO", views[0].View, incident.EditedTextBlock, incident.EditedTextElement, edited); answer != "" {
		t.Fatalf("submission answered %q", answer)
	}
	st := s.waitIncident(ctx, id, "sent", func(st workflows.IncidentStatus) bool { return st.Amazon.SentAt != nil })
	msgs, err := s.mailpit.Messages(ctx)
	s.must(err, "Mailpit")
	for _, m := range msgs {
		if m.SentTo(s.amazon) && "<"+m.MessageID+">" == st.Amazon.MessageID {
			text, err := s.mailpit.MessageText(ctx, m.ID)
			s.must(err, "body")
			if strings.TrimSpace(text) != edited {
				t.Fatalf("sent %q, want the edited text", text)
			}
			s.must(s.app.Temporal.TerminateWorkflow(ctx, workflows.IncidentWorkflowID(id), "", "test over"), "terminate")
			s.assertNoPII("the logs", []byte(s.logs.String()))
			return
		}
	}
	t.Fatalf("no e-mail %s", st.Amazon.MessageID)
}
