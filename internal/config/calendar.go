package config

import (
	"fmt"
	"time"
)

// Calendar is the configuration of the compliance calendar and the alerts
// (issue 13), embedded in Config.
type Calendar struct {
	// DPOChannel is the Slack channel of duty reminders and alerts (DPP_DPO_CHANNEL).
	DPOChannel       string
	DutyWindow       time.Duration
	DutyReminders    []time.Duration
	DutyOverdueEvery time.Duration
	// LWASecretIssuedAt is when the current LWA client secret was issued (zero: not set).
	LWASecretIssuedAt    time.Time
	LWARotateBefore      time.Duration
	AlertInterval        time.Duration
	AlertSyncLag         time.Duration
	AlertDeadlineWarning time.Duration
	AmazonDataRetention  time.Duration
}

// calendarSettings are the calendar's and alerts' settings; Settings lists them
// (init below) so they are declared once, here.
var calendarSettings = []Setting{
	{Name: "DPP_DPO_CHANNEL", Doc: "Slack channel id of the Data Protection Officer: compliance duty reminders and escalations, and alerts when a promise slips (raised once, announced again when resolved); empty: no Slack message (the alerts stay in the database and the dpp_alerts_open metric)",
		load: into(str, func(c *Config) *string { return &c.DPOChannel })},
	{Name: "DPP_DUTY_WINDOW", Default: "336h", Doc: "how long a compliance duty (risk assessment, incident-plan review, vulnerability scan) has from its opening to its due time",
		load: into(duration, func(c *Config) *time.Duration { return &c.DutyWindow })},
	{Name: "DPP_DUTY_REMINDERS", Default: "24h,168h", Doc: "comma-separated times before a duty's due time at which it is reminded again (besides when it opens), in increasing order",
		load: into(durationList, func(c *Config) *[]time.Duration { return &c.DutyReminders })},
	{Name: "DPP_DUTY_OVERDUE_EVERY", Default: "24h", Doc: "an overdue duty is escalated at its due time and again this often until it is done",
		load: into(duration, func(c *Config) *time.Duration { return &c.DutyOverdueEvery })},
	{Name: "DPP_LWA_SECRET_ISSUED_AT", Doc: "when the current LWA client secret was issued (RFC 3339 date or time); it expires 180 days later. A rotation recorded by completing the lwa-secret-rotation duty wins when later; empty and none recorded: the duty opens at once, asking for the rotation to be recorded",
		load: into(timestamp, func(c *Config) *time.Time { return &c.LWASecretIssuedAt })},
	{Name: "DPP_LWA_ROTATE_BEFORE", Default: "720h", Doc: "the lwa-secret-rotation duty opens this long before the secret's expiry (its due time)",
		load: into(duration, func(c *Config) *time.Duration { return &c.LWARotateBefore })},
	{Name: "DPP_ALERT_INTERVAL", Default: "1m", Doc: "how often the alert-check schedule evaluates the alert conditions",
		load: into(duration, func(c *Config) *time.Duration { return &c.AlertInterval })},
	{Name: "DPP_ALERT_SYNC_LAG", Default: "30m", Doc: "alert when OrderSync's watermark is older than this",
		load: into(duration, func(c *Config) *time.Duration { return &c.AlertSyncLag })},
	{Name: "DPP_ALERT_DEADLINE_WARNING", Default: "24h", Doc: "alert when a running workflow's ComplianceDeadline (incident clock, review, offboarding, compliance duty) is this close, and again when it passed",
		load: into(duration, func(c *Config) *time.Duration { return &c.AlertDeadlineWarning })},
	{Name: "DPP_AMAZON_DATA_RETENTION", Default: "13140h", Doc: "non-PII Amazon Information (an order's facts, resolved sync rejects) is deleted this long after purchase or last sight (policy: 18 months); invoices are tax records, kept for DPP_TAX_RETENTION",
		load: into(duration, func(c *Config) *time.Duration { return &c.AmazonDataRetention })},
}

func init() { Settings = append(Settings, calendarSettings...) }

var timestamp = (*loader).timestamp

// timestamp parses an RFC 3339 time or date; empty is the zero time.
func (l *loader) timestamp(name string) time.Time {
	v := l.str(name)
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC()
		}
	}
	l.fail(name, "must be an RFC 3339 date or time like 2026-06-04 or 2026-06-04T09:00:00Z")
	return time.Time{}
}

// checkCalendar checks that every duration is positive.
func (l *loader) checkCalendar(c *Config) {
	for name, d := range map[string]time.Duration{"DPP_DUTY_WINDOW": c.DutyWindow, "DPP_DUTY_OVERDUE_EVERY": c.DutyOverdueEvery,
		"DPP_LWA_ROTATE_BEFORE": c.LWARotateBefore, "DPP_ALERT_INTERVAL": c.AlertInterval, "DPP_ALERT_SYNC_LAG": c.AlertSyncLag,
		"DPP_ALERT_DEADLINE_WARNING": c.AlertDeadlineWarning, "DPP_AMAZON_DATA_RETENTION": c.AmazonDataRetention} {
		if d <= 0 {
			l.fail(name, fmt.Sprintf("must be a positive duration, got %s", d))
		}
	}
	if c.LWARotateBefore >= 180*24*time.Hour {
		l.fail("DPP_LWA_ROTATE_BEFORE", "must be shorter than the secret's 180 days")
	}
}
