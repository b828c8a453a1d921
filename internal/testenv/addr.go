package testenv

import "testing"

// FreeAddr returns 127.0.0.1:<port> for a port nobody listens on, for a
// listener a test starts (a worker's DPP_HTTP_ADDR).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
