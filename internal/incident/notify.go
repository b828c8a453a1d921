package incident

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/mail"
)

// Mailer sends one e-mail and returns its Message-ID (internal/mail.Sender).
type Mailer interface {
	Send(ctx context.Context, m mail.Message) (string, error)
}

// Sent is what was e-mailed to Amazon, and when.
type Sent struct {
	At        time.Time `json:"at"`
	MessageID string    `json:"messageId"`
	// Already is true when an earlier call had sent it.
	Already bool `json:"already"`
}

// Notice is what goes into the Amazon notification besides the incident.
type Notice struct {
	Seller  string
	Contact string
	// Preliminary marks the notification sent by itself before the deadline.
	Preliminary bool
}

// Subject is the notification's subject: it names the incident id (never its title).
func Subject(id string, preliminary bool) string {
	if preliminary {
		return "Preliminary security incident notification " + id
	}
	return "Security incident notification " + id
}

// Draft renders the Amazon notification from the template: what happened,
// when it was detected, the data affected, the actions taken, the contact.
func Draft(inc Incident, actions []string, n Notice) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Security incident notification %s", inc.ID)
	if n.Seller != "" {
		fmt.Fprintf(&b, " from %s", n.Seller)
	}
	b.WriteString("\n\n")
	if n.Preliminary {
		b.WriteString("This is a preliminary notification, sent within the 24-hour notification window before the " +
			"investigation is complete. A full report will follow.\n\n")
	}
	fmt.Fprintf(&b, "What happened: %s\n", inc.Title)
	if inc.Summary != "" {
		fmt.Fprintf(&b, "%s\n", inc.Summary)
	}
	fmt.Fprintf(&b, "\nWhen detected: %s\n", inc.DetectedAt.UTC().Format(time.RFC1123))
	fmt.Fprintf(&b, "Severity: %s\n", inc.Severity)
	if inc.PersonalData {
		b.WriteString("Data affected: personal data (Amazon customer information) may be involved.\n")
	} else {
		b.WriteString("Data affected: no personal data is known to be involved.\n")
	}
	b.WriteString("Actions taken:\n")
	if len(actions) == 0 {
		b.WriteString("- triage under way\n")
	}
	for _, a := range actions {
		fmt.Fprintf(&b, "- %s\n", a)
	}
	if n.Contact != "" {
		fmt.Fprintf(&b, "\nContact: %s\n", n.Contact)
	}
	return b.String()
}

// Actions lists the runbook stages reached, for the notification.
func (s *Service) Actions(ctx context.Context, id string) ([]string, error) {
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range tl {
		if stage, ok := e.Detail["stage"].(string); ok && (e.Kind == "stage-advanced" || e.Kind == "declared") {
			out = append(out, fmt.Sprintf("%s (since %s)", stage, e.At.UTC().Format("2006-01-02 15:04 MST")))
		}
	}
	return out, nil
}

// MessageID is the Message-ID of an incident's notification: the same for
// every attempt, so a resend after a lost answer is recognisably the same mail.
func MessageID(id, target string) string { return "incident-" + id + "." + target + "@dpp" }

// SendAmazon e-mails the Amazon notification to `to` (text, or the drafted
// template when text is empty) and records the Message-ID and time on the
// incident, the timeline and the evidence. Once sent, it is never sent again:
// a later call returns the first sending with Already set.
func (s *Service) SendAmazon(ctx context.Context, m Mailer, id, to, text, by, key string, n Notice) (Sent, error) {
	var sentAt *time.Time
	var msgID string
	if err := s.Pool.QueryRow(ctx, `SELECT amazon_sent_at, COALESCE(amazon_message_id, '') FROM incidents WHERE incident_id = $1`,
		id).Scan(&sentAt, &msgID); err != nil {
		if err == pgx.ErrNoRows {
			return Sent{}, fmt.Errorf("incident %s: %w", id, ErrNotFound)
		}
		return Sent{}, fmt.Errorf("incident %s: %w", id, err)
	}
	if sentAt != nil {
		return Sent{At: *sentAt, MessageID: msgID, Already: true}, nil
	}
	if text == "" {
		inc, err := s.Get(ctx, id)
		if err != nil {
			return Sent{}, err
		}
		actions, err := s.Actions(ctx, id)
		if err != nil {
			return Sent{}, err
		}
		text = Draft(inc, actions, n)
	}
	msgID, err := m.Send(ctx, mail.Message{To: to, Subject: Subject(id, n.Preliminary), Body: text, MessageID: MessageID(id, TargetAmazon)})
	if err != nil {
		return Sent{}, fmt.Errorf("incident %s: notify Amazon: %w", id, err)
	}
	at := s.now().UTC().Truncate(time.Microsecond)
	k, err := s.key(ctx, id)
	if err != nil {
		return Sent{}, err
	}
	defer k.Destroy()
	sealed, err := k.Seal("notification/amazon", []byte(text))
	if err != nil {
		return Sent{}, err
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET amazon_sent_at = $2, amazon_message_id = $3, amazon_text_sealed = $4
			WHERE incident_id = $1 AND amazon_sent_at IS NULL`, id, at, msgID, sealed); err != nil {
			return err
		}
		_, err := s.apply(ctx, tx, Event{IncidentID: id, Key: key, Kind: "notification-sent", Actor: by, At: at,
			Detail: map[string]any{"target": TargetAmazon, "to": to, "messageId": msgID, "preliminary": n.Preliminary}}, nil)
		return err
	})
	if err != nil {
		return Sent{}, fmt.Errorf("incident %s: record the notification: %w", id, err)
	}
	return Sent{At: at, MessageID: msgID}, nil
}
