package app_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
)

const testSigningSecret = "e2e-signing-secret-0123456789"

// servePublic starts the app's public listener as worker/main.go does and
// returns its base URL once it accepts connections.
func servePublic(t *testing.T, a *app.App) string {
	t.Helper()
	srv := a.PublicServer()
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("public listener: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", srv.Addr); err == nil {
			c.Close()
			return "http://" + srv.Addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("public listener %s never accepted a connection", srv.Addr)
		}
	}
}

// TestSlackClickThroughThePublicListener: the production wiring end to end: a
// message posted with App.Slack to slacktest, a click on it signed like Slack
// signs it, posted to the public listener on its own port, the registered
// handler runs and updates the message in slacktest; the same click replayed,
// or unsigned, changes nothing.
func TestSlackClickThroughThePublicListener(t *testing.T) {
	sl := testenv.StartSlack(t)
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["SLACK_BOT_TOKEN"] = "xoxb-e2e"
		env["SLACK_SIGNING_SECRET"] = testSigningSecret
		env["SLACK_API_URL"] = sl.APIURL()
		env["DPP_PUBLIC_ADDR"] = freeAddr(t)
		env["DPP_INGEST_TOKEN"] = "ingest-token-0123456789abcdef"
	})
	a := s.app
	if a.Slack == nil {
		t.Fatal("App.Slack is nil with SLACK_BOT_TOKEN set")
	}
	ctx := s.ctx()
	clicks := 0
	a.Public().Router.OnAction("e2e:", func(ctx context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
		clicks++
		if act.Value != "item-7" {
			return slackapp.Userf("Unknown item.")
		}
		return a.Slack.Update(ctx, ic.Container.ChannelID, ic.Container.MessageTs,
			[]slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Approved by <@"+ic.User.ID+">", false, false), nil, nil)},
			"Approved")
	})
	base := servePublic(t, a)

	buttons := slack.NewActionBlock("e2e-actions", slack.NewButtonBlockElement("e2e:approve", "item-7",
		slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))
	ch, ts, err := a.Slack.PostDM(ctx, "U-APPROVER", []slack.Block{buttons}, "Approve item 7")
	s.must(err, "PostDM")

	body, err := testenv.InteractionBody(sl.BlockClick("U-APPROVER", ch, ts, "e2e:approve", "item-7"))
	s.must(err, "interaction body")
	send := func(signed bool) int {
		req, err := testenv.SignedSlackRequest(base+app.SlackInteractionsPath, testSigningSecret, time.Now(), body)
		s.must(err, "request")
		if !signed {
			req.Header.Del("X-Slack-Signature")
		}
		resp, err := http.DefaultClient.Do(req)
		s.must(err, "post the click")
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := send(false); code != http.StatusUnauthorized || clicks != 0 {
		t.Fatalf("unsigned click: %d, handler ran %d times", code, clicks)
	}
	start := time.Now()
	if code := send(true); code != http.StatusOK {
		t.Fatalf("signed click: %d", code)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the click took %s to acknowledge; Slack gives up after 3 s", took)
	}
	msg, ok := sl.Message(ch, ts)
	if !ok || msg.Updates != 1 || !strings.Contains(msg.BlocksJSON(), "Approved by <@U-APPROVER>") {
		t.Fatalf("message after the click: %+v", msg)
	}
	if code := send(true); code != http.StatusUnauthorized || clicks != 1 {
		t.Fatalf("replayed click: %d, handler ran %d times", code, clicks)
	}
	if msg, _ := sl.Message(ch, ts); msg.Updates != 1 {
		t.Fatalf("the replay updated the message again")
	}
	// The public listener serves nothing of the operator listener.
	resp, err := http.Get(base + "/metrics")
	s.must(err, "GET /metrics on the public listener")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", resp.StatusCode)
	}
}
