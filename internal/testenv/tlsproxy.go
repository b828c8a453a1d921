package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TLSProxyServerName is the name on the certificate of a TLSProxy: clients
// connect to 127.0.0.1 and check this name (TEMPORAL_TLS_SERVER_NAME).
const TLSProxyServerName = "temporal.dpp.test"

// TLSProxy is a TLS-terminating TCP proxy in front of a plaintext server (the
// Temporal dev server, which has no TLS of its own): it speaks TLS 1.2+ with
// ALPN h2 (gRPC needs it) and, like an mTLS cluster, requires a client
// certificate signed by its client CA. Every certificate is made fresh in Go.
type TLSProxy struct {
	// Address is the proxy's host:port (127.0.0.1).
	Address string
	// ServerCAFile, ClientCertFile and ClientKeyFile are PEM files for a client
	// (TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_CLIENT_CERT_PATH, _KEY_PATH).
	ServerCAFile, ClientCertFile, ClientKeyFile string
	// OtherCAFile is a CA that signed nothing the proxy uses: a client that
	// trusts only it must refuse the proxy.
	OtherCAFile string
}

// StartTLSProxy starts a TLSProxy forwarding to target; it stops when the test ends.
func StartTLSProxy(t testing.TB, target string) *TLSProxy {
	t.Helper()
	dir := t.TempDir()
	p := &TLSProxy{
		ServerCAFile: filepath.Join(dir, "server-ca.pem"), ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile: filepath.Join(dir, "client-key.pem"), OtherCAFile: filepath.Join(dir, "other-ca.pem"),
	}
	serverCA, serverCAKey := newCA(t, "dpp test server CA")
	clientCA, clientCAKey := newCA(t, "dpp test client CA")
	other, _ := newCA(t, "dpp test unrelated CA")
	serverCert := newLeaf(t, serverCA, serverCAKey, TLSProxyServerName, x509.ExtKeyUsageServerAuth, "", "")
	newLeaf(t, clientCA, clientCAKey, "dpp-worker", x509.ExtKeyUsageClientAuth, p.ClientCertFile, p.ClientKeyFile)
	writePEM(t, p.ServerCAFile, "CERTIFICATE", serverCA.Raw)
	writePEM(t, p.OtherCAFile, "CERTIFICATE", other.Raw)

	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert}, NextProtos: []string{"h2"},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatalf("testenv: TLS proxy: %v", err)
	}
	p.Address = ln.Addr().String()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer in.Close()
				// Finish the handshake first: a client that refuses our
				// certificate never reaches the server.
				if err := in.(*tls.Conn).Handshake(); err != nil {
					return
				}
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				track(in, true)
				track(out, true)
				defer track(in, false)
				defer track(out, false)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newLeaf makes a certificate for name signed by ca; with file names it writes
// the certificate and key there too.
func newLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage, certFile, keyFile string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if certFile != "" {
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(errors.Join(errors.New("testenv: write "+file), err))
	}
}
