package app_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
)

// apiKeyMarker is the TEMPORAL_API_KEY of the TLS test: it must reach the server
// (the dev server ignores it) and never a log line.
const apiKeyMarker = "tmprl-APIKEYMARKER9Z"

// Issue 8: the worker and the starter reach an mTLS cluster (or Temporal Cloud)
// through the SDK's environment configuration alone. The dev server has no TLS,
// so a TLS-terminating proxy that requires a client certificate stands in front
// of it; the whole stack runs an order through it.
func TestStackRunsOverMutualTLSFromTheEnvironment(t *testing.T) {
	var proxy *testenv.TLSProxy
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		proxy = testenv.StartTLSProxy(t, env["TEMPORAL_ADDRESS"])
		env["TEMPORAL_ADDRESS"] = proxy.Address
		env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = proxy.ServerCAFile
		env["TEMPORAL_TLS_SERVER_NAME"] = testenv.TLSProxyServerName
		env["TEMPORAL_TLS_CLIENT_CERT_PATH"] = proxy.ClientCertFile
		env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = proxy.ClientKeyFile
		env["TEMPORAL_API_KEY"] = apiKeyMarker
	})
	ctx := s.ctx()
	_, err := s.app.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	s.must(err, "check health over TLS")
	ns, err := s.app.Temporal.WorkflowService().DescribeNamespace(ctx,
		&workflowservice.DescribeNamespaceRequest{Namespace: s.app.Config.TemporalNamespace})
	s.must(err, "describe namespace over TLS")
	if got := ns.GetNamespaceInfo().GetName(); got != s.app.Config.TemporalNamespace {
		t.Fatalf("described namespace %q", got)
	}
	id := s.sandbox.Generate(1)[0]
	s.startOrder(ctx, id)
	if res := s.purgeNow(ctx, id); res.PurgeReason == "" {
		t.Fatalf("order %s ended without a purge: %+v", id, res)
	}
	if strings.Contains(s.logs.String(), apiKeyMarker) {
		t.Fatal("the Temporal API key appears in the logs")
	}

	// The same settings with a CA that did not sign the server's certificate,
	// or without the client certificate the cluster requires, fail at start and
	// say why.
	for _, tc := range []struct {
		name   string
		change func(env map[string]string)
		want   []string
	}{
		{"wrong CA", func(env map[string]string) { env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = proxy.OtherCAFile },
			[]string{"TEMPORAL_ADDRESS " + proxy.Address, "TLS: server CA from TEMPORAL_TLS_SERVER_CA_CERT_*", "x509: certificate signed by unknown authority"}},
		{"no client certificate", func(env map[string]string) {
			delete(env, "TEMPORAL_TLS_CLIENT_CERT_PATH")
			delete(env, "TEMPORAL_TLS_CLIENT_KEY_PATH")
			// TLS 1.3 clients learn of the refusal after their handshake: the
			// error may be the alert or a broken connection.
		}, []string{"TEMPORAL_ADDRESS " + proxy.Address, "(TLS: ", "failed reaching server"}},
		{"missing key file", func(env map[string]string) { env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = proxy.ClientKeyFile + ".gone" },
			[]string{"TEMPORAL_TLS_*", "failed loading client cert/key path", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(s.env)
			tc.change(env)
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, err := app.New(ctx, cfg, app.Options{Logger: zap.NewNop()})
			if err == nil {
				a.Close()
				t.Fatal("connected")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), apiKeyMarker) {
				t.Errorf("the error shows the API key: %v", err)
			}
		})
	}
}
