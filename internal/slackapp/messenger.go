package slackapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// DefaultAPIURL is Slack's Web API (SLACK_API_URL's default).
const DefaultAPIURL = "https://slack.com/api/"

// Messenger posts, updates and opens things in Slack with the bot token. Its
// errors are *APIError: the method and Slack's code only. A nil *Messenger
// (Slack not configured) returns ErrNotConfigured from every method.
//
// Messages posted from activities should be updated later with Update on the
// stored channel and ts (a click can come days later, when a response_url
// has expired).
type Messenger struct {
	c       *slack.Client
	respond *responder
}

// NewMessenger builds a Messenger for the bot token against apiURL (empty:
// DefaultAPIURL; tests: slacktest's). Calls time out after 10 s so an activity
// never hangs on Slack.
func NewMessenger(botToken, apiURL string) *Messenger {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	return &Messenger{
		c:       slack.New(botToken, slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(hc)),
		respond: newResponder(hc),
	}
}

// Client is the underlying slack-go client, for calls the Messenger lacks.
func (m *Messenger) Client() *slack.Client {
	if m == nil {
		return nil
	}
	return m.c
}

// msgOptions are the options of a message with blocks and the fallback text
// notifications and screen readers show.
func msgOptions(blocks []slack.Block, fallback string) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(fallback, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	return opts
}

// PostDM opens (or finds) the direct message with userID and posts the
// message there. It returns the DM's channel and the message's ts, which
// Update needs.
func (m *Messenger) PostDM(ctx context.Context, userID string, blocks []slack.Block, fallback string) (channel, ts string, err error) {
	if m == nil {
		return "", "", ErrNotConfigured
	}
	ch, _, _, err := m.c.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{userID}, ReturnIM: true})
	if err != nil {
		return "", "", apiError("conversations.open", err)
	}
	if ch == nil || ch.ID == "" {
		return "", "", &APIError{Method: "conversations.open", Code: "no_channel_returned"}
	}
	return m.Post(ctx, ch.ID, blocks, fallback)
}

// Post posts the message to channel (an id, or a name Slack resolves) and
// returns the channel id and the message's ts.
func (m *Messenger) Post(ctx context.Context, channel string, blocks []slack.Block, fallback string) (channelID, ts string, err error) {
	if m == nil {
		return "", "", ErrNotConfigured
	}
	channelID, ts, err = m.c.PostMessageContext(ctx, channel, msgOptions(blocks, fallback)...)
	return channelID, ts, apiError("chat.postMessage", err)
}

// Update replaces the message at channel and ts.
func (m *Messenger) Update(ctx context.Context, channel, ts string, blocks []slack.Block, fallback string) error {
	if m == nil {
		return ErrNotConfigured
	}
	_, _, _, err := m.c.UpdateMessageContext(ctx, channel, ts, msgOptions(blocks, fallback)...)
	return apiError("chat.update", err)
}

// Ephemeral shows text to user in channel only.
func (m *Messenger) Ephemeral(ctx context.Context, channel, user, text string) error {
	if m == nil {
		return ErrNotConfigured
	}
	_, err := m.c.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(text, false))
	return apiError("chat.postEphemeral", err)
}

// OpenModal opens view for the person whose click carried triggerID (valid for
// 3 s: call it from the handler, not later) and returns the view's id.
func (m *Messenger) OpenModal(ctx context.Context, triggerID string, view slack.ModalViewRequest) (viewID string, err error) {
	if m == nil {
		return "", ErrNotConfigured
	}
	resp, err := m.c.OpenViewContext(ctx, triggerID, view)
	if err != nil {
		return "", apiError("views.open", err)
	}
	if resp == nil {
		return "", nil
	}
	return resp.ID, nil
}

// Respond posts rep to a response_url (valid 30 minutes, 5 uses).
func (m *Messenger) Respond(ctx context.Context, responseURL string, rep Reply) error {
	if m == nil {
		return ErrNotConfigured
	}
	return m.respond.post(ctx, responseURL, rep)
}

// UserEmail is the e-mail address on userID's Slack profile ("" when the
// profile has none), for matching a clicker against approvers listed by
// address (scope users:read.email). Errors name the method and code only.
func (m *Messenger) UserEmail(ctx context.Context, userID string) (string, error) {
	if m == nil {
		return "", ErrNotConfigured
	}
	u, err := m.c.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", apiError("users.info", err)
	}
	return u.Profile.Email, nil
}

// UserByEmail is the Slack user id of the account with that address, or ""
// when there is none (users_not_found), so reminders reach approvers listed
// by address.
func (m *Messenger) UserByEmail(ctx context.Context, email string) (string, error) {
	if m == nil {
		return "", ErrNotConfigured
	}
	u, err := m.c.GetUserByEmailContext(ctx, email)
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && se.Err == "users_not_found" {
		return "", nil
	}
	if err != nil {
		return "", apiError("users.lookupByEmail", err)
	}
	return u.ID, nil
}

// PostTagged posts like Post with metadata, so FindTagged can tell later
// whether a post whose answer was lost went through.
func (m *Messenger) PostTagged(ctx context.Context, channel string, meta slack.SlackMetadata, blocks []slack.Block, fallback string) (channelID, ts string, err error) {
	if m == nil {
		return "", "", ErrNotConfigured
	}
	channelID, ts, err = m.c.PostMessageContext(ctx, channel, append(msgOptions(blocks, fallback), slack.MsgOptionMetadata(meta))...)
	return channelID, ts, apiError("chat.postMessage", err)
}

// FindTagged returns the ts of the newest of the channel's last 200 messages
// whose metadata has eventType and the payload's key equal to value, or ""
// (scope channels:history, or groups:history for a private channel).
func (m *Messenger) FindTagged(ctx context.Context, channel, eventType, key, value string) (string, error) {
	if m == nil {
		return "", ErrNotConfigured
	}
	h, err := m.c.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: 200, IncludeAllMetadata: true})
	if err != nil {
		return "", apiError("conversations.history", err)
	}
	for _, msg := range h.Messages {
		if md := msg.Metadata; md.EventType == eventType && fmt.Sprint(md.EventPayload[key]) == value {
			return msg.Timestamp, nil
		}
	}
	return "", nil
}
