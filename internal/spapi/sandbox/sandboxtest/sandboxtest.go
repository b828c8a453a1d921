// Package sandboxtest starts the SP-API sandbox server (package sandbox) on a
// loopback httptest listener for tests. It lives in its own package so that
// the sandbox itself, which the dev stack runs, does not import "testing".
package sandboxtest

import (
	"net/http/httptest"
	"testing"

	"github.com/plusranger/dpp/internal/spapi/sandbox"
)

// Start starts a sandbox server with opts and returns it and its base URL
// (use it as spapi.Config.Endpoint, and base URL + "/auth/o2/token" as
// spapi.Config.TokenURL). The listener closes when the test ends. It fails the
// test if the server cannot be built (invalid Options.Limits).
func Start(t testing.TB, opts sandbox.Options) (*sandbox.Server, string) {
	t.Helper()
	srv, err := sandbox.NewE(opts)
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts.URL
}

// TokenURL returns the sandbox's LWA token endpoint for a base URL returned by Start.
func TokenURL(baseURL string) string { return baseURL + "/auth/o2/token" }
