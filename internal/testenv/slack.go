package testenv

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// Slack is slack-go's slacktest server standing in for Slack's Web API, with
// the methods slacktest lacks (chat.update, views.open, conversations.open) and
// its chat.postMessage and chat.postEphemeral replaced, all added through its
// Customize hook. Every message posted, updated, shown ephemerally or sent to
// a response_url is recorded so tests can assert on what people would see.
type Slack struct {
	Server *slacktest.Server

	mu         sync.Mutex
	nextTS     int64
	messages   []*SlackMessage // in posting order
	ephemerals []SlackMessage
	responses  []SlackMessage
	views      []SlackView
	calls      []string
	failures   map[string][]string // method -> error codes to answer with, in turn
	// lost: method -> error codes to answer with after doing the call anyway
	// (Slack took it, the answer was lost).
	lost map[string][]string
	// users: Slack user id -> profile e-mail, for users.info and users.lookupByEmail.
	users map[string]string
}

// SlackMessage is a message as Slack holds it after every update.
type SlackMessage struct {
	Channel string
	TS      string
	// User is the recipient of an ephemeral message.
	User   string
	Text   string
	Blocks slack.Blocks
	// Metadata is the message's metadata (chat.postMessage's "metadata").
	Metadata slack.SlackMetadata
	// Updates counts chat.update calls (and replace_original responses) on it.
	Updates int
	// ResponseType and ReplaceOriginal are those of a response_url post.
	ResponseType    string
	ReplaceOriginal bool
}

// BlocksJSON is the message's blocks as JSON, for substring assertions, with
// <, > and & unescaped so mentions like <@U1> read as Slack shows them
// (slack-go's block marshalling escapes them).
func (m SlackMessage) BlocksJSON() string {
	b, _ := json.Marshal(m.Blocks)
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// SlackView is a modal opened with views.open.
type SlackView struct {
	ID        string
	TriggerID string
	View      slack.ModalViewRequest
}

// StartSlack starts the harness for the test and stops it when the test ends.
func StartSlack(t testing.TB) *Slack {
	t.Helper()
	s := &Slack{nextTS: 1700000000, failures: map[string][]string{}, lost: map[string][]string{}, users: map[string]string{}}
	s.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.method("chat.postMessage", s.postMessage))
		c.Handle("/chat.update", s.method("chat.update", s.update))
		c.Handle("/chat.postEphemeral", s.method("chat.postEphemeral", s.postEphemeral))
		c.Handle("/conversations.open", s.method("conversations.open", s.openConversation))
		c.Handle("/views.open", s.method("views.open", s.openView))
		c.Handle("/conversations.history", s.method("conversations.history", s.history))
		c.Handle("/users.info", s.method("users.info", s.userInfo))
		c.Handle("/users.lookupByEmail", s.method("users.lookupByEmail", s.userByEmail))
		c.Handle("/response/", s.response)
	})
	s.Server.Start()
	t.Cleanup(s.Server.Stop)
	return s
}

// APIURL is the SLACK_API_URL that points the worker at the harness.
func (s *Slack) APIURL() string { return s.Server.GetAPIURL() }

// ResponseURL is a response_url served by the harness for the message at
// channel and ts: a replace_original reply to it updates that message.
func (s *Slack) ResponseURL(channel, ts string) string {
	return s.APIURL() + "response/" + url.PathEscape(channel) + "/" + url.PathEscape(ts)
}

// DMChannel is the channel conversations.open returns for a DM with user.
func DMChannel(user string) string { return "D" + user }

// FailNext makes the next call of method (e.g. "chat.update") answer
// {"ok":false,"error":code}; several calls queue several failures.
func (s *Slack) FailNext(method, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], code)
}

// LoseNextAnswer makes the next call of method do its work and then answer
// {"ok":false,"error":code}, as when Slack took a post but its answer never
// arrived.
func (s *Slack) LoseNextAnswer(method, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost[method] = append(s.lost[method], code)
}

// AddUser adds a workspace member with that profile e-mail address.
func (s *Slack) AddUser(id, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = email
}

// Messages returns every posted message in its current state, in posting order.
func (s *Slack) Messages() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SlackMessage, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

// Message returns the message at channel and ts.
func (s *Slack) Message(channel, ts string) (SlackMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.find(channel, ts); m != nil {
		return *m, true
	}
	return SlackMessage{}, false
}

// Ephemerals returns the ephemeral messages shown with chat.postEphemeral.
func (s *Slack) Ephemerals() []SlackMessage { return locked(s, &s.ephemerals) }

