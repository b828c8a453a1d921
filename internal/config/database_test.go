package config

import "testing"

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
