package slackapp

import (
	"context"
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
