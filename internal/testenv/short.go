package testenv

import "testing"

// skipInShortMode skips a test that needs a real component when `go test
// -short` (make test-short) runs, and says so; `make test` and CI never pass
// -short, so there nothing is skipped.
func skipInShortMode(t testing.TB, component string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test: needs %s (-short skips it; `make test` runs it)", component)
	}
}
