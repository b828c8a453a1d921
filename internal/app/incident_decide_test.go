package app_test

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/auditpack"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/workflows"
)

// submitClose submits the close modal as user with the given inputs.
func (s *incidentStack) submitClose(user string, view slack.ModalViewRequest, lessons, reason string, falsePositive bool) string {
	s.t.Helper()
	st := map[string]map[string]slack.BlockAction{
		incident.CloseLessonsBlock: {incident.CloseLessonsElement: {Value: lessons}},
		incident.CloseReasonBlock:  {incident.CloseReasonElement: {Value: reason}},
	}
	if falsePositive {
		st[incident.CloseFalsePositiveBlock] = map[string]slack.BlockAction{incident.CloseFalsePositiveElement: {
			SelectedOptions: []slack.OptionBlockObject{{Value: incident.CloseFalsePositiveOption}}}}
	}
	return s.submitState(user, view, st)
}

// replied waits for a response_url reply containing want.
func (s *incidentStack) replied(want string) {
	s.t.Helper()
	s.slack.WaitFor(s.t, "the reply "+want, func() bool {
		for _, r := range s.slack.Responses() {
			if strings.Contains(r.Text, want) {
				return true
			}
		}
		return false
	})
}

func (s *incidentStack) timelineKinds(id string) string {
	s.t.Helper()
	tl, err := s.app.IncidentService().Timeline(s.ctx(), id)
	s.must(err, "timeline")
	var kinds []string
	for _, e := range tl {
		kinds = append(kinds, e.Kind+"/"+e.Actor)
	}
	return strings.Join(kinds, " ")
}

