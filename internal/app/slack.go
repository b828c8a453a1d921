package app

import (
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/slackapp"
)

// newSlack is App.Slack: the Messenger for SLACK_BOT_TOKEN at SLACK_API_URL,
// or nil when the token is empty. Slack is optional: a nil Messenger answers
// slackapp.ErrNotConfigured, and the workflows then take decisions by signal
// only. Building it makes no call (the first post checks the token).
func newSlack(cfg *config.Config) *slackapp.Messenger {
	if cfg.SlackBotToken == "" {
		return nil
	}
	return slackapp.NewMessenger(cfg.SlackBotToken, cfg.SlackAPIURL)
}
