package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestCheckIncidentApproverRecordsIdsOnly(t *testing.T) {
	x := &Incident{Policy: IncidentPolicy{Approvers: []string{"U0DPO", "dpo", "Jane.Doe@plusranger.example"}}}
	for by, want := range map[string]ApproverCheck{
		"U0DPO":                       {Approver: true, Ref: "U0DPO"},
		"dpo":                         {Approver: true, Ref: "dpo"},
		"jane.doe@plusranger.example": {Approver: true, Ref: "approver-3"},
		"U0OTHER":                     {Ref: "U0OTHER"},
		"someone@else.example":        {Ref: "unknown"},
	} {
		if got, err := x.CheckIncidentApprover(context.Background(), by); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", by, got, err, want)
		}
	}
}

// TestIncidentNoticeReachesChannelAndApprovers: a reminder goes to the
// channel and each approver who is a Slack user; it is retried only when it
// reached nobody (a retry would post twice where it got through).
func TestIncidentNoticeReachesChannelAndApprovers(t *testing.T) {
	sl := testenv.StartSlack(t)
	x := &Incident{Slack: slackapp.NewMessenger("xoxb-test", sl.APIURL()),
		Policy: IncidentPolicy{Channel: "C0INC", Approvers: []string{"U0DPO", "dpo@plusranger.example", "U0CTO"}}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(x.NotifyIncidentPeople)
	due := time.Date(2026, 12, 2, 8, 40, 0, 0, time.UTC)
	n := IncidentNotice{IncidentID: "inc-1", Kind: "reminder", Target: incident.TargetAmazon, DueAt: due}
	if _, err := env.ExecuteActivity(x.NotifyIncidentPeople, n); err != nil {
		t.Fatal(err)
	}
	var where []string
	for _, m := range sl.Messages() {
		where = append(where, m.Channel)
		if !strings.Contains(m.Text, "Incident inc-1: Amazon's notification is due") {
			t.Errorf("reminder text %q", m.Text)
		}
	}
	if strings.Join(where, ",") != "C0INC,DU0DPO,DU0CTO" {
		t.Fatalf("posted to %v", where)
	}
	sl.FailNext("conversations.open", "user_not_found")
	if _, err := env.ExecuteActivity(x.NotifyIncidentPeople, n); err != nil {
		t.Fatalf("a notice that reached the channel failed: %v", err)
	}
	sl.FailNext("chat.postMessage", "channel_not_found")
	sl.FailNext("conversations.open", "user_not_found")
	sl.FailNext("conversations.open", "user_not_found")
	if _, err := env.ExecuteActivity(x.NotifyIncidentPeople, n); err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("a notice that reached nobody: %v", err)
	}
	// Without Slack, nothing to do.
	if err := (&Incident{}).NotifyIncidentPeople(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}
