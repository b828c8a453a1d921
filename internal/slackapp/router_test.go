package slackapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/testenv"
)

// Slack's documented signing example (REFERENCE.md, Slack).
const (
	vectorSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	vectorTimestamp = 1531420618
	vectorBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	vectorSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

const secret = "test-signing-secret-0123456789"

// marker stands for personal data in a message (a name): it must never reach a log.
const marker = "PIIMARKER7Q"

type fixture struct {
	t      *testing.T
	router *slackapp.Router
	srv    *httptest.Server
	slack  *testenv.Slack
	logs   *observer.ObservedLogs
}

func newFixture(t *testing.T, signingSecret string) *fixture {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	r := slackapp.NewRouter(signingSecret, zap.New(core))
	mux := http.NewServeMux()
	mux.Handle("/slack/interactions", r.Interactions())
	mux.Handle("/slack/commands", r.Commands())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, router: r, srv: srv, slack: testenv.StartSlack(t), logs: logs}
	t.Cleanup(f.noMarkerInLogs)
	return f
}

func (f *fixture) noMarkerInLogs() {
	for _, e := range f.logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(e.Message+string(b), marker) {
			f.t.Errorf("personal data in a log line: %s %s", e.Message, b)
		}
	}
}

// send posts body to path signed with sec at time at, and returns the status and answer.
func (f *fixture) send(path, sec string, at time.Time, body []byte) (int, string) {
	f.t.Helper()
	req, err := testenv.SignedSlackRequest(f.srv.URL+path, sec, at, body)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(req)
}

func (f *fixture) do(req *http.Request) (int, string) {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) click(user, actionID, value string) (int, string, slack.InteractionCallback) {
	f.t.Helper()
	ic := f.slack.BlockClick(user, "C0ROOM", "1700000000.000100", actionID, value)
	ic.Message.Text = "Review for " + marker
	body, err := testenv.InteractionBody(ic)
	if err != nil {
		f.t.Fatal(err)
	}
	code, answer := f.send("/slack/interactions", secret, time.Now(), body)
	return code, answer, ic
}

// TestSlackSigningExample: our signer reproduces Slack's documented example, and
// the Router (slack-go's verifier) checks exactly that scheme. The example's
// timestamp is from 2018, so the Router must refuse it as stale, and accept the
// example's request once signed at the current time; any other secret is refused.
func TestSlackSigningExample(t *testing.T) {
	if got := testenv.SlackSignature(vectorSecret, vectorTimestamp, []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("signature of Slack's example = %s, want %s", got, vectorSignature)
	}
	f := newFixture(t, vectorSecret)
	var got slack.SlashCommand
	f.router.OnCommand("/webhook-collect", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		got = cmd
		return &slack.Msg{Text: "collected"}, nil
	})
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/slack/commands", strings.NewReader(vectorBody))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", "1531420618")
	req.Header.Set("X-Slack-Signature", vectorSignature)
	if code, _ := f.do(req); code != http.StatusUnauthorized {
		t.Fatalf("the 2018 example itself: status %d, want 401 (stale)", code)
	}
	if f.logs.FilterField(zap.String("reason", "stale timestamp")).Len() != 1 {
		t.Errorf("the example was not refused as stale: %v", f.logs.All())
	}
	if code, _ := f.send("/slack/commands", "not-"+vectorSecret, time.Now(), []byte(vectorBody)); code != http.StatusUnauthorized {
		t.Fatalf("signed with another secret: status %d, want 401", code)
	}
	code, answer := f.send("/slack/commands", vectorSecret, time.Now(), []byte(vectorBody))
	if code != http.StatusOK || !strings.Contains(answer, "collected") {
		t.Fatalf("the example signed now: %d %s", code, answer)
	}
	if got.UserID != "U2CERLKJA" || got.ChannelID != "G8PSS9T3V" || got.TeamID != "T1DC2JH3J" {
		t.Errorf("parsed command %+v", got)
	}
}

