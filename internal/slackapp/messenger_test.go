package slackapp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/testenv"
)

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// TestMessengerAgainstSlacktest: every call the domains use, against slacktest.
func TestMessengerAgainstSlacktest(t *testing.T) {
	sl := testenv.StartSlack(t)
	m := slackapp.NewMessenger("xoxb-test", strings.TrimSuffix(sl.APIURL(), "/"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ch, ts, err := m.PostDM(ctx, "U1", []slack.Block{section("*db* / alice_ro")}, "Access review 2026-Q4")
	if err != nil || ch != testenv.DMChannel("U1") || ts == "" {
		t.Fatalf("PostDM: %q %q %v", ch, ts, err)
	}
	ch2, ts2, err := m.Post(ctx, "C-INCIDENTS", []slack.Block{section("Incident inc-1: triage")}, "Incident inc-1")
	if err != nil || ch2 != "C-INCIDENTS" || ts2 == ts {
		t.Fatalf("Post: %q %q %v", ch2, ts2, err)
	}
	if err := m.Update(ctx, ch, ts, []slack.Block{section("Kept by <@U1>")}, "Access review 2026-Q4: decided"); err != nil {
		t.Fatal(err)
	}
	msg, ok := sl.Message(ch, ts)
	if !ok || msg.Updates != 1 || !strings.Contains(msg.BlocksJSON(), "Kept by") || msg.Text != "Access review 2026-Q4: decided" {
		t.Fatalf("after Update: %+v", msg)
	}
	if err := m.Ephemeral(ctx, ch2, "U2", "Not yours"); err != nil {
		t.Fatal(err)
	}
	if e := sl.Ephemerals(); len(e) != 1 || e[0].User != "U2" || e[0].Text != "Not yours" {
		t.Fatalf("ephemerals %+v", e)
	}
	view := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "access-review:keep-reason",
		Title: slack.NewTextBlockObject(slack.PlainTextType, "Keep account", false, false)}
	id, err := m.OpenModal(ctx, "trigger-1", view)
	if err != nil || id == "" {
		t.Fatalf("OpenModal: %q %v", id, err)
	}
	if v := sl.Views(); len(v) != 1 || v[0].View.CallbackID != "access-review:keep-reason" || v[0].TriggerID != "trigger-1" {
		t.Fatalf("views %+v", v)
	}
	if err := m.Respond(ctx, sl.ResponseURL(ch, ts), slackapp.Reply{Text: "Revoked by <@U1>", ReplaceOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if msg, _ := sl.Message(ch, ts); msg.Updates != 2 || msg.Text != "Revoked by <@U1>" {
		t.Fatalf("after replace_original: %+v", msg)
	}
}

// TestMessengerErrorsNameMethodAndCode: a failed call names the method and
// Slack's code, never the message text.
func TestMessengerErrorsNameMethodAndCode(t *testing.T) {
	sl := testenv.StartSlack(t)
	m := slackapp.NewMessenger("xoxb-test", sl.APIURL())
	ctx := context.Background()
	sl.FailNext("chat.postMessage", "channel_not_found")
	_, _, err := m.Post(ctx, "C-GONE", []slack.Block{section(marker)}, "for "+marker)
	var ae *slackapp.APIError
	if !errors.As(err, &ae) || ae.Method != "chat.postMessage" || ae.Code != "channel_not_found" || !ae.Permanent() {
		t.Fatalf("Post error %#v", err)
	}
	if strings.Contains(err.Error(), marker) || err.Error() != "slack chat.postMessage: channel_not_found" {
		t.Fatalf("error text %q", err)
	}
	sl.FailNext("chat.update", "ratelimited")
	if err := m.Update(ctx, "C1", "1.2", nil, marker); !errors.As(err, &ae) || ae.Method != "chat.update" || ae.Permanent() {
		t.Fatalf("Update error %v", err)
	}
	if err := m.Update(ctx, "C1", "9.9", nil, "x"); !errors.As(err, &ae) || ae.Code != "message_not_found" {
		t.Fatalf("update of a missing message: %v", err)
	}
	if _, err := slackapp.NewMessenger("not-a-bot-token", sl.APIURL()).OpenModal(ctx, "t", slack.ModalViewRequest{Type: slack.VTModal}); !errors.As(err, &ae) || ae.Code != "not_authed" || ae.Method != "views.open" {
		t.Fatalf("views.open with a bad token: %v", err)
	}
	down := slackapp.NewMessenger("xoxb-test", "http://127.0.0.1:1/api/")
	if _, _, err := down.PostDM(ctx, "U1", nil, marker); !errors.As(err, &ae) || ae.Code != "transport" || ae.Permanent() || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("Slack unreachable: %v", err)
	}
	if err := m.Respond(ctx, "file:///etc/passwd", slackapp.Reply{Text: "x"}); !errors.As(err, &ae) || ae.Code != "invalid_response_url" {
		t.Fatalf("bad response_url: %v", err)
	}
}

func TestNilMessengerIsNotConfigured(t *testing.T) {
	var m *slackapp.Messenger
	ctx := context.Background()
	if _, _, err := m.PostDM(ctx, "U1", nil, "x"); !errors.Is(err, slackapp.ErrNotConfigured) {
		t.Errorf("PostDM: %v", err)
	}
	if err := m.Update(ctx, "C", "1", nil, "x"); !errors.Is(err, slackapp.ErrNotConfigured) {
		t.Errorf("Update: %v", err)
	}
	if _, err := m.OpenModal(ctx, "t", slack.ModalViewRequest{}); !errors.Is(err, slackapp.ErrNotConfigured) {
		t.Errorf("OpenModal: %v", err)
	}
}

// TestMessengerTaggedPostsAndUsers: a tagged post is found by its metadata
// (also after its answer was lost), and the user look-ups.
func TestMessengerTaggedPostsAndUsers(t *testing.T) {
	sl := testenv.StartSlack(t)
	m := slackapp.NewMessenger("xoxb-test", sl.APIURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	meta := func(id string) slack.SlackMetadata {
		return slack.SlackMetadata{EventType: "dpp_test", EventPayload: map[string]any{"id": id}}
	}
	if ts, err := m.FindTagged(ctx, "C1", "dpp_test", "id", "a"); err != nil || ts != "" {
		t.Fatalf("nothing posted: %q %v", ts, err)
	}
	sl.LoseNextAnswer("chat.postMessage", "internal_error")
	if _, _, err := m.PostTagged(ctx, "C1", meta("a"), []slack.Block{section("a")}, "a"); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	_, tsB, err := m.PostTagged(ctx, "C1", meta("b"), nil, "b")
	if err != nil {
		t.Fatal(err)
	}
	found, err := m.FindTagged(ctx, "C1", "dpp_test", "id", "a")
	if err != nil || found == "" || found == tsB {
		t.Fatalf("FindTagged(a) = %q, %v", found, err)
	}
	if found, _ := m.FindTagged(ctx, "C2", "dpp_test", "id", "b"); found != "" {
		t.Fatalf("found in another channel: %q", found)
	}

	sl.AddUser("U7", "seven@example.org")
	if e, err := m.UserEmail(ctx, "U7"); err != nil || e != "seven@example.org" {
		t.Fatalf("UserEmail: %q %v", e, err)
	}
	if id, err := m.UserByEmail(ctx, "SEVEN@example.org"); err != nil || id != "U7" {
		t.Fatalf("UserByEmail: %q %v", id, err)
	}
	if id, err := m.UserByEmail(ctx, "nobody@example.org"); err != nil || id != "" {
		t.Fatalf("UserByEmail(nobody): %q %v", id, err)
	}
	sl.FailNext("users.info", "ratelimited")
	var api *slackapp.APIError
	if _, err := m.UserEmail(ctx, "U7"); !errors.As(err, &api) || api.Method != "users.info" {
		t.Fatalf("UserEmail with Slack failing: %v", err)
	}
}