// TestIncidentApproverListedByEmailDecidesFromSlack: DPP_INCIDENT_APPROVERS
// lists the CTO by address only. Their Slack account (users.info gives that
// address) advances the stage, approves and confirms a false positive; the
// reminder DM reaches them (users.lookupByEmail). Refusals answer the click
// at once, go on the timeline and leave nothing in the history; the address
// is nowhere in the history, the database or the logs.
func TestIncidentApproverListedByEmailDecidesFromSlack(t *testing.T) {
	cto := "cto-" + strings.ToLower(marker) + "@plusranger.example"
	s := newIncidentStack(t, func(env map[string]string) {
		env["DPP_INCIDENT_APPROVERS"] = "U0DPO," + cto
		env["DPP_INCIDENT_REMINDERS"] = "1s"
	})
	s.slack.AddUser("U0CTO", cto)
	s.slack.AddUser("U0INTRUDER", "intruder@example.org")
	ctx := s.ctx()
	code, out := s.post(app.IncidentsPath, ingestToken, map[string]any{"title": "Phishing of " + marker, "severity": "high",
		"detectedAt": time.Now().Add(-2 * time.Second).UTC().Format(time.RFC3339)})
	if code != http.StatusAccepted {
		t.Fatalf("declaration: %d %v", code, out)
	}
	id := out["id"].(string)
	msg := s.incidentMessage("the incident message", "Incident "+id, incident.ActionClose)

	// The reminder (at 1 s) goes to both approvers' DMs: U0CTO was found by address.
	s.slack.WaitFor(t, "the reminder DM to the approver listed by address", func() bool {
		for _, m := range s.slack.Messages() {
			if m.Channel == testenv.DMChannel("U0CTO") && strings.Contains(m.Text, "Incident "+id) {
				return true
			}
		}
		return false
	})

	s.click("U0CTO", msg.Channel, msg.TS, incident.ActionAdvance, id)
	st := s.waitIncident(ctx, id, "advanced", func(st workflows.IncidentStatus) bool { return st.Stage == "containment" })

	// Refused at once: a non-approver approves; closing before Amazon is notified.
	s.click("U0INTRUDER", msg.Channel, msg.TS, incident.ActionApproveAmazon, id)
	s.replied("Not done: only the incident approvers")
	s.click("U0DPO", msg.Channel, msg.TS, incident.ActionClose, id)
	views := s.slack.Views()
	if len(views) != 1 || views[0].View.CallbackID != incident.ViewClose || views[0].View.PrivateMetadata != id {
		t.Fatalf("close modal %+v", views)
	}
	if answer := s.submitClose("U0DPO", views[0].View, "", "", false); !strings.Contains(answer, `"lessons"`) || !strings.Contains(answer, "lessons-learned") {
		t.Fatalf("close without lessons: %s", answer)
	}
	if answer := s.submitClose("U0DPO", views[0].View, "Lessons of "+marker, "", false); !strings.Contains(answer, "amazon-not-notified") {
		t.Fatalf("close before notifying: %s", answer)
	}
	// A false positive: proposed by U0DPO, who cannot confirm it; the CTO does.
	if answer := s.submitClose("U0DPO", views[0].View, "", "", true); !strings.Contains(answer, `"reason"`) {
		t.Fatalf("false positive without a reason: %s", answer)
	}
	if answer := s.submitClose("U0DPO", views[0].View, "", "A drill by "+marker, true); answer != "" {
		t.Fatalf("false positive proposed: %q", answer)
	}
	s.waitIncident(ctx, id, "proposed", func(st workflows.IncidentStatus) bool { return st.FalsePositiveProposedBy == "U0DPO" })
	s.slack.WaitFor(t, "the confirm button", func() bool {
		m, _ := s.slack.Message(msg.Channel, msg.TS)
		return strings.Contains(m.BlocksJSON(), incident.ActionConfirmFalsePositive)
	})
	s.click("U0DPO", msg.Channel, msg.TS, incident.ActionConfirmFalsePositive, id)
	s.replied("Not done: a second approver")
	s.click("U0CTO", msg.Channel, msg.TS, incident.ActionConfirmFalsePositive, id)
	var res workflows.IncidentStatus
	s.must(s.app.Temporal.GetWorkflow(ctx, workflows.IncidentWorkflowID(id), "").Get(ctx, &res), "result")
	if res.Outcome != incident.OutcomeFalsePositive || res.RefusedSignals != 0 || st.Stage != "containment" {
		t.Fatalf("result %+v", res)
	}
	s.click("U0DPO", msg.Channel, msg.TS, incident.ActionAdvance, id)
	s.replied("Incident " + id + " is closed or unknown")

	kinds := s.timelineKinds(id)
	for _, want := range []string{"stage-advanced/approver-2", "decision-refused/U0INTRUDER", "decision-refused/U0DPO",
		"false-positive-proposed/U0DPO", "closed/approver-2"} {
		if !strings.Contains(kinds, want) {
			t.Errorf("timeline lacks %s: %s", want, kinds)
		}
	}
	s.saveHistory(ctx, workflows.IncidentWorkflowID(id), "incident_notification_updates_false_positive.json")
	// The same with the reason and lessons sealed before sending (refs in the Updates).
	s.saveHistory(ctx, workflows.IncidentWorkflowID(id), "incident_notification_false_positive_text_refs.json")
	hist := s.history(ctx, workflows.IncidentWorkflowID(id))
	for _, trace := range []string{"U0INTRUDER", "amazon-not-notified", "a second approver"} {
		if strings.Contains(string(hist), trace) {
			t.Errorf("a refused Update left %q in the history", trace)
		}
	}
	for where, b := range map[string][]byte{"the history": hist, "the database": s.pgDump(), "the logs": []byte(s.logs.String())} {
		s.assertNoPII(where, b)
		if strings.Contains(strings.ToLower(string(b)), cto) {
			t.Errorf("the approver's address is in %s", where)
		}
	}

	// The false-positive reason is sealed apart from the incident, under a key
	// that its retention erases: the report shows it, then when it went.
	reasonOf := func() string {
		t.Helper()
		rep, err := s.app.IncidentService().Report(ctx, id, time.Now())
		s.must(err, "report")
		for _, e := range rep.Timeline {
			if e.Kind == "false-positive-proposed" {
				return e.Note
			}
		}
		t.Fatal("no false-positive-proposed entry")
		return ""
	}
	if got := reasonOf(); got != "A drill by "+marker {
		t.Fatalf("the report shows the reason as %q", got)
	}
	// Sealed before the Update was sent: not even the decoded history has it.
	if decoded := s.decodedWire(s.events(ctx, workflows.IncidentWorkflowID(id))); strings.Contains(string(decoded), "A drill by") ||
		strings.Contains(string(decoded), "Lessons of") {
		t.Fatal("a free text is in the decoded history")
	}
	sweep := s.app.RetentionActivities()
	sweep.Texts.Now = func() time.Time { return time.Now().AddDate(0, freetext.RetentionMonths, 1) }
	res2, err := sweep.SweepTaxRecords(ctx, activities.SweepInput{BatchSize: 100})
	s.must(err, "sweep")
	if res2.TextsErased != 1 { // the reason (the lessons were refused)
		t.Fatalf("the sweep erased %d texts", res2.TextsErased)
	}
	if got := reasonOf(); !strings.HasPrefix(got, "erased on ") {
		t.Fatalf("after the sweep the report shows the reason as %q", got)
	}
	s.assertNoPII("the database after the sweep", s.pgDump())
	if chain, err := evidence.Verify(ctx, s.app.Pool, nil); err != nil || !chain.OK() {
		t.Fatalf("the chain after the sweep: %+v %v", chain, err)
	}

	// DPP_INCIDENT_TEXT_RETENTION after closing, the same sweep erases the
	// incident's own texts; the report, the Slack message and the pack say when.
	sweep.Incidents.Now = func() time.Time { return time.Now().Add(s.app.Config.IncidentTextRetention + time.Hour) }
	res3, err := sweep.SweepTaxRecords(ctx, activities.SweepInput{BatchSize: 100})
	s.must(err, "sweep the incident texts")
	res4, err := sweep.SweepTaxRecords(ctx, activities.SweepInput{BatchSize: 100})
	s.must(err, "sweep again")
	if res3.IncidentTextsErased != 1 || res4.IncidentTextsErased != 0 {
		t.Fatalf("the sweeps erased %d then %d incidents' texts; want 1 then 0", res3.IncidentTextsErased, res4.IncidentTextsErased)
	}
	rep, err := s.app.IncidentService().Report(ctx, id, time.Now())
	s.must(err, "report after the erasure")
	erasedOn := "erased on " + time.Now().Add(s.app.Config.IncidentTextRetention+time.Hour).UTC().Format(time.DateOnly)
	if md := rep.Markdown(); !strings.Contains(md, "title "+erasedOn) || strings.Contains(md, marker) {
		t.Fatalf("the report after the erasure:\n%s", md)
	}
	inc, err := s.app.IncidentService().Get(ctx, id)
	s.must(err, "incident after the erasure")
	blocks, err := json.Marshal(incident.Blocks(inc, incident.View{Stage: inc.Stage}, ""))
	s.must(err, "blocks")
	if !strings.Contains(string(blocks), "title "+erasedOn) {
		t.Fatalf("the Slack message rebuilt after the erasure: %s", blocks)
	}
	pub := s.app.Signer.PublicKey()
	pack, _, err := auditpack.Build(ctx, s.app.Pool, auditpack.Options{From: time.Now().AddDate(0, 0, -1),
		To: time.Now().Add(s.app.Config.IncidentTextRetention + 48*time.Hour), Keys: map[string]ed25519.PublicKey{evidence.KeyIDFor(pub): pub}, Now: time.Now()})
	s.must(err, "audit pack")
	shown := false
	for _, c := range pack.Clauses {
		for _, it := range c.Items {
			shown = shown || (it.ID == "incident-"+id && strings.Contains(it.Detail, erasedOn))
		}
	}
	if !pack.Verification.OK || !shown {
		t.Fatalf("the pack after the erasure: chain %v, erasure shown %v", pack.Verification.OK, shown)
	}
	s.assertNoPII("the database after the incident's erasure", s.pgDump())
}