// TestRefusedRequestsHaveNoEffect: forged, stale, future, unsigned, tampered,
// malformed and replayed requests get 401 and no handler runs.
func TestRefusedRequestsHaveNoEffect(t *testing.T) {
	f := newFixture(t, secret)
	var runs atomic.Int32
	f.router.OnAction("test:", func(context.Context, *slack.InteractionCallback, *slack.BlockAction) error {
		runs.Add(1)
		return nil
	})
	ic := f.slack.BlockClick("U1", "C1", "1.1", "test:go", "v")
	body, err := testenv.InteractionBody(ic)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	signed := func(sec string, at time.Time, b []byte) *http.Request {
		req, _ := testenv.SignedSlackRequest(f.srv.URL+"/slack/interactions", sec, at, b)
		return req
	}
	unsigned := signed(secret, now, body)
	unsigned.Header.Del("X-Slack-Signature")
	noTimestamp := signed(secret, now, body)
	noTimestamp.Header.Del("X-Slack-Request-Timestamp")
	tampered := signed(secret, now, body)
	tampered.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), "test%3Ago", "test%3Aga", 1)))
	notHex := signed(secret, now, body)
	notHex.Header.Set("X-Slack-Signature", "v0=zz")
	v1 := signed(secret, now, body)
	v1.Header.Set("X-Slack-Signature", strings.Replace(v1.Header.Get("X-Slack-Signature"), "v0=", "v1=", 1))
	for name, req := range map[string]*http.Request{
		"forged (other secret)":   signed("another-secret", now, body),
		"stale (6 minutes old)":   signed(secret, now.Add(-6*time.Minute), body),
		"from 6 minutes ahead":    signed(secret, now.Add(6*time.Minute), body),
		"unsigned":                unsigned,
		"without timestamp":       noTimestamp,
		"tampered body":           tampered,
		"signature not hex":       notHex,
		"other signature version": v1,
	} {
		if code, answer := f.do(req); code != http.StatusUnauthorized || strings.Contains(answer, "test:go") {
			t.Errorf("%s: %d %q, want 401", name, code, answer)
		}
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("a handler ran %d times for refused requests", n)
	}
	// The genuine request once, then its replay.
	first := signed(secret, now, body)
	replay := signed(secret, now, body)
	if code, _ := f.do(first); code != http.StatusOK {
		t.Fatalf("genuine request: %d", code)
	}
	if code, _ := f.do(replay); code != http.StatusUnauthorized {
		t.Fatalf("replayed request: %d, want 401", code)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want once", n)
	}
	if f.logs.FilterField(zap.String("reason", "replayed")).Len() != 1 {
		t.Errorf("the replay was not logged as such")
	}
}

func TestBodyLimitAndMethod(t *testing.T) {
	f := newFixture(t, secret)
	big := []byte("payload=" + strings.Repeat("x", slackapp.MaxBody))
	if code, _ := f.send("/slack/interactions", secret, time.Now(), big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", code)
	}
	resp, err := http.Get(f.srv.URL + "/slack/commands")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	if code, _ := f.send("/slack/interactions", secret, time.Now(), []byte("payload=%7Bnot-json")); code != http.StatusBadRequest {
		t.Errorf("signed but unreadable payload: %d, want 400", code)
	}
}

// Without a signing secret (Slack not configured) everything is refused with 503.
func TestNotConfigured(t *testing.T) {
	f := newFixture(t, "")
	f.router.OnCommand("/incident", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		t.Error("handler ran without a signing secret")
		return nil, nil
	})
	if code, answer := f.send("/slack/commands", "", time.Now(), testenv.CommandBody("/incident", "U1", "C1", "", "")); code != http.StatusServiceUnavailable || !strings.Contains(answer, "not configured") {
		t.Errorf("%d %q, want 503 not configured", code, answer)
	}
}