// Responses returns what was posted to response_urls.
func (s *Slack) Responses() []SlackMessage { return locked(s, &s.responses) }

// Views returns the modals opened.
func (s *Slack) Views() []SlackView { return locked(s, &s.views) }

// Calls returns the Web API methods called, in order.
func (s *Slack) Calls() []string { return locked(s, &s.calls) }

// locked copies a recorded list under the harness's lock.
func locked[T any](s *Slack, list *[]T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(*list)
}

// WaitFor polls cond (every 20 ms, up to 10 s) and fails the test with what
// if it never holds: replies to response_urls are sent after the HTTP answer.
func (s *Slack) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("Slack harness: never saw %s; calls: %v", what, s.Calls())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Slack) find(channel, ts string) *SlackMessage {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// method wraps a Web API handler: it records the call, checks the bot token
// and answers with a queued failure if there is one.
func (s *Slack) method(name string, h func(r *http.Request) (map[string]any, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, name)
		var fail string
		if q := s.failures[name]; len(q) > 0 {
			fail, s.failures[name] = q[0], q[1:]
		}
		s.mu.Unlock()
		if fail == "" && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer xoxb-") && !strings.HasPrefix(r.FormValue("token"), "xoxb-") {
			fail = "not_authed"
		}
		var resp map[string]any
		if fail == "" {
			resp, fail = h(r)
			s.mu.Lock()
			if q := s.lost[name]; fail == "" && len(q) > 0 {
				fail, s.lost[name] = q[0], q[1:]
			}
			s.mu.Unlock()
		}
		if fail != "" {
			resp = map[string]any{"ok": false, "error": fail}
		} else {
			resp["ok"] = true
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}
}

// ts returns a new message timestamp, unique within the harness (slacktest's
// own are whole seconds, so two posts in a second would collide).
func (s *Slack) ts() string {
	s.nextTS++
	return strconv.FormatInt(s.nextTS, 10) + ".000100"
}

func formBlocks(r *http.Request) (slack.Blocks, string) {
	var b slack.Blocks
	if v := r.FormValue("blocks"); v != "" {
		if err := json.Unmarshal([]byte(v), &b); err != nil {
			return b, "invalid_blocks"
		}
	}
	return b, ""
}

