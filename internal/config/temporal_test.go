package config

import (
	"fmt"
	"strings"
	"testing"
)

// The SDK's environment configuration: defaults, then the profile of the
// configuration file, then the variables; TEMPORAL_ADDRESS and
// TEMPORAL_NAMESPACE keep meaning what they always did.
func TestTemporalConnectionLayers(t *testing.T) {
	for _, tc := range []struct {
		name          string
		env           map[string]string
		addr, ns, key string
	}{
		{"defaults", nil, DefaultTemporalAddress, DefaultTemporalNamespace, ""},
		{"variables", map[string]string{"TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_NAMESPACE": "dpp"}, "temporal.internal:7233", "dpp", ""},
		{"default profile", map[string]string{"TEMPORAL_CONFIG_FILE": "testdata/temporal.toml"}, "profile-default.example:7233", "profile-default-ns", ""},
		{"named profile", map[string]string{"TEMPORAL_CONFIG_FILE": "testdata/temporal.toml", "TEMPORAL_PROFILE": "cloud"},
			"dpp-prod.a1b2c.tmprl.cloud:7233", "dpp-prod.a1b2c", "profile-api-key-PROFILESECRET"},
		{"variables over the profile", map[string]string{"TEMPORAL_CONFIG_FILE": "testdata/temporal.toml", "TEMPORAL_PROFILE": "cloud",
			"TEMPORAL_NAMESPACE": "dpp-test.a1b2c", "TEMPORAL_API_KEY": "env-key"}, "dpp-prod.a1b2c.tmprl.cloud:7233", "dpp-test.a1b2c", "env-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := minimal()
			// Never the developer's own ~/.config/temporalio/temporal.toml.
			kv["TEMPORAL_CONFIG_FILE"] = "testdata/empty.toml"
			for k, v := range tc.env {
				kv[k] = v
			}
			c, err := Load(env(kv))
			if err != nil {
				t.Fatal(err)
			}
			if c.TemporalAddress != tc.addr || c.TemporalNamespace != tc.ns {
				t.Fatalf("address %q namespace %q, want %q %q", c.TemporalAddress, c.TemporalNamespace, tc.addr, tc.ns)
			}
			prof, err := c.TemporalProfile()
			if err != nil {
				t.Fatal(err)
			}
			if prof.APIKey != tc.key || prof.Address != tc.addr || prof.Namespace != tc.ns {
				t.Fatalf("profile %+v", prof)
			}
		})
	}
}

func TestTemporalConfigurationProblemsAreNamed(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"missing file":    {map[string]string{"TEMPORAL_CONFIG_FILE": "testdata/no-such.toml"}, "TEMPORAL_CONFIG_FILE names a file that cannot be read"},
		"unknown profile": {map[string]string{"TEMPORAL_CONFIG_FILE": "testdata/temporal.toml", "TEMPORAL_PROFILE": "staging"}, "TEMPORAL_PROFILE (Temporal client configuration) unable to find profile staging"},
		"bad TLS switch":  {map[string]string{"TEMPORAL_TLS": "yes"}, `TEMPORAL_TLS must be true or false, got "yes"`},
	} {
		kv := minimal()
		for k, v := range tc.env {
			kv[k] = v
		}
		_, err := Load(env(kv))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", name, tc.want, err)
		}
	}
}

// Secrets of the Temporal connection never show when a Config is printed.
func TestTemporalSecretsAreNeverPrinted(t *testing.T) {
	kv := minimal()
	kv["TEMPORAL_API_KEY"] = "SECRETAPIKEY123"
	kv["TEMPORAL_TLS_CLIENT_KEY_DATA"] = "SECRETKEYDATA456"
	kv["TEMPORAL_TLS_SERVER_NAME"] = "temporal.internal"
	c, err := Load(env(kv))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c.TemporalEnv)} {
		if strings.Contains(out, "SECRETAPIKEY123") || strings.Contains(out, "SECRETKEYDATA456") {
			t.Fatalf("a secret is printed: %s", out)
		}
		if !strings.Contains(out, "TEMPORAL_TLS_SERVER_NAME=temporal.internal") {
			t.Fatalf("the settings that are not secret should show: %s", out)
		}
	}
}

// DPP_SPAPI_SANDBOX_SPEEDUP raises Amazon's rates only where there is no Amazon.
func TestSandboxSpeedupOnlyInTheSandbox(t *testing.T) {
	kv := minimal()
	kv["DPP_SPAPI_SANDBOX_SPEEDUP"] = "100"
	if c, err := Load(env(kv)); err != nil || c.SPAPISandboxSpeedup != 100 {
		t.Fatalf("sandbox: %v %v", c, err)
	}
	kv["LWA_CLIENT_ID"], kv["LWA_CLIENT_SECRET"], kv["LWA_REFRESH_TOKEN"] = "amzn1.application-oa2-client.x", "s", "r"
	if _, err := Load(env(kv)); err == nil || !strings.Contains(err.Error(), "DPP_SPAPI_SANDBOX_SPEEDUP applies only to the SP-API sandbox") {
		t.Fatalf("with LWA credentials: %v", err)
	}
	for _, v := range []string{"0.5", "fast", "NaN"} {
		kv := minimal()
		kv["DPP_SPAPI_SANDBOX_SPEEDUP"] = v
		if _, err := Load(env(kv)); err == nil || !strings.Contains(err.Error(), "DPP_SPAPI_SANDBOX_SPEEDUP must be a number from 1") {
			t.Errorf("%s: %v", v, err)
		}
	}
	kv = minimal()
	kv["DPP_SPAPI_TASK_QUEUE"] = "dpp"
	if _, err := Load(env(kv)); err == nil || !strings.Contains(err.Error(), "DPP_SPAPI_TASK_QUEUE must differ") {
		t.Fatalf("same queue: %v", err)
	}
}

// Against Amazon a sync pass may not begin more often than searchOrders refills.
func TestSyncIntervalKeepsSearchOrdersRate(t *testing.T) {
	kv := minimal()
	kv["DPP_SYNC_INTERVAL"] = "30s"
	if _, err := Load(env(kv)); err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	kv["LWA_CLIENT_ID"], kv["LWA_CLIENT_SECRET"], kv["LWA_REFRESH_TOKEN"] = "amzn1.application-oa2-client.x", "s", "r"
	if _, err := Load(env(kv)); err == nil || !strings.Contains(err.Error(), "DPP_SYNC_INTERVAL must be at least 3m0s against Amazon") {
		t.Fatalf("with LWA credentials: %v", err)
	}
	kv["DPP_SYNC_INTERVAL"] = "3m"
	if _, err := Load(env(kv)); err != nil {
		t.Fatal(err)
	}
}
