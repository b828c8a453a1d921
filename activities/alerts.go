package activities

import (
	"context"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/alerts"
	"github.com/plusranger/dpp/internal/slackapp"
)

// Alerts holds what the alert check uses.
type Alerts struct {
	Checker *alerts.Checker
	// Slack is nil when Slack is not configured: alerts are then only in the
	// database and the dpp_alerts_open metric.
	Slack *slackapp.Messenger
	// Channel is the DPO channel (DPP_DPO_CHANNEL).
	Channel string
}

// Register registers the alert activities.
func (x *Alerts) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(x, registerOptions)
}

// CheckAlertsInput names the schedules whose runs are watched.
type CheckAlertsInput struct {
	Schedules []string `json:"schedules"`
}

// CheckAlertsResult counts what one check announced.
type CheckAlertsResult struct {
	Active     int `json:"active"`
	Raised     int `json:"raised"`
	Cleared    int `json:"cleared"`
	Unnotified int `json:"unnotified,omitempty"`
}

// CheckAlerts evaluates every condition, raises and clears alerts in the
// database, and announces each raise and clear once in the DPO channel. An
// announcement that fails is owed and sent by a later check; a retried check
// never repeats one that went out.
func (x *Alerts) CheckAlerts(ctx context.Context, in CheckAlertsInput) (*CheckAlertsResult, error) {
	active, err := x.Checker.Check(ctx, in.Schedules)
	if err != nil {
		return nil, err
	}
	owed, err := x.Checker.Store.Reconcile(ctx, active, alerts.Kinds)
	if err != nil {
		return nil, err
	}
	res := &CheckAlertsResult{Active: len(active)}
	for _, a := range owed {
		text := ":rotating_light: *Alert* `" + a.Key + "`: " + a.Text
		if a.Notify == "cleared" {
			text = ":white_check_mark: *Resolved* `" + a.Key + "` (raised " + a.RaisedAt.UTC().Format("2006-01-02 15:04 MST") + ")."
		}
		var channel, ts string
		if x.Slack != nil && x.Channel != "" {
			channel, ts, err = x.Slack.Post(ctx, x.Channel, []slack.Block{
				slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}, text)
			if err != nil {
				activity.GetLogger(ctx).Warn("Alert not announced; a later check retries", "key", a.Key, "error", err)
				res.Unnotified++
				continue
			}
		}
		if err := x.Checker.Store.Notified(ctx, a, channel, ts); err != nil {
			return nil, err
		}
		if a.Notify == "cleared" {
			res.Cleared++
		} else {
			res.Raised++
		}
	}
	return res, nil
}
