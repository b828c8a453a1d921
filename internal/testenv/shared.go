package testenv

import (
	"context"
	"sync"
	"testing"
	"time"
)

// shared is a component one test binary starts once, on first use, and every
// test of the binary then uses; TestMain stops it (StopAll).
type shared[T interface{ Stop() }] struct {
	name    string // what a skip or a failure names
	timeout time.Duration
	start   func(context.Context) (T, error)

	mu    sync.Mutex
	value T
	err   error
	done  bool
}

// get returns the component, starting it on the first call. It fails the
// test, never skips it, when the component cannot start.
func (s *shared[T]) get(t testing.TB) T {
	t.Helper()
	skipInShortMode(t, s.name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		s.value, s.err = s.start(ctx)
		cancel()
		s.done = true
	}
	if s.err != nil {
		t.Fatalf("testenv: %s is required for this test and could not start: %v", s.name, s.err)
	}
	return s.value
}

// stop stops the component if it was started; a later get starts a new one.
func (s *shared[T]) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done && s.err == nil {
		s.value.Stop()
	}
	var zero T
	s.value, s.err, s.done = zero, nil, false
}