// TestActionRouting: the longest registered prefix of the action_id wins; the
// handler sees the parsed click; an unknown action is answered through the
// response_url.
func TestActionRouting(t *testing.T) {
	f := newFixture(t, secret)
	var got []string
	f.router.OnAction("access-review:", func(_ context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
		got = append(got, "review "+act.ActionID+" "+act.Value+" "+ic.User.ID)
		return nil
	})
	f.router.OnAction("access-review:keep", func(_ context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
		got = append(got, "keep "+act.Value)
		return nil
	})
	f.router.OnAction("incident:", func(_ context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
		got = append(got, "incident "+act.ActionID)
		return nil
	})
	for _, c := range [][2]string{{"access-review:revoke", "2026-Q4/7"}, {"access-review:keep", "2026-Q4/8"}, {"incident:approve", "x"}} {
		if code, answer, _ := f.click("U1", c[0], c[1]); code != http.StatusOK || answer != "" {
			t.Fatalf("%s: %d %q", c[0], code, answer)
		}
	}
	want := []string{"review access-review:revoke 2026-Q4/7 U1", "keep 2026-Q4/8", "incident incident:approve"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("handled %q, want %q", got, want)
	}
	if code, _, _ := f.click("U1", "other:thing", "x"); code != http.StatusOK {
		t.Fatalf("unknown action: %d", code)
	}
	f.slack.WaitFor(t, "the unknown action's reply", func() bool { return len(f.slack.Responses()) == 1 })
	if r := f.slack.Responses()[0]; r.ResponseType != slack.ResponseTypeEphemeral || !strings.Contains(r.Text, "not handled") {
		t.Errorf("unknown action reply %+v", r)
	}
}

// TestActionErrors: a UserError reaches the person as is, ephemerally; an
// internal error becomes a generic text with a reference that is in the log
// next to the error, and its text is never shown.
func TestActionErrors(t *testing.T) {
	f := newFixture(t, secret)
	f.router.OnAction("review:", func(_ context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error {
		if act.ActionID == "review:keep" {
			return slackapp.UserError{Message: "This item is not yours to decide."}
		}
		return errors.New("connector registry: item 7 unavailable")
	})
	f.click("U2", "review:keep", "7")
	f.slack.WaitFor(t, "the not-yours reply", func() bool { return len(f.slack.Responses()) == 1 })
	if r := f.slack.Responses()[0]; r.Text != "This item is not yours to decide." || r.ResponseType != slack.ResponseTypeEphemeral || r.ReplaceOriginal {
		t.Errorf("user error reply %+v", r)
	}
	f.click("U2", "review:revoke", "7")
	f.slack.WaitFor(t, "the internal error's reply", func() bool { return len(f.slack.Responses()) == 2 })
	r := f.slack.Responses()[1]
	if strings.Contains(r.Text, "connector") || !strings.Contains(r.Text, "Reference: ") {
		t.Errorf("internal error reply %q", r.Text)
	}
	ref := r.Text[strings.LastIndex(r.Text, " ")+1:]
	if f.logs.FilterField(zap.String("ref", ref)).FilterMessage("Slack handler failed").Len() != 1 {
		t.Errorf("reference %s not logged with the error", ref)
	}
	if m, ok := f.slack.Message("C0ROOM", "1700000000.000100"); ok && m.Updates > 0 {
		t.Errorf("an error replaced the original message")
	}
}

// TestViewRouting: modal submissions go to the handler of their callback_id;
// errors show on the modal.
func TestViewRouting(t *testing.T) {
	f := newFixture(t, secret)
	f.router.OnView("access-review:keep-reason", func(_ context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error) {
		reason := ic.View.State.Values["reason"]["reason-input"].Value
		switch reason {
		case "":
			return nil, slackapp.UserError{Message: "A reason is required to keep a flagged account.", Field: "reason"}
		case "vague":
			return nil, slackapp.Userf("Say why account %s is still needed.", ic.View.PrivateMetadata)
		case "crash":
			return nil, errors.New("store down")
		}
		return nil, nil
	})
	submit := func(callbackID, reason string, blocks ...slack.Block) (int, string) {
		ic := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: "U3"}}
		ic.View.CallbackID = callbackID
		ic.View.PrivateMetadata = "acct-42"
		ic.View.Blocks = slack.Blocks{BlockSet: blocks}
		ic.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{"reason": {"reason-input": {Value: reason}}}}
		body, err := testenv.InteractionBody(ic)
		if err != nil {
			t.Fatal(err)
		}
		return f.send("/slack/interactions", secret, time.Now(), body)
	}
	input := slack.NewInputBlock("reason", slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil,
		slack.NewPlainTextInputBlockElement(nil, "reason-input"))
	if code, answer := submit("access-review:keep-reason", "contractor until March", input); code != http.StatusOK || answer != "" {
		t.Errorf("accepted submission: %d %q, want an empty 200 (closes the modal)", code, answer)
	}
	for _, c := range []struct {
		reason, want string
		blocks       []slack.Block
	}{
		{"", `{"response_action":"errors","errors":{"reason":"A reason is required to keep a flagged account."}}`, []slack.Block{input}},
		{"vague", `{"response_action":"errors","errors":{"reason":"Say why account acct-42 is still needed."}}`, []slack.Block{input}},
		{"crash", `"response_action":"errors","errors":{"reason":"Something went wrong`, []slack.Block{input}},
		{"vague", `"response_action":"push"`, nil},
	} {
		code, answer := submit("access-review:keep-reason", c.reason, c.blocks...)
		if code != http.StatusOK || !strings.Contains(answer, c.want) {
			t.Errorf("reason %q: %d %s, want %s", c.reason, code, answer, c.want)
		}
	}
	if _, answer := submit("unknown-form", "x", input); !strings.Contains(answer, "not handled") {
		t.Errorf("unknown view: %s", answer)
	}
}