// TestIncidentMessagePostedOnceWhenItsAnswerIsLost: Slack takes the incident
// message but its answer is lost; the retry finds the message by its
// metadata and updates it instead of posting a second one.
func TestIncidentMessagePostedOnceWhenItsAnswerIsLost(t *testing.T) {
	s := newIncidentStack(t)
	ctx := s.ctx()
	s.slack.LoseNextAnswer("chat.postMessage", "internal_error")
	code, out := s.post(app.IncidentsPath, ingestToken, map[string]any{"title": "Lost answer " + marker, "severity": "low"})
	if code != http.StatusAccepted {
		t.Fatalf("declaration: %d %v", code, out)
	}
	id := out["id"].(string)
	s.waitIncident(ctx, id, "with its message recorded", func(workflows.IncidentStatus) bool {
		inc, err := s.app.IncidentService().Get(ctx, id)
		return err == nil && inc.SlackTS != ""
	})
	var posted []testenv.SlackMessage
	for _, m := range s.slack.Messages() {
		if m.Channel == incidentChannel && m.Metadata.EventType == activities.IncidentMessageEvent && m.Metadata.EventPayload["incident_id"] == id {
			posted = append(posted, m)
		}
	}
	inc, err := s.app.IncidentService().Get(ctx, id)
	s.must(err, "incident")
	if len(posted) != 1 || posted[0].TS != inc.SlackTS || posted[0].Updates == 0 {
		t.Fatalf("incident messages %+v, recorded ts %s", posted, inc.SlackTS)
	}
	s.must(s.app.Temporal.TerminateWorkflow(ctx, workflows.IncidentWorkflowID(id), "", "test over"), "terminate")
}
