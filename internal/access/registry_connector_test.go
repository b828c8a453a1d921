package access_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"

	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/evidence"
)

// recordingSlack is a Notifier that keeps what would be posted (unit-level
// stand-in; the Slack API itself is exercised with slacktest in accessslack).
type recordingSlack struct {
	mu      sync.Mutex
	posts   []string // "user: fallback"
	updates []string
}

func (s *recordingSlack) PostDM(_ context.Context, user string, blocks []slack.Block, fallback string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = append(s.posts, user+": "+fallback)
	return "D" + user, "1.0", nil
}

func (s *recordingSlack) Update(_ context.Context, channel, ts string, blocks []slack.Block, fallback string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = append(s.updates, channel+": "+fallback)
	return nil
}

func TestRegistryAccountIsATaskConfirmedByHand(t *testing.T) {
	ctx := context.Background()
	reg, _ := newRegistry(t)
	signer, err := evidence.LoadOrCreateSigner(ctx, reg.Pool, reg.Vault)
	if err != nil {
		t.Fatal(err)
	}
	reg.Signer = signer
	if _, err := reg.Import(ctx, strings.NewReader(peopleCSV), strings.NewReader(accountsCSV)); err != nil {
		t.Fatal(err)
	}
	sl := &recordingSlack{}
	svc := &access.Service{Registry: reg, DPO: "p-dpo", Slack: sl, Connectors: access.Connectors{
		&access.RegistryConnector{Registry: reg, Automatic: []string{access.SystemPostgres}}}}
	ev := access.Evidence{Kind: access.KindOffboard, Subject: "offboarding-p-2", Key: "offboarding-p-2/account/seller-central/second@shop/disabled"}

	res, err := svc.Disable(ctx, "seller-central", "second@shop", "p-mgr", "p-2 has left", ev)
	if err != nil || !res.Manual || res.VerifiedAt != nil {
		t.Fatalf("Disable = %+v, %v", res, err)
	}
	// A retried step posts no second task.
	if _, err := svc.Disable(ctx, "seller-central", "second@shop", "p-mgr", "p-2 has left", ev); err != nil {
		t.Fatal(err)
	}
	if len(sl.posts) != 1 || !strings.HasPrefix(sl.posts[0], "UMGR0001: Please disable seller-central account second@shop") {
		t.Fatalf("tasks posted: %v", sl.posts)
	}
	// Not confirmed: not verified.
	if _, err := svc.Verify(ctx, "seller-central", "second@shop", "", ev, res); !errors.Is(err, access.ErrNotVerified) {
		t.Fatalf("Verify before confirmation: %v", err)
	}
	res, err = svc.Verify(ctx, "seller-central", "second@shop", "p-mgr", ev, res)
	if err != nil || res.VerifiedAt == nil {
		t.Fatalf("Verify after confirmation: %+v, %v", res, err)
	}
	a, err := reg.Account(ctx, "seller-central", "second@shop")
	if err != nil || a.DisabledAt == nil || a.DisabledBy != "p-mgr" || a.DisableRequestedAt == nil {
		t.Fatalf("account after confirmation: %+v, %v", a, err)
	}
	recs, err := evidence.Get(ctx, reg.Pool, "offboarding-p-2", access.KindOffboard)
	if err != nil || len(recs) != 1 || !strings.Contains(string(recs[0].Body), `"confirmedBy":"p-mgr"`) {
		t.Fatalf("evidence: %v, %v", recs, err)
	}
	if n := len(sl.updates); n == 0 || !strings.Contains(sl.updates[n-1], "confirmed by p-mgr") {
		t.Fatalf("task message not updated: %v", sl.updates)
	}
	// Unknown accounts are a clear error.
	if _, err := svc.Disable(ctx, "seller-central", "nobody@shop", "p-mgr", "x", ev); !errors.Is(err, access.ErrUnknownAccount) {
		t.Fatalf("unknown account: %v", err)
	}
}
