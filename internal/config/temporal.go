package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"go.temporal.io/sdk/contrib/envconfig"
)

// Defaults of the Temporal connection when neither the environment nor a
// profile of the SDK's configuration file names one.
const (
	DefaultTemporalAddress   = "127.0.0.1:7233"
	DefaultTemporalNamespace = "default"
)

// TemporalEnv holds the Temporal SDK's environment configuration variables
// (go.temporal.io/sdk/contrib/envconfig) that are set, by name: TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE,
// TEMPORAL_CONFIG_FILE, ... Only variables declared in Settings get here, and
// they reach the SDK's loader unchanged, so they mean exactly what the SDK
// (and the temporal CLI) document. Printing it hides the secret ones.
type TemporalEnv map[string]string

// String lists the variables that are set, with secret values hidden.
func (e TemporalEnv) String() string {
	names := make([]string, 0, len(e))
	for k := range e {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := e[k]
		if s, ok := byNameSetting(k); !ok || s.Secret {
			v = "<hidden>"
		}
		fmt.Fprintf(&b, "%s=%s", k, v)
	}
	return b.String()
}

// GoString hides secrets from %#v too.
func (e TemporalEnv) GoString() string { return "config.TemporalEnv{" + e.String() + "}" }

// Environ and LookupEnv make TemporalEnv the SDK loader's environment
// (envconfig.EnvLookup): it sees only the declared variables that are set.
func (e TemporalEnv) Environ() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// LookupEnv reports a variable as set only when it is not empty.
func (e TemporalEnv) LookupEnv(name string) (string, bool) {
	v, ok := e[name]
	return v, ok && v != ""
}

var _ envconfig.EnvLookup = TemporalEnv(nil)

func byNameSetting(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// temporalVar loads a Temporal SDK variable into Config.TemporalEnv as it is
// set, without the default: the SDK layers the variable over the profile of
// its configuration file, and a default must not hide the profile's value.
func temporalVar(l *loader, c *Config, name string) {
	if _, ok := l.settings[name]; !ok {
		panic("config: setting " + name + " is not declared in Settings")
	}
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		if c.TemporalEnv == nil {
			c.TemporalEnv = TemporalEnv{}
		}
		c.TemporalEnv[name] = v
	}
}

// TemporalProfile is the Temporal client configuration as the SDK's envconfig
// loads it: the profile (TEMPORAL_PROFILE, default "default") of the TOML file
// (TEMPORAL_CONFIG_FILE, default <user config dir>/temporalio/temporal.toml; a
// missing file is no error), with the environment variables of TemporalEnv on
// top. Address and namespace fall back to 127.0.0.1:7233 and "default".
func (c *Config) TemporalProfile() (envconfig.ClientConfigProfile, error) {
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{EnvLookup: c.TemporalEnv})
	if err != nil {
		return prof, err
	}
	if prof.Address == "" {
		prof.Address = DefaultTemporalAddress
	}
	if prof.Namespace == "" {
		prof.Namespace = DefaultTemporalNamespace
	}
	return prof, nil
}

// loadTemporal resolves the Temporal address and namespace (environment, else
// profile, else default) and reports a configuration file or profile that
// cannot be used.
func (l *loader) loadTemporal(c *Config) {
	prof, err := c.TemporalProfile()
	if err != nil {
		name := "TEMPORAL_CONFIG_FILE"
		if strings.Contains(err.Error(), "profile") {
			name = "TEMPORAL_PROFILE"
		}
		l.fail(name, fmt.Sprintf("(Temporal client configuration) %v", err))
		prof.Address, prof.Namespace = DefaultTemporalAddress, DefaultTemporalNamespace
	}
	c.TemporalAddress, c.TemporalNamespace = prof.Address, prof.Namespace
	if v := c.TemporalEnv["TEMPORAL_TLS"]; v != "" {
		if lv := strings.ToLower(v); lv != "true" && lv != "false" && lv != "1" && lv != "0" {
			l.fail("TEMPORAL_TLS", fmt.Sprintf("must be true or false, got %q", v))
		}
	}
	if v := c.TemporalEnv["TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"]; v != "" {
		if lv := strings.ToLower(v); lv != "true" && lv != "false" && lv != "1" && lv != "0" {
			l.fail("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", fmt.Sprintf("must be true or false, got %q", v))
		}
	}
	// The SDK takes a missing file for an empty one; a file named explicitly
	// must exist, or a typo would connect to the default server.
	if f := c.TemporalEnv["TEMPORAL_CONFIG_FILE"]; f != "" {
		if _, err := os.Stat(f); err != nil {
			l.fail("TEMPORAL_CONFIG_FILE", fmt.Sprintf("names a file that cannot be read: %v", err))
		}
	}
}
