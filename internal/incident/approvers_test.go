package incident_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/testenv"
)

// TestApproversResolveSlackAccountsOfAddresses: against slacktest, a Slack
// user whose profile has a listed address is that approver (approver-<n>);
// the directory finds the address's account; answers are cached; no error
// carries an address.
func TestApproversResolveSlackAccountsOfAddresses(t *testing.T) {
	sl := testenv.StartSlack(t)
	addr := "cto-" + strings.ToLower(marker) + "@plusranger.example"
	sl.AddUser("U0CTO", addr)
	sl.AddUser("U0EVE", "eve@example.org")
	a := &incident.Approvers{List: []string{"U0DPO", "dpo", strings.ToUpper(addr), "gone@plusranger.example"},
		Slack: slackapp.NewMessenger("xoxb-test", sl.APIURL())}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for by, want := range map[string]incident.Check{
		"U0DPO":      {Approver: true, Ref: "U0DPO"},
		"dpo":        {Approver: true, Ref: "dpo"},
		"U0CTO":      {Approver: true, Ref: "approver-3"},
		addr:         {Approver: true, Ref: "approver-3"},
		"approver-3": {Approver: true, Ref: "approver-3"},
		"U0EVE":      {Ref: "U0EVE"},
		"x@y.org":    {Ref: "unknown"},
		"mallory":    {Ref: "mallory"},
	} {
		got, err := a.Resolve(ctx, by)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %+v, %v; want %+v", by, got, err, want)
		}
	}
	calls := func(method string) (n int) {
		for _, c := range sl.Calls() {
			if c == method {
				n++
			}
		}
		return n
	}
	before := calls("users.info")
	if _, err := a.Resolve(ctx, "U0CTO"); err != nil || calls("users.info") != before {
		t.Errorf("a second click asked Slack again (%v)", err)
	}

	dir, err := a.Directory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []incident.Approver{{Ref: "U0DPO", SlackID: "U0DPO"}, {Ref: "dpo"}, {Ref: "approver-3", SlackID: "U0CTO"}, {Ref: "approver-4"}}
	if len(dir) != len(want) {
		t.Fatalf("directory %+v", dir)
	}
	for i := range want {
		if dir[i] != want[i] {
			t.Errorf("directory[%d] = %+v, want %+v", i, dir[i], want[i])
		}
	}

	// Slack down: the error names the approver by reference, never the address.
	b := &incident.Approvers{List: []string{addr}, Slack: slackapp.NewMessenger("xoxb-test", sl.APIURL())}
	sl.FailNext("users.lookupByEmail", "ratelimited")
	dir, err = b.Directory(ctx)
	if err == nil || strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "approver-1") || dir[0] != (incident.Approver{Ref: "approver-1"}) {
		t.Fatalf("directory with Slack down: %+v, %v", dir, err)
	}
	sl.FailNext("users.info", "ratelimited")
	if _, err := b.Resolve(ctx, "U0NEW"); err == nil || strings.Contains(err.Error(), addr) {
		t.Fatalf("resolve with Slack down: %v", err)
	}
}
