package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plusranger/dpp/internal/actor"
)

// durations parses a comma-separated list of positive Go durations in increasing order.
func (l *loader) durations(name string) []time.Duration {
	var out []time.Duration
	for i, p := range strings.Split(l.str(name), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		d, err := time.ParseDuration(p)
		if err != nil || d <= 0 {
			l.fail(name, fmt.Sprintf("entry %d must be a positive Go duration like 72h or 30s, got %q", i+1, p))
			continue
		}
		out = append(out, d)
	}
	if !slices.IsSorted(out) {
		l.fail(name, "must be in increasing order")
	}
	return out
}

// count parses a positive whole number.
func (l *loader) count(name string) int {
	v := l.str(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		l.fail(name, fmt.Sprintf("must be a whole number from 1 to 1000, got %q", v))
		return 1
	}
	return n
}

// checkAccess checks the access settings against each other: only their order
// matters (a demo shortens 14 days to seconds), reminders before the escalation
// before the deadline.
func (l *loader) checkAccess(c *Config) {
	if c.ReviewEscalation <= 0 {
		l.fail("DPP_REVIEW_ESCALATION", "must be positive")
	}
	if c.ReviewDeadline <= c.ReviewEscalation {
		l.fail("DPP_REVIEW_DEADLINE", "must be later than DPP_REVIEW_ESCALATION")
	}
	if n := len(c.ReviewReminders); n > 0 && c.ReviewReminders[n-1] >= c.ReviewEscalation {
		l.fail("DPP_REVIEW_REMINDERS", "must all come before DPP_REVIEW_ESCALATION")
	}
	if c.OffboardingSLA <= 0 {
		l.fail("DPP_OFFBOARDING_SLA", "must be positive")
	}
	if n := len(c.OffboardingEscalations); n > 0 && c.OffboardingEscalations[n-1] >= c.OffboardingSLA {
		l.fail("DPP_OFFBOARDING_ESCALATIONS", "must all come before DPP_OFFBOARDING_SLA")
	}
	// Person ids, never names or e-mail addresses: entries are named by position.
	if c.DPOPersonID != "" && actor.Valid(c.DPOPersonID) != nil {
		l.fail("DPP_DPO_PERSON_ID", "must be a person id (people.id), not a name or e-mail address")
	}
	for i, id := range c.OffboardingRequesters {
		if actor.Valid(id) != nil {
			l.fail("DPP_OFFBOARDING_REQUESTERS", fmt.Sprintf("entry %d must be a person id, not a name or e-mail address", i+1))
		}
	}
}
