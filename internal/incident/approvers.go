package incident

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// SlackDirectory is what Approvers asks Slack (slackapp.Messenger): a user's
// profile address, and the user with an address.
type SlackDirectory interface {
	UserEmail(ctx context.Context, userID string) (string, error)
	UserByEmail(ctx context.Context, email string) (string, error)
}

// Approvers are DPP_INCIDENT_APPROVERS: Slack user ids, operator ids or
// e-mail addresses. An approver listed by address is recorded as
// approver-<n> (n: the entry's position) and is recognised when they click in
// Slack by their profile's address. Addresses never leave this type: not in
// a reference, an error or a log.
type Approvers struct {
	List []string
	// Slack is nil without Slack: addresses then match only themselves.
	Slack SlackDirectory
	// TTL is how long a Slack answer is kept (0: an hour), so a person's
	// clicks and every reminder do not each cost a lookup, yet a changed
	// profile counts within the hour.
	TTL time.Duration

	mu      sync.Mutex
	emailOf map[string]cached // Slack user id -> address
	userOf  map[string]cached // lower-case address -> Slack user id
}

type cached struct {
	v  string
	at time.Time
}

// Approver is one configured approver as the workflow may know them: the
// reference recorded for them and, when known, their Slack user id.
type Approver struct {
	Ref     string `json:"ref"`
	SlackID string `json:"slackId,omitempty"`
}

// Check is who "by" is: an approver or not, and the id to record.
type Check struct {
	Approver bool   `json:"approver"`
	Ref      string `json:"ref"`
}

func isAddress(s string) bool { return strings.Contains(s, "@") }

// IsSlackUserID tells whether s looks like a Slack user id (U… or W…).
func IsSlackUserID(s string) bool {
	return len(s) > 1 && (s[0] == 'U' || s[0] == 'W') && strings.ToUpper(s) == s && !strings.ContainsAny(s, "@ ")
}

// ref is the recorded id of entry i.
func (a *Approvers) ref(i int) string {
	if isAddress(a.List[i]) {
		return fmt.Sprintf("approver-%d", i+1)
	}
	return a.List[i]
}

// Resolve looks "by" up: an entry itself (id or address), the approver-<n> of
// an entry listed by address, or a Slack user whose profile address is
// listed. Anyone else is not an approver; an unlisted address is recorded
// as "unknown". An error means Slack could not be asked: try again.
func (a *Approvers) Resolve(ctx context.Context, by string) (Check, error) {
	by = strings.TrimSpace(by)
	for i, e := range a.List {
		if strings.EqualFold(e, by) || a.ref(i) == by {
			return Check{Approver: true, Ref: a.ref(i)}, nil
		}
	}
	if by == "" || isAddress(by) {
		return Check{Ref: "unknown"}, nil
	}
	if a.Slack == nil || !IsSlackUserID(by) || !a.anyAddress() {
		return Check{Ref: by}, nil
	}
	email, err := a.lookup(ctx, &a.emailOf, by, a.Slack.UserEmail)
	if err != nil {
		return Check{}, err
	}
	for i, e := range a.List {
		if email != "" && isAddress(e) && strings.EqualFold(e, email) {
			return Check{Approver: true, Ref: a.ref(i)}, nil
		}
	}
	return Check{Ref: by}, nil
}

func (a *Approvers) anyAddress() bool {
	for _, e := range a.List {
		if isAddress(e) {
			return true
		}
	}
	return false
}

// Directory lists every approver with their Slack user id where there is
// one: listed as such, or found by address. An address Slack cannot be asked
// about now is listed without one (its approver can still act by
// approver-<n>); errors are returned beside the list for the caller to log.
func (a *Approvers) Directory(ctx context.Context) ([]Approver, error) {
	out := make([]Approver, 0, len(a.List))
	var firstErr error
	for i, e := range a.List {
		ap := Approver{Ref: a.ref(i)}
		switch {
		case IsSlackUserID(e):
			ap.SlackID = e
		case isAddress(e) && a.Slack != nil:
			id, err := a.lookup(ctx, &a.userOf, strings.ToLower(e), a.Slack.UserByEmail)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("approver %s: %w", ap.Ref, err)
			}
			ap.SlackID = id
		}
		out = append(out, ap)
	}
	return out, firstErr
}

// lookup answers from the cache or asks Slack and keeps the answer (an empty
// one too: no such user).
func (a *Approvers) lookup(ctx context.Context, m *map[string]cached, key string, ask func(context.Context, string) (string, error)) (string, error) {
	ttl := a.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	a.mu.Lock()
	c, ok := (*m)[key]
	a.mu.Unlock()
	if ok && time.Since(c.at) < ttl {
		return c.v, nil
	}
	v, err := ask(ctx, key)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	if *m == nil {
		*m = map[string]cached{}
	}
	(*m)[key] = cached{v: v, at: time.Now()}
	a.mu.Unlock()
	return v, nil
}
