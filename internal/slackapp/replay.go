package slackapp

import (
	"sync"
	"time"
)

type admission int

const (
	admitted admission = iota
	replayed
	full
)

// replayGuard remembers the signatures of accepted requests until their
// timestamp leaves the signature window, after which slack-go's verifier
// refuses them anyway. Its memory is bounded: when every remembered signature
// is still live it refuses new ones instead of forgetting one that could then
// be replayed.
type replayGuard struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // signature -> when it stops mattering
}

func newReplayGuard(max int) *replayGuard {
	return &replayGuard{max: max, seen: make(map[string]time.Time)}
}

// admit records key (expiring at expires) unless it is already remembered.
func (g *replayGuard) admit(key string, expires, now time.Time) admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	if exp, ok := g.seen[key]; ok && now.Before(exp) {
		return replayed
	}
	if len(g.seen) >= g.max {
		// A sweep costs one pass over at most max entries, and happens only
		// when the map is full.
		for k, exp := range g.seen {
			if !now.Before(exp) {
				delete(g.seen, k)
			}
		}
		if len(g.seen) >= g.max {
			return full
		}
	}
	g.seen[key] = expires
	return admitted
}
