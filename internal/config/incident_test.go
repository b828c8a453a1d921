package config

import (
	"testing"
	"time"
)

func TestIncidentClocks(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if c.IncidentAmazonDeadline != 24*time.Hour || c.IncidentICODeadline != 72*time.Hour || c.IncidentAutoSend != 22*time.Hour ||
		len(c.IncidentReminders) != 3 || c.IncidentReminders[2] != 20*time.Hour || c.IncidentStages[0] != "triage" {
		t.Errorf("defaults: %+v", c)
	}
	checkSettings(t, []settingCase{
		// A demo shortens everything to seconds: only the order counts.
		{set: map[string]string{"DPP_INCIDENT_AMAZON_DEADLINE": "60s", "DPP_INCIDENT_REMINDERS": "10s,20s", "DPP_INCIDENT_AUTO_SEND": "50s", "DPP_INCIDENT_ICO_DEADLINE": "180s"}},
		{set: map[string]string{"DPP_INCIDENT_AUTO_SEND": "0"}},
		{set: map[string]string{"DPP_INCIDENT_REMINDERS": "12h,4h"}, names: "DPP_INCIDENT_REMINDERS"},
		{set: map[string]string{"DPP_INCIDENT_REMINDERS": "4h,25h"}, names: "DPP_INCIDENT_REMINDERS"},
		{set: map[string]string{"DPP_INCIDENT_AUTO_SEND": "25h"}, names: "DPP_INCIDENT_AUTO_SEND"},
		{set: map[string]string{"DPP_INCIDENT_TEXT_RETENTION": "0"}, names: "DPP_INCIDENT_TEXT_RETENTION"},
		{set: map[string]string{"DPP_INCIDENT_AUTO_SEND": "3h"}, names: "DPP_INCIDENT_REMINDERS"},
		{set: map[string]string{"DPP_INCIDENT_STAGES": "Triage,triage"}, names: "DPP_INCIDENT_STAGES"},
		{set: map[string]string{"DPP_INCIDENT_APPROVERS": "J Smith <j@x.example>"}, names: "DPP_INCIDENT_APPROVERS", not: "j@x.example"},
		{set: map[string]string{"SMTP_URL": "https://mail.example"}, names: "SMTP_URL"},
		{set: map[string]string{"DPP_MAIL_FROM": "not an address"}, names: "DPP_MAIL_FROM"},
	})
}
