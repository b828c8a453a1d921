package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestIngestNeedsTheBearerToken: an ingest route runs only for the right
// token; an empty DPP_INGEST_TOKEN refuses everyone; bodies are bounded.
func TestIngestNeedsTheBearerToken(t *testing.T) {
	const token = "ingest-token-0123456789abcdef"
	for _, configured := range []string{token, ""} {
		p := newPublic("", configured, zap.NewNop())
		runs := 0
		p.Ingest(IncidentsPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			runs++
			w.WriteHeader(http.StatusAccepted)
		}))
		srv := httptest.NewServer(p.Handler())
		post := func(auth, body string) int {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+IncidentsPath, strings.NewReader(body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong-token-0123456789abcdef", "Basic " + token, "Bearer " + token + "x", "Bearer " + token[:len(token)-1]} {
			if code := post(auth, "{}"); code != http.StatusUnauthorized {
				t.Errorf("token %q configured %v: %d, want 401", auth, configured != "", code)
			}
		}
		code := post("Bearer "+token, "{}")
		switch {
		case configured == "" && code != http.StatusUnauthorized:
			t.Errorf("empty DPP_INGEST_TOKEN let a request in: %d", code)
		case configured != "" && code != http.StatusAccepted:
			t.Errorf("right token: %d", code)
		}
		if configured != "" {
			if code := post("bearer "+token, strings.Repeat("x", MaxIngestBody+1)); code != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized ingest body: %d", code)
			}
		}
		wantRuns := 0
		if configured != "" {
			wantRuns = 1
		}
		if runs != wantRuns {
			t.Errorf("configured %v: handler ran %d times, want %d", configured != "", runs, wantRuns)
		}
		// The operator listener's routes are not here.
		for _, path := range []string{"/codec/decode", "/metrics", "/healthz"} {
			resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s on the public listener: %d, want 404", path, resp.StatusCode)
			}
		}
		srv.Close()
	}
	p := newPublic("", token, zap.NewNop())
	for _, bad := range []string{"incidents", "/slack/events"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Ingest(%q) did not panic", bad)
				}
			}()
			p.Ingest(bad, http.NotFoundHandler())
		}()
	}
}
