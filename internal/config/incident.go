package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

var durationList = (*loader).durationList

// durationList parses comma-separated Go durations, in increasing order.
func (l *loader) durationList(name string) []time.Duration {
	var out []time.Duration
	for i, v := range l.list(name) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			l.fail(name, fmt.Sprintf("entry %d must be a positive Go duration like 4h, got %q", i+1, v))
			continue
		}
		if len(out) > 0 && d <= out[len(out)-1] {
			l.fail(name, fmt.Sprintf("entry %d must be later than the one before", i+1))
		}
		out = append(out, d)
	}
	return out
}

var stageID = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// checkIncident validates the incident clocks: only their order is checked
// (reminders before auto-send before the deadline), so a demo may shorten them
// to seconds.
func (l *loader) checkIncident(c *Config) {
	if c.IncidentAmazonDeadline <= 0 {
		l.fail("DPP_INCIDENT_AMAZON_DEADLINE", "must be positive")
	}
	if c.IncidentICODeadline <= 0 {
		l.fail("DPP_INCIDENT_ICO_DEADLINE", "must be positive")
	}
	if n := len(c.IncidentReminders); n > 0 && c.IncidentReminders[n-1] >= c.IncidentAmazonDeadline {
		l.fail("DPP_INCIDENT_REMINDERS", "must all come before DPP_INCIDENT_AMAZON_DEADLINE")
	}
	switch {
	case c.IncidentAutoSend < 0:
		l.fail("DPP_INCIDENT_AUTO_SEND", "must not be negative (0 turns it off)")
	case c.IncidentAutoSend > 0 && c.IncidentAutoSend >= c.IncidentAmazonDeadline:
		l.fail("DPP_INCIDENT_AUTO_SEND", "must come before DPP_INCIDENT_AMAZON_DEADLINE")
	case c.IncidentAutoSend > 0 && len(c.IncidentReminders) > 0 && c.IncidentReminders[0] >= c.IncidentAutoSend:
		l.fail("DPP_INCIDENT_REMINDERS", "the first reminder must come before DPP_INCIDENT_AUTO_SEND")
	}
	if c.IncidentTextRetention <= 0 {
		l.fail("DPP_INCIDENT_TEXT_RETENTION", "must be positive")
	}
	if u, err := url.Parse(c.SMTPURL); err == nil && u.Scheme != "smtp" && u.Scheme != "smtps" {
		l.fail("SMTP_URL", "must be smtp://[user:password@]host[:port] (STARTTLS) or smtps://... (implicit TLS)")
	}
	if len(c.IncidentStages) == 0 {
		l.fail("DPP_INCIDENT_STAGES", "must name at least one stage")
	}
	for i, s := range c.IncidentStages {
		if !stageID.MatchString(s) || slices.Index(c.IncidentStages, s) != i {
			l.fail("DPP_INCIDENT_STAGES", fmt.Sprintf("entry %d must be a unique lower-case id like containment", i+1))
		}
	}
	// Entries are named by position: an approver may be given as an address.
	for i, a := range c.IncidentApprovers {
		if strings.ContainsAny(a, " <>") {
			l.fail("DPP_INCIDENT_APPROVERS", fmt.Sprintf("entry %d must be a Slack user id, an operator id or a bare e-mail address", i+1))
		}
	}
}