func (s *Slack) postMessage(r *http.Request) (map[string]any, string) {
	ch := r.FormValue("channel")
	if ch == "" {
		return nil, "channel_not_found"
	}
	blocks, fail := formBlocks(r)
	if fail != "" {
		return nil, fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &SlackMessage{Channel: ch, TS: s.ts(), Text: r.FormValue("text"), Blocks: blocks}
	if md := r.FormValue("metadata"); md != "" {
		if err := json.Unmarshal([]byte(md), &m.Metadata); err != nil {
			return nil, "invalid_metadata"
		}
	}
	s.messages = append(s.messages, m)
	return map[string]any{"channel": m.Channel, "ts": m.TS}, ""
}

func (s *Slack) update(r *http.Request) (map[string]any, string) {
	blocks, fail := formBlocks(r)
	if fail != "" {
		return nil, fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.find(r.FormValue("channel"), r.FormValue("ts"))
	if m == nil {
		return nil, "message_not_found"
	}
	m.Text, m.Blocks = r.FormValue("text"), blocks
	m.Updates++
	return map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text}, ""
}

func (s *Slack) postEphemeral(r *http.Request) (map[string]any, string) {
	ch, user := r.FormValue("channel"), r.FormValue("user")
	if ch == "" {
		return nil, "channel_not_found"
	}
	if user == "" {
		return nil, "user_not_found"
	}
	blocks, fail := formBlocks(r)
	if fail != "" {
		return nil, fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := SlackMessage{Channel: ch, TS: s.ts(), User: user, Text: r.FormValue("text"), Blocks: blocks}
	s.ephemerals = append(s.ephemerals, m)
	return map[string]any{"message_ts": m.TS}, ""
}

func (s *Slack) openConversation(r *http.Request) (map[string]any, string) {
	users := r.FormValue("users")
	if users == "" || strings.Contains(users, ",") {
		return nil, "invalid_users"
	}
	return map[string]any{"channel": map[string]any{"id": DMChannel(users)}}, ""
}

func (s *Slack) openView(r *http.Request) (map[string]any, string) {
	var req struct {
		TriggerID string                 `json:"trigger_id"`
		View      slack.ModalViewRequest `json:"view"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return nil, "invalid_arguments"
	}
	if req.TriggerID == "" {
		return nil, "invalid_trigger_id"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := SlackView{ID: fmt.Sprintf("V%d", len(s.views)+1), TriggerID: req.TriggerID, View: req.View}
	s.views = append(s.views, v)
	return map[string]any{"view": map[string]any{"id": v.ID, "callback_id": v.View.CallbackID}}, ""
}

// response serves the harness's response_urls (/response/<channel>/<ts>):
// JSON messages, answered like Slack does.
func (s *Slack) response(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/response/"), "/", 2)
	var msg slack.Msg
	if r.Method != http.MethodPost || len(parts) != 2 || json.NewDecoder(r.Body).Decode(&msg) != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	channel, _ := url.PathUnescape(parts[0])
	ts, _ := url.PathUnescape(parts[1])
	s.mu.Lock()
	s.calls = append(s.calls, "response_url")
	rec := SlackMessage{Channel: channel, TS: ts, Text: msg.Text, Blocks: msg.Blocks,
		ResponseType: msg.ResponseType, ReplaceOriginal: msg.ReplaceOriginal}
	s.responses = append(s.responses, rec)
	if m := s.find(channel, ts); m != nil && msg.ReplaceOriginal {
		m.Text, m.Blocks = msg.Text, msg.Blocks
		m.Updates++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// SlackSignature signs a request body the way Slack does: "v0=" + hex
// HMAC-SHA256(secret, "v0:" + timestamp + ":" + body).
func SlackSignature(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", timestamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignedSlackRequest builds the POST Slack would send to target: the body as a
// form, signed with secret at the given time.
func SignedSlackRequest(target, secret string, at time.Time, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("X-Slack-Signature", SlackSignature(secret, at.Unix(), body))
	return req, nil
}

// InteractionBody is the form body Slack posts for an interaction: payload=<JSON>.
func InteractionBody(ic slack.InteractionCallback) ([]byte, error) {
	js, err := json.Marshal(&ic)
	if err != nil {
		return nil, err
	}
	return []byte(url.Values{"payload": {string(js)}}.Encode()), nil
}

// BlockClick is the interaction Slack sends when user clicks the button
// actionID (with value) on the message at channel and ts; its response_url is
// the harness's for that message.
func (s *Slack) BlockClick(user, channel, ts, actionID, value string) slack.InteractionCallback {
	ic := slack.InteractionCallback{
		Type:        slack.InteractionTypeBlockActions,
		User:        slack.User{ID: user},
		Team:        slack.Team{ID: "T0TEST"},
		Channel:     slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: channel}}},
		Container:   slack.Container{Type: "message", ChannelID: channel, MessageTs: ts},
		Message:     slack.Message{Msg: slack.Msg{Timestamp: ts}},
		TriggerID:   "trigger-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		ResponseURL: s.ResponseURL(channel, ts),
		ActionTs:    strconv.FormatInt(time.Now().Unix(), 10) + ".000001",
	}
	ic.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionID, BlockID: "b-" + actionID, Value: value, Type: "button"}}
	return ic
}

// CommandBody is the form body Slack posts for a slash command.
func CommandBody(command, user, channel, text, responseURL string) []byte {
	return []byte(url.Values{
		"command": {command}, "text": {text}, "user_id": {user}, "channel_id": {channel},
		"team_id": {"T0TEST"}, "response_url": {responseURL}, "trigger_id": {"trigger-cmd"},
	}.Encode())
}

// history answers conversations.history: the channel's messages, newest
// first, with their metadata when include_all_metadata is set.
func (s *Slack) history(r *http.Request) (map[string]any, string) {
	ch := r.FormValue("channel")
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := []map[string]any{}
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if m.Channel != ch {
			continue
		}
		v := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
		if r.FormValue("include_all_metadata") == "1" && m.Metadata.EventType != "" {
			v["metadata"] = m.Metadata
		}
		msgs = append(msgs, v)
	}
	return map[string]any{"messages": msgs, "has_more": false}, ""
}

func (s *Slack) userInfo(r *http.Request) (map[string]any, string) {
	id := r.FormValue("user")
	s.mu.Lock()
	defer s.mu.Unlock()
	email, ok := s.users[id]
	if !ok {
		return nil, "user_not_found"
	}
	return map[string]any{"user": map[string]any{"id": id, "profile": map[string]any{"email": email}}}, ""
}

func (s *Slack) userByEmail(r *http.Request) (map[string]any, string) {
	email := r.FormValue("email")
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.users {
		if strings.EqualFold(e, email) {
			return map[string]any{"user": map[string]any{"id": id, "profile": map[string]any{"email": e}}}, ""
		}
	}
	return nil, "users_not_found"
}
