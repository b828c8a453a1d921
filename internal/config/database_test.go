package config

import (
	"strings"
	"testing"
)

func TestMigrationsDatabaseURLDefaultsToDatabaseURL(t *testing.T) {
	kv := minimal()
	kv["DATABASE_URL"] = "postgres://dpp_worker@db.internal:5432/dpp"
	c, err := Load(env(kv))
	if err != nil {
		t.Fatal(err)
	}
	if c.MigrationsDatabaseURL != c.DatabaseURL {
		t.Errorf("MigrationsDatabaseURL = %q, want DATABASE_URL %q", c.MigrationsDatabaseURL, c.DatabaseURL)
	}

	kv["DPP_MIGRATIONS_DATABASE_URL"] = "postgres://dpp_owner@db.internal:5432/dpp"
	if c, err = Load(env(kv)); err != nil {
		t.Fatal(err)
	}
	if c.MigrationsDatabaseURL != kv["DPP_MIGRATIONS_DATABASE_URL"] || c.DatabaseURL != kv["DATABASE_URL"] {
		t.Errorf("got DATABASE_URL %q, DPP_MIGRATIONS_DATABASE_URL %q", c.DatabaseURL, c.MigrationsDatabaseURL)
	}
}

func TestMigrationsURLReadsOnlyTheDatabaseURLs(t *testing.T) {
	read := map[string]bool{}
	getenv := func(kv map[string]string) func(string) string {
		return func(k string) string { read[k] = true; return kv[k] }
	}
	dsn, name := MigrationsURL(getenv(map[string]string{"DATABASE_URL": "postgres://dpp_worker@db/dpp",
		"DPP_MIGRATIONS_DATABASE_URL": "postgres://owner@db/dpp"}))
	if dsn != "postgres://owner@db/dpp" || name != "DPP_MIGRATIONS_DATABASE_URL" {
		t.Errorf("got %q from %s", dsn, name)
	}
	dsn, name = MigrationsURL(getenv(map[string]string{"DATABASE_URL": "postgres://owner@db/dpp"}))
	if dsn != "postgres://owner@db/dpp" || name != "DATABASE_URL" {
		t.Errorf("got %q from %s", dsn, name)
	}
	for k := range read {
		if k != "DATABASE_URL" && k != "DPP_MIGRATIONS_DATABASE_URL" {
			t.Errorf("MigrationsURL reads %s", k)
		}
	}
}

// TestAuditorNeedsOnlyTheDatabaseURLAndTheKeys: none of the worker's required
// settings (KMS key, seller details) is required, or even read.
func TestAuditorNeedsOnlyTheDatabaseURLAndTheKeys(t *testing.T) {
	read := map[string]bool{}
	kv := map[string]string{"DATABASE_URL": "postgres://dpp_auditor@db/dpp", "DPP_EVIDENCE_KEYS": "/etc/dpp/keys.json"}
	getenv := func(k string) string { read[k] = true; return kv[k] }
	a, err := LoadAuditor(getenv, true)
	if err != nil || a.DatabaseURL != kv["DATABASE_URL"] || a.EvidenceKeysFile != kv["DPP_EVIDENCE_KEYS"] {
		t.Fatalf("got %+v, %v", a, err)
	}
	for k := range read {
		if k != "DATABASE_URL" && k != "DPP_EVIDENCE_KEYS" {
			t.Errorf("LoadAuditor reads %s", k)
		}
	}
	delete(kv, "DPP_EVIDENCE_KEYS")
	if _, err := LoadAuditor(getenv, true); err == nil || !strings.Contains(err.Error(), "DPP_EVIDENCE_KEYS is required") {
		t.Fatalf("without the keys: %v", err)
	}
	if a, err := LoadAuditor(getenv, false); err != nil || a.EvidenceKeysFile != "" {
		t.Fatalf("keys not needed: %+v, %v", a, err)
	}
}
