package keyepochs

import (
	"testing"
	"time"
)

func TestEpochStartsAndAliases(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 36, 39, 500, time.UTC)
	if got := Default.Start(at); !got.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day epoch starts %s", got)
	}
	if got := Default.PIIAlias(DefaultAliasPrefix, Default.Start(at)); got != "alias/dpp/pii/2026-12-01" {
		t.Fatalf("alias %s", got)
	}
	short := Timings{Epoch: 2 * time.Second}
	if got := short.PIIAlias(DefaultAliasPrefix, short.Start(at)); got != "alias/dpp/pii/2026-12-01T123638Z" {
		t.Fatalf("alias %s: KMS aliases allow no colon", got)
	}
	three := Timings{Epoch: 72 * time.Hour} // aligned to the Unix epoch, as Temporal's interval schedules are
	if got := three.Start(at); got.Sub(time.Unix(0, 0))%(72*time.Hour) != 0 || at.Sub(got) >= 72*time.Hour {
		t.Fatalf("3-day epoch starts %s", got)
	}
	if got := TaxAlias(DefaultAliasPrefix, 2026); got != "alias/dpp/tax/2026" {
		t.Fatalf("tax alias %s", got)
	}
	if d := (Timings{DeletionWindow: 168 * time.Hour}).WindowDays(); d != 7 {
		t.Fatalf("window %d days", d)
	}
}
