package doctor

import (
	"strings"
	"testing"

	"github.com/plusranger/dpp/internal/config"
)

// The key policy basics: local-kms keeps no policies, so the parsing is tested here.
func TestOpenStatement(t *testing.T) {
	for _, tc := range []struct {
		policy string
		open   int
	}{
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*"}]}`, 0},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*"},{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt"}]}`, 2},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:role/w","*"]},"Action":"kms:Decrypt"}]}`, 1},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Condition":{"StringEquals":{"kms:CallerAccount":"1"}}}]}`, 0},
		{`{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion"}]}`, 0},
	} {
		if _, open, err := openStatement(tc.policy); err != nil || open != tc.open {
			t.Errorf("%s: open statement %d (%v), want %d", tc.policy, open, err, tc.open)
		}
	}
	if _, _, err := openStatement("not json"); err == nil {
		t.Error("not JSON: want an error")
	}
}

// Amazon Information crosses the network only over TLS: plain HTTP is a local sandbox or a failure.
func TestCheckEndpoint(t *testing.T) {
	for url, want := range map[string]string{
		"https://sellingpartnerapi-eu.amazon.com": OK,
		"http://127.0.0.1:8099":                   Warn,
		"http://localhost:8099":                   Warn,
		"http://sellingpartnerapi-eu.amazon.com":  Fail,
	} {
		r := checkEndpoint(&config.Config{SPAPIEndpoint: url})
		if r.Status != want || !strings.Contains(r.Found, url) {
			t.Errorf("%s: %+v, want %s", url, r, want)
		}
	}
}
