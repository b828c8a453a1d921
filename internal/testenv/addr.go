package testenv

import (
	"net"
	"testing"
)

// FreeAddr returns 127.0.0.1:<port> for a port nobody listens on right now,
// for a listener a test starts (a worker's DPP_HTTP_ADDR, a late proxy).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		err = l.Close()
	}
	if err != nil {
		t.Fatalf("testenv: a free loopback port: %v", err)
	}
	return l.Addr().String()
}
