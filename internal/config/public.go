package config

import (
	"net"
	"strings"
)

// checkPublic validates the public listener and Slack settings together.
func (l *loader) checkPublic(c *Config) {
	if _, _, err := net.SplitHostPort(c.PublicAddr); err != nil {
		l.fail("DPP_PUBLIC_ADDR", "must be host:port, e.g. 127.0.0.1:8089")
	} else if sameListener(c.PublicAddr, c.HTTPAddr) {
		l.fail("DPP_PUBLIC_ADDR", "must not be the listener of DPP_HTTP_ADDR: the codec and metrics never face the ingress")
	}
	if t := c.IngestToken; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		l.fail("DPP_INGEST_TOKEN", "must be at least 16 characters without spaces (e.g. `openssl rand -hex 32`)")
	}
	// A worker that posts to Slack but cannot verify Slack's answers would
	// show buttons nobody can use: refuse it at start.
	if c.SlackBotToken != "" && c.SlackSigningSecret == "" {
		l.fail("SLACK_SIGNING_SECRET", "is required when SLACK_BOT_TOKEN is set: without it the public listener cannot verify Slack's requests (Basic Information > App Credentials > Signing Secret in the app's settings)")
	}
	if t := c.SlackBotToken; t != "" && !strings.HasPrefix(t, "xoxb-") {
		l.fail("SLACK_BOT_TOKEN", "must be a bot token (xoxb-...), from OAuth & Permissions in the app's settings")
	}
}

// sameListener reports whether two host:port addresses could be one socket:
// same port, and the same host or a wildcard on either side.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	ipa, ipb := net.ParseIP(ha), net.ParseIP(hb)
	if ipa == nil || ipb == nil {
		return ha == hb || ha == "" || hb == "" || ipa != nil && ipa.IsUnspecified() || ipb != nil && ipb.IsUnspecified() || isLoopback(ha) && isLoopback(hb)
	}
	return ipa.Equal(ipb) || ipa.IsUnspecified() || ipb.IsUnspecified()
}
