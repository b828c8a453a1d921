package slackapp

import (
	"context"
	"net/http"
	"net/url"

	"github.com/slack-go/slack"
)

// Reply is a message sent to an interaction's or a command's response_url.
type Reply struct {
	Text   string
	Blocks []slack.Block
	// Ephemeral shows it to the person who acted only; otherwise it goes to
	// the channel (ignored with ReplaceOriginal).
	Ephemeral bool
	// ReplaceOriginal replaces the message the button was on.
	ReplaceOriginal bool
}

// responder posts Replies to response_urls: Slack's URLs, which need no token.
type responder struct {
	c *slack.Client
}

func newResponder(hc *http.Client) *responder {
	return &responder{c: slack.New("", slack.OptionHTTPClient(hc))}
}

// post sends rep to responseURL; a URL that is not absolute http(s) is refused
// before any request (it came from a verified payload, but costs nothing to check).
func (p *responder) post(ctx context.Context, responseURL string, rep Reply) error {
	if u, err := url.Parse(responseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &APIError{Method: "response_url", Code: "invalid_response_url"}
	}
	opts := []slack.MsgOption{slack.MsgOptionText(rep.Text, false)}
	if len(rep.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(rep.Blocks...))
	}
	if rep.ReplaceOriginal {
		opts = append(opts, slack.MsgOptionReplaceOriginal(responseURL))
	} else {
		rt := slack.ResponseTypeInChannel
		if rep.Ephemeral {
			rt = slack.ResponseTypeEphemeral
		}
		opts = append(opts, slack.MsgOptionResponseURL(responseURL, rt))
	}
	_, _, _, err := p.c.SendMessageContext(ctx, "", opts...)
	return apiError("response_url", err)
}
