package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/devstack"
)

// Mailpit is a running Mailpit: an SMTP server that keeps every message and an HTTP API to read
// them back.
type Mailpit struct {
	// SMTPAddr is the SMTP listener, host:port (no TLS, no auth).
	SMTPAddr string
	// HTTPAddr is the web UI and API listener, host:port.
	HTTPAddr string

	stopOnce sync.Once
	stop     func()
}

// SMTPURL returns the SMTP server as an smtp:// URL (the SMTP_URL form).
func (m *Mailpit) SMTPURL() string { return "smtp://" + m.SMTPAddr }

// BaseURL returns the web UI and API root, e.g. http://127.0.0.1:54321.
func (m *Mailpit) BaseURL() string { return "http://" + m.HTTPAddr }

// Address is a mailbox of a message summary.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Message is the summary of one stored message, as GET /api/v1/messages returns it.
type Message struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Cc        []Address `json:"Cc"`
	Bcc       []Address `json:"Bcc"`
	Subject   string    `json:"Subject"`
	Created   time.Time `json:"Created"`
	Snippet   string    `json:"Snippet"`
}

// SentTo reports whether addr (case-insensitive) is among the message's To, Cc or Bcc recipients.
func (m Message) SentTo(addr string) bool {
	for _, list := range [][]Address{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			if strings.EqualFold(a.Address, addr) {
				return true
			}
		}
	}
	return false
}

// StartMailpit starts bin/mailpit (through devstack, as `make run` and the benchmark would) on free
// loopback ports with its database in a temporary directory and returns once its API answers and
// its SMTP port accepts connections.
func StartMailpit(ctx context.Context) (*Mailpit, error) {
	dir, err := os.MkdirTemp("", "dpp-mailpit-")
	if err != nil {
		return nil, fmt.Errorf("testenv: mailpit: %w", err)
	}
	srv, err := devstack.NewMailpit(devstack.MailpitOptions{Dir: dir})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return &Mailpit{SMTPAddr: srv.SMTPAddr, HTTPAddr: srv.HTTPAddr, stop: guarded(srv, dir)}, nil
}

// Stop stops Mailpit and removes its database. Safe to call more than once and on nil.
func (m *Mailpit) Stop() {
	if m == nil || m.stop == nil {
		return
	}
	m.stopOnce.Do(m.stop)
}

// Messages returns the summaries of all stored messages, newest first.
func (m *Mailpit) Messages(ctx context.Context) ([]Message, error) {
	const page = 200
	var all []Message
	for start := 0; ; start += page {
		var resp struct {
			MessagesCount int       `json:"messages_count"`
			Messages      []Message `json:"messages"`
		}
		q := url.Values{"start": {strconv.Itoa(start)}, "limit": {strconv.Itoa(page)}}
		if err := m.get(ctx, "/api/v1/messages?"+q.Encode(), &resp); err != nil {
			return nil, fmt.Errorf("testenv: mailpit messages: %w", err)
		}
		all = append(all, resp.Messages...)
		if len(resp.Messages) < page || len(all) >= resp.MessagesCount {
			return all, nil
		}
	}
}

// DeleteAll deletes every stored message. Tests that share one Mailpit should rather tell their
// messages apart (unique recipient or subject) than delete each other's.
func (m *Mailpit) DeleteAll(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, m.BaseURL()+"/api/v1/messages", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("testenv: mailpit delete: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("testenv: mailpit delete: %s", resp.Status)
	}
	return nil
}

func (m *Mailpit) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.BaseURL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if into == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

var sharedMailpit = shared[*Mailpit]{name: "Mailpit", timeout: time.Minute, start: StartMailpit}

// MailpitForTest returns the test binary's shared Mailpit, starting it on first use. It fails the
// test if Mailpit cannot start. Call StopMailpit (or StopAll) from TestMain after m.Run.
func MailpitForTest(t testing.TB) *Mailpit { t.Helper(); return sharedMailpit.get(t) }

// StopMailpit stops the shared Mailpit of MailpitForTest, if one was started.
func StopMailpit() { sharedMailpit.stop() }
