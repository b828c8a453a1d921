package testenv

import (
	"net/url"
	"strings"
	"testing"
)

// AsRole returns dsn (as Database returns it) connecting as role instead, with no
// password: the roles the migrations create (store.WorkerRole, store.AuditorRole)
// log in from loopback when the server trusts it, as the local test server does.
func AsRole(t testing.TB, dsn, role string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("testenv: parse DSN: %v", err)
		}
		u.User = url.User(role)
		return u.String()
	}
	// keyword/value form: a later keyword wins, and a password must not carry over.
	return dsn + " user=" + role + " password=''"
}
