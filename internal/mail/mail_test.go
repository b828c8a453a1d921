package mail_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plusranger/dpp/internal/mail"
	"github.com/plusranger/dpp/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// TestSendToMailpit: a message reaches a real SMTP server (Mailpit) with the
// Message-ID we chose, and can be read back.
func TestSendToMailpit(t *testing.T) {
	mp := testenv.MailpitForTest(t)
	s, err := mail.New(mp.SMTPURL(), "dpp@plusranger.example")
	if err != nil {
		t.Fatal(err)
	}
	if s.RequiresTLS() {
		t.Fatal("a loopback SMTP server must not need TLS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	to := "security-" + strings.ToLower(t.Name()) + "@amazon.example"
	id, err := s.Send(ctx, mail.Message{To: to, Subject: "Security incident inc-42", Body: "What happened: test.\n", MessageID: "incident-inc-42.amazon@dpp"})
	if err != nil {
		t.Fatal(err)
	}
	if id != "<incident-inc-42.amazon@dpp>" {
		t.Fatalf("Message-ID %q", id)
	}
	msgs, err := mp.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.SentTo(to) {
			if m.Subject != "Security incident inc-42" || m.MessageID != "incident-inc-42.amazon@dpp" {
				t.Fatalf("arrived as %+v", m)
			}
			body, err := mp.MessageText(ctx, m.ID)
			if err != nil || !strings.Contains(body, "What happened: test.") {
				t.Fatalf("body %q %v", body, err)
			}
			return
		}
	}
	t.Fatalf("no message to %s in Mailpit", to)
}

// TestTLSRequiredBeyondLoopback: to a host that is not loopback, a server that
// offers no STARTTLS gets no message (go-mail's mandatory TLS policy), and the
// error names no address.
func TestTLSRequiredBeyondLoopback(t *testing.T) {
	ip := nonLoopbackIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	gotMail := make(chan string, 1)
	go plainSMTP(ln, gotMail)
	s, err := mail.New("smtp://"+ln.Addr().String(), "dpp@plusranger.example")
	if err != nil {
		t.Fatal(err)
	}
	if !s.RequiresTLS() {
		t.Fatal("a remote SMTP server must need TLS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = s.Send(ctx, mail.Message{To: "someone@amazon.example", Subject: "x", Body: "secret body"})
	if err == nil {
		t.Fatal("sent without TLS to a remote server")
	}
	if strings.Contains(err.Error(), "someone@") || strings.Contains(err.Error(), "secret body") {
		t.Fatalf("error echoes the message: %v", err)
	}
	select {
	case cmd := <-gotMail:
		t.Fatalf("the server saw %q before TLS", cmd)
	default:
	}
	for _, bad := range []string{"http://mail", "smtp://", "smtp://host:99999"} {
		if _, err := mail.New(bad, "dpp@x.example"); err == nil {
			t.Errorf("SMTP_URL %q accepted", bad)
		}
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address to test the TLS rule on")
	return ""
}

// plainSMTP answers like a server without STARTTLS and reports any MAIL command.
func plainSMTP(ln net.Listener, gotMail chan<- string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			w := bufio.NewWriter(c)
			r := bufio.NewReader(c)
			say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
			say("220 plain.example ESMTP")
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				cmd := strings.ToUpper(strings.TrimSpace(line))
				switch {
				case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
					say("250-plain.example")
					say("250 8BITMIME")
				case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), strings.HasPrefix(cmd, "DATA"):
					gotMail <- cmd
					say("250 ok")
				case strings.HasPrefix(cmd, "QUIT"):
					say("221 bye")
					return
				default:
					say("250 ok")
				}
			}
		}(c)
	}
}
