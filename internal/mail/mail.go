// Package mail sends the system's e-mail (incident notifications to Amazon)
// over SMTP with go-mail, as SMTP_URL says: TLS is required except to a
// loopback host (Mailpit in dev and tests). Errors name the SMTP stage, never
// the message's text or recipients.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Sender sends messages through one SMTP server.
type Sender struct {
	host     string
	port     int
	ssl      bool // smtps:// (implicit TLS)
	loopback bool
	user     string
	password string
	from     string
}

// Message is one plain-text e-mail. MessageID (without angle brackets) should
// be derived from what is being sent, so a retry after a lost answer carries
// the same id and the recipient can tell it is the same message.
type Message struct {
	To        string
	Subject   string
	Body      string
	MessageID string
}

// New parses smtpURL (smtp://[user:password@]host[:port] with STARTTLS,
// smtps://... with implicit TLS) and checks from.
func New(smtpURL, from string) (*Sender, error) {
	u, err := url.Parse(smtpURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("SMTP_URL must be smtp://[user:password@]host[:port] or smtps://[user:password@]host[:port]")
	}
	s := &Sender{host: u.Hostname(), ssl: u.Scheme == "smtps", from: from}
	s.port = 587
	if s.ssl {
		s.port = 465
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port <= 0 || s.port > 65535 {
			return nil, errors.New("SMTP_URL has an invalid port")
		}
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	ip := net.ParseIP(s.host)
	s.loopback = s.host == "localhost" || ip != nil && ip.IsLoopback()
	if !strings.Contains(from, "@") || strings.ContainsAny(from, " <>") {
		return nil, errors.New("the sender address must be a plain e-mail address")
	}
	return s, nil
}

// RequiresTLS reports whether the connection must be encrypted (every host but
// a loopback one).
func (s *Sender) RequiresTLS() bool { return !s.loopback }

// Send delivers m to the SMTP server and returns the Message-ID it carried
// (in angle brackets, as in the header).
func (s *Sender) Send(ctx context.Context, m Message) (string, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return "", errors.New("mail: invalid sender address")
	}
	if err := msg.To(m.To); err != nil {
		return "", errors.New("mail: invalid recipient address")
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	msg.SetDate()
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(30 * time.Second)}
	switch {
	case s.ssl:
		opts = append(opts, gomail.WithSSL())
	case s.loopback:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.user), gomail.WithPassword(s.password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return "", fmt.Errorf("mail: SMTP client for %s: %w", s.host, err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return "", fmt.Errorf("mail: SMTP %s:%d: %s", s.host, s.port, stage(err))
	}
	return msg.GetMessageID(), nil
}

// stage names what failed without the server's text, which can quote addresses.
func stage(err error) string {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return "send failed (" + se.Reason.String() + ")"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "connection failed"
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	if strings.Contains(strings.ToLower(err.Error()), "tls") {
		return "TLS required but not available"
	}
	return "dial failed"
}
