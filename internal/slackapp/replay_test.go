package slackapp

import (
	"testing"
	"time"
)

func TestReplayGuardForgetsOnlyExpiredSignatures(t *testing.T) {
	g := newReplayGuard(2)
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(SignatureWindow)
	if g.admit("a", exp, now) != admitted || g.admit("b", exp.Add(time.Minute), now) != admitted {
		t.Fatal("fresh signatures refused")
	}
	if g.admit("a", exp, now.Add(time.Minute)) != replayed {
		t.Fatal("a replay inside the window was admitted")
	}
	// Full, and both still live: refuse rather than forget one.
	if got := g.admit("c", exp, now.Add(time.Minute)); got != full {
		t.Fatalf("full guard admitted a new signature (%v)", got)
	}
	// Once "a" has left the window it is swept and "c" fits.
	if got := g.admit("c", exp, exp); got != admitted {
		t.Fatalf("after a's expiry: %v", got)
	}
	if g.admit("b", exp, exp) != replayed {
		t.Fatal("b was forgotten while still live")
	}
}
