package config

import (
	"strings"
	"testing"
)

func TestPublicListenerAndSlackSettings(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicAddr != "127.0.0.1:8089" || c.SlackAPIURL != "https://slack.com/api/" || c.SlackBotToken != "" || c.IngestToken != "" {
		t.Errorf("defaults: public %q, Slack API %q", c.PublicAddr, c.SlackAPIURL)
	}
	checkSettings(t, []settingCase{
		{set: map[string]string{"DPP_PUBLIC_ADDR": "127.0.0.1:8088"}, names: "DPP_PUBLIC_ADDR"},
		{set: map[string]string{"DPP_PUBLIC_ADDR": "0.0.0.0:8088"}, names: "DPP_PUBLIC_ADDR"},
		{set: map[string]string{"DPP_PUBLIC_ADDR": ":9000", "DPP_HTTP_ADDR": "127.0.0.1:9000"}, names: "DPP_PUBLIC_ADDR"},
		{set: map[string]string{"DPP_PUBLIC_ADDR": "localhost:8088"}, names: "DPP_PUBLIC_ADDR"},
		{set: map[string]string{"DPP_PUBLIC_ADDR": "10.0.0.5:8088"}},
		{set: map[string]string{"DPP_PUBLIC_ADDR": "no-port"}, names: "DPP_PUBLIC_ADDR"},
		{set: map[string]string{"DPP_INGEST_TOKEN": "short-secret"}, names: "DPP_INGEST_TOKEN", not: "short-secret"},
		{set: map[string]string{"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, names: "SLACK_SIGNING_SECRET", not: "xoxb-1-2-abc"},
		{set: map[string]string{"SLACK_BOT_TOKEN": "xoxp-user-token", "SLACK_SIGNING_SECRET": "s3cret"}, names: "SLACK_BOT_TOKEN", not: "xoxp-user-token"},
		{set: map[string]string{"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s3cret"}},
		// Verifying Slack's requests without posting (slash commands answer inline) is allowed.
		{set: map[string]string{"SLACK_SIGNING_SECRET": "s3cret"}},
		{set: map[string]string{"SLACK_API_URL": "slack.com/api"}, names: "SLACK_API_URL"},
	})
}

// settingCase is a set of variables on top of minimal() and the variable the
// error must name (empty: valid), without echoing not.
type settingCase struct {
	set   map[string]string
	names string
	not   string
}

func checkSettings(t *testing.T, cases []settingCase) {
	t.Helper()
	for _, tc := range cases {
		kv := minimal()
		for k, v := range tc.set {
			kv[k] = v
		}
		_, err := Load(env(kv))
		switch {
		case tc.names == "" && err != nil:
			t.Errorf("%v: %v", tc.set, err)
		case tc.names != "" && (err == nil || !strings.Contains(err.Error(), tc.names)):
			t.Errorf("%v: want an error naming %s, got %v", tc.set, tc.names, err)
		case tc.not != "" && strings.Contains(err.Error(), tc.not):
			t.Errorf("%v: the error echoes a value it must not: %v", tc.set, err)
		}
	}
}
