package config

import (
	"strings"
	"testing"
	"time"
)

// The defaults keep every copy of buyer PII undecryptable within 30 days of
// sealing: 552h of lifetime and a 168h deletion window make exactly 720h.
func TestKeyEpochDefaultsKeepThePromise(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyEpoch != 24*time.Hour || c.KeyEpochLifetime != 552*time.Hour || c.KeyDeletionWindow != 168*time.Hour {
		t.Fatalf("defaults %s %s %s", c.KeyEpoch, c.KeyEpochLifetime, c.KeyDeletionWindow)
	}
	if c.KeyEpochLifetime+c.KeyDeletionWindow > PIICopiesBound {
		t.Fatal("the defaults break the 30-day promise")
	}
	// Shortened timings for a demo or a test keep it too.
	m := minimal()
	m["DPP_KEY_EPOCH"], m["DPP_KEY_EPOCH_LIFETIME"] = "2s", "5s"
	if _, err := Load(env(m)); err != nil {
		t.Fatal(err)
	}
}

func TestKeyEpochTimingsThatBreakThePromiseAreRejected(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]string
		want []string
	}{
		{map[string]string{"DPP_KEY_EPOCH_LIFETIME": "600h"}, []string{"DPP_KEY_EPOCH_LIFETIME", "DPP_KEY_DELETION_WINDOW", "more than 720h"}},
		{map[string]string{"DPP_KEY_DELETION_WINDOW": "240h"}, []string{"DPP_KEY_EPOCH_LIFETIME plus DPP_KEY_DELETION_WINDOW is 792h"}},
		{map[string]string{"DPP_KEY_DELETION_WINDOW": "72h"}, []string{"DPP_KEY_DELETION_WINDOW", "whole days from 7 to 30"}},
		{map[string]string{"DPP_KEY_DELETION_WINDOW": "170h"}, []string{"DPP_KEY_DELETION_WINDOW", "whole days"}},
		{map[string]string{"DPP_KEY_EPOCH": "600h"}, []string{"DPP_KEY_EPOCH_LIFETIME", "must be longer than DPP_KEY_EPOCH"}},
		{map[string]string{"DPP_KEY_EPOCH": "1500ms"}, []string{"DPP_KEY_EPOCH", "whole number of seconds"}},
		{map[string]string{"DPP_KEY_EPOCH": "0s"}, []string{"DPP_KEY_EPOCH", "positive"}},
	} {
		m := minimal()
		for k, v := range tc.set {
			m[k] = v
		}
		_, err := Load(env(m))
		if err == nil {
			t.Errorf("%v: accepted", tc.set)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.set, err, w)
			}
		}
	}
}
