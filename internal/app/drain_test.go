package app_test

import (
	"testing"

	"github.com/plusranger/dpp/internal/app"
)

func TestProbeURLAsksWildcardListenersOnLoopback(t *testing.T) {
	for addr, want := range map[string]string{
		":8088":          "http://127.0.0.1:8088/healthz",
		"0.0.0.0:8088":   "http://127.0.0.1:8088/healthz",
		"[::]:8088":      "http://127.0.0.1:8088/healthz",
		"127.0.0.1:9000": "http://127.0.0.1:9000/healthz",
		"10.1.2.3:8088":  "http://10.1.2.3:8088/healthz",
		"[::1]:8088":     "http://[::1]:8088/healthz",
	} {
		got, err := app.ProbeURL(addr, "/healthz")
		if err != nil || got != want {
			t.Errorf("ProbeURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := app.ProbeURL("8088", "/healthz"); err == nil {
		t.Error("ProbeURL(\"8088\") succeeded; want an error (no host:port)")
	}
}