// TestCommandRouting: commands by name, answers ephemeral unless the handler
// says otherwise, errors as ephemeral text.
func TestCommandRouting(t *testing.T) {
	f := newFixture(t, secret)
	f.router.OnCommand("/offboard", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		if cmd.UserID != "U-HR" {
			return nil, slackapp.Userf("Only the people in DPP_OFFBOARDING_REQUESTERS may offboard.")
		}
		return &slack.Msg{Text: "Offboarding started for " + cmd.Text}, nil
	})
	f.router.OnCommand("/incident", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{ResponseType: slack.ResponseTypeInChannel, Text: "Incident declared"}, nil
	})
	check := func(command, user, wantType, wantText string) {
		t.Helper()
		code, answer := f.send("/slack/commands", secret, time.Now(), testenv.CommandBody(command, user, "C1", "<@U9>", ""))
		var msg slack.Msg
		if code != http.StatusOK || json.Unmarshal([]byte(answer), &msg) != nil || msg.ResponseType != wantType || !strings.Contains(msg.Text, wantText) {
			t.Errorf("%s by %s: %d %s, want %s %q", command, user, code, answer, wantType, wantText)
		}
	}
	check("/offboard", "U-HR", "ephemeral", "Offboarding started for <@U9>")
	check("/offboard", "U-X", "ephemeral", "Only the people in DPP_OFFBOARDING_REQUESTERS")
	check("/incident", "U-X", "in_channel", "Incident declared")
	check("/other", "U-X", "ephemeral", "not handled")
	if code, answer := f.send("/slack/commands", secret, time.Now(), []byte("ssl_check=1&token=x")); code != http.StatusOK || answer != "" {
		t.Errorf("Slack's SSL check: %d %q", code, answer)
	}
}

func TestRegistrationMistakesPanic(t *testing.T) {
	r := slackapp.NewRouter(secret, nil)
	r.OnAction("a:", func(context.Context, *slack.InteractionCallback, *slack.BlockAction) error { return nil })
	for name, f := range map[string]func(){
		"duplicate prefix": func() {
			r.OnAction("a:", func(context.Context, *slack.InteractionCallback, *slack.BlockAction) error { return nil })
		},
		"empty prefix": func() {
			r.OnAction("", func(context.Context, *slack.InteractionCallback, *slack.BlockAction) error { return nil })
		},
		"command without /": func() {
			r.OnCommand("incident", func(context.Context, slack.SlashCommand) (*slack.Msg, error) { return nil, nil })
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
