package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// MailpitOptions say how to run Mailpit.
type MailpitOptions struct {
	// Dir holds its database (mailpit.db) and its output (mailpit.log); a restart keeps the
	// messages.
	Dir string
	// Binary is mailpit (default: bin/mailpit of this repository).
	Binary string
}

// Mailpit is Mailpit (an SMTP server that keeps every message, and an HTTP API to read them) on
// fixed loopback ports: Start, Kill or Stop, and Start again serves the same messages at the same
// addresses.
type Mailpit struct {
	// SMTPAddr is the SMTP listener, host:port (no TLS, no auth).
	SMTPAddr string
	// HTTPAddr is the web UI and API listener, host:port.
	HTTPAddr string

	opts MailpitOptions
	restartable
}

// NewMailpit picks the ports; nothing runs until Start.
func NewMailpit(opts MailpitOptions) (*Mailpit, error) {
	if opts.Dir == "" {
		return nil, errors.New("mailpit: no directory for its database")
	}
	var err error
	if opts.Binary, err = binaryOr(opts.Binary, "mailpit"); err != nil {
		return nil, err
	}
	var ports [2]int
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	return &Mailpit{SMTPAddr: loopback(ports[0]), HTTPAddr: loopback(ports[1]), opts: opts,
		restartable: restartable{name: "mailpit", stopSignal: os.Interrupt, stopGrace: 10 * time.Second}}, nil
}

// Start starts Mailpit (again, after Kill or Stop) and returns once its API answers and its SMTP
// port accepts connections.
func (m *Mailpit) Start(ctx context.Context) error {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	if err := os.MkdirAll(m.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("mailpit: %w", err)
	}
	args := []string{"-s", m.SMTPAddr, "-l", m.HTTPAddr, "-d", filepath.Join(m.opts.Dir, "mailpit.db"),
		"--disable-version-check", "--smtp-disable-rdns", "-q"}
	if err := m.launch(ctx, filepath.Join(m.opts.Dir, "mailpit.log"), nil, m.opts.Binary, args,
		30*time.Second, 50*time.Millisecond, m.Check); err != nil {
		return fmt.Errorf("mailpit at %s: %w", m.HTTPAddr, err)
	}
	return nil
}

// Check asks Mailpit whether it is ready: /readyz and the API answer, and SMTP accepts a
// connection.
func (m *Mailpit) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, path := range []string{"/readyz", "/api/v1/info"} {
		if err := httpOK(ctx, "http://"+m.HTTPAddr+path); err != nil {
			return err
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", m.SMTPAddr)
	if err != nil {
		return err
	}
	return c.Close()
}

// httpOK GETs url and wants 200.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
