package config

import (
	"strings"
	"testing"
	"time"
)

func TestAccessDefaultsAndOrder(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ReviewReminders) != 2 || c.ReviewReminders[1] != 144*time.Hour || c.ReviewEscalation != 168*time.Hour ||
		c.ReviewDeadline != 336*time.Hour || c.OffboardingSLA != 24*time.Hour || c.LockoutThreshold != 10 ||
		len(c.OffboardingEscalations) != 2 || c.OffboardingEscalations[0] != 12*time.Hour {
		t.Fatalf("access defaults: %+v", c)
	}
	// A demo shortens 14 days to seconds: only the order is checked.
	demo := minimal()
	demo["DPP_REVIEW_REMINDERS"], demo["DPP_REVIEW_ESCALATION"], demo["DPP_REVIEW_DEADLINE"] = "15s,30s", "45s", "75s"
	if _, err := Load(env(demo)); err != nil {
		t.Fatalf("seconds: %v", err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"DPP_REVIEW_DEADLINE", "100h", "DPP_REVIEW_DEADLINE must be later than DPP_REVIEW_ESCALATION"},
		{"DPP_REVIEW_REMINDERS", "144h,72h", "DPP_REVIEW_REMINDERS must be in increasing order"},
		{"DPP_REVIEW_REMINDERS", "72h,soon", `DPP_REVIEW_REMINDERS entry 2 must be a positive Go duration`},
		{"DPP_OFFBOARDING_ESCALATIONS", "12h,30h", "DPP_OFFBOARDING_ESCALATIONS must all come before DPP_OFFBOARDING_SLA"},
		{"DPP_LOCKOUT_THRESHOLD", "0", "DPP_LOCKOUT_THRESHOLD must be a whole number"},
		{"DPP_DPO_PERSON_ID", "Dana.Someone@example.com", "DPP_DPO_PERSON_ID must be a person id"},
		{"DPP_OFFBOARDING_REQUESTERS", "p-hr,Jo Bloggs", "DPP_OFFBOARDING_REQUESTERS entry 2 must be a person id"},
	} {
		e := minimal()
		e[tc.name] = tc.value
		_, err := Load(env(e))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want %q", tc.name, tc.value, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "Jo Bloggs") || strings.Contains(err.Error(), "Dana.Someone")) {
			t.Errorf("%s: the error echoes a name: %v", tc.name, err)
		}
	}
}
