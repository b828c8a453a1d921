package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/internal/actor"
)

// Login outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// LoginEvent is one login attempt from a system's log.
type LoginEvent struct {
	System  string    `json:"system"`
	Account string    `json:"account"`
	Outcome string    `json:"outcome"`
	At      time.Time `json:"at"`
}

// maxLoginEvents bounds one request.
const maxLoginEvents = 10000

// Lock is an account past the threshold that must be (or was) disabled.
type Lock struct {
	System   string    `json:"system"`
	Account  string    `json:"account"`
	LockedAt time.Time `json:"lockedAt"`
}

func validateEvents(events []LoginEvent) error {
	if len(events) > maxLoginEvents {
		return fmt.Errorf("events: at most %d per request", maxLoginEvents)
	}
	for i, e := range events {
		switch {
		case !systemPattern.MatchString(e.System):
			return fmt.Errorf("events[%d].system: must be a system name like postgres", i)
		case e.Account == "" || len(e.Account) > 128:
			return fmt.Errorf("events[%d].account: must be 1-128 characters", i)
		case e.Outcome != OutcomeSuccess && e.Outcome != OutcomeFailure:
			return fmt.Errorf(`events[%d].outcome: must be "success" or "failure"`, i)
		case e.At.IsZero():
			return fmt.Errorf("events[%d].at: is missing (RFC 3339)", i)
		}
	}
	return nil
}

// RecordLogins counts consecutive failures per account, in one transaction, and
// marks the accounts that reached threshold as locked. Events are applied in
// time order; an event at or before an account's last one is ignored, so logs
// sent twice count once. It returns the number of events applied.
func (r *Registry) RecordLogins(ctx context.Context, events []LoginEvent, threshold int) (int, error) {
	if err := validateEvents(events); err != nil {
		return 0, err
	}
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b LoginEvent) int { return a.At.Compare(b.At) })
	applied := 0
	err := pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
		applied = 0
		for _, e := range events {
			fail := 0
			if e.Outcome == OutcomeFailure {
				fail = 1
			}
			tag, err := tx.Exec(ctx, `INSERT INTO login_streaks AS s (system, account, failures, last_event_at, locked_at)
				VALUES ($1, $2, $3::integer, $4, CASE WHEN $3::integer >= $5::integer THEN $6::timestamptz END)
				ON CONFLICT (system, account) DO UPDATE SET
					failures = CASE WHEN $3::integer = 1 THEN s.failures + 1 ELSE 0 END,
					last_event_at = EXCLUDED.last_event_at,
					locked_at = CASE WHEN s.locked_at IS NULL AND $3::integer = 1 AND s.failures + 1 >= $5::integer
						THEN $6::timestamptz ELSE s.locked_at END
				WHERE s.last_event_at < EXCLUDED.last_event_at`,
				e.System, e.Account, fail, e.At.UTC(), threshold, r.now())
			if err != nil {
				return fmt.Errorf("access: record login of %s/%s: %w", e.System, e.Account, err)
			}
			applied += int(tag.RowsAffected())
		}
		return nil
	})
	return applied, err
}

// pendingLocks are the locked accounts not yet disabled and verified.
func (r *Registry) pendingLocks(ctx context.Context) ([]Lock, error) {
	rows, err := r.Pool.Query(ctx, `SELECT system, account, locked_at FROM login_streaks
		WHERE locked_at IS NOT NULL AND disabled_at IS NULL ORDER BY locked_at, system, account`)
	if err != nil {
		return nil, fmt.Errorf("access: read locks: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Lock, error) {
		var l Lock
		err := row.Scan(&l.System, &l.Account, &l.LockedAt)
		return l, err
	})
}

// LockResult says what happened to a lock.
type LockResult struct {
	Lock
	Disabled bool   `json:"disabled"`
	Manual   bool   `json:"manual,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// EnforceLocks disables every locked account not yet disabled through its
// connector, verifies it, records it as evidence and tells its owner and the DPO.
// A lock that fails stays pending and is tried again by the next call.
func (s *Service) EnforceLocks(ctx context.Context) ([]LockResult, error) {
	locks, err := s.Registry.pendingLocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []LockResult
	for _, l := range locks {
		res := LockResult{Lock: l}
		subject := l.System + "/" + l.Account
		ev := Evidence{Kind: KindLockout, Subject: subject, Key: "lockout/" + subject + "/" + l.LockedAt.UTC().Format(time.RFC3339Nano),
			Body: map[string]any{"lockedAt": l.LockedAt, "by": actor.Lockout}}
		dres, err := s.Disable(ctx, l.System, l.Account, s.DPO, "locked after repeated failed logins", ev)
		switch {
		case err != nil:
			res.Problem = err.Error()
		case dres.Manual && dres.VerifiedAt == nil:
			res.Manual = true // a task went to the DPO; verified when confirmed
		default:
			res.Disabled = true
			if _, err := s.Registry.Pool.Exec(ctx, `UPDATE login_streaks SET disabled_at = $3
				WHERE system = $1 AND account = $2 AND disabled_at IS NULL`, l.System, l.Account, *dres.VerifiedAt); err != nil {
				return out, fmt.Errorf("access: record lock of %s: %w", subject, err)
			}
			s.tellLocked(ctx, l)
		}
		out = append(out, res)
	}
	return out, nil
}

// tellLocked tells the account's owner (if the registry knows one) and the DPO.
// Best effort: the lock and its evidence are what count.
func (s *Service) tellLocked(ctx context.Context, l Lock) {
	text := fmt.Sprintf("Account %s/%s was disabled after repeated failed logins. Re-enabling it needs the DPO's approval (starter access enable).", l.System, l.Account)
	to := []string{s.DPO}
	if a, err := s.Registry.Account(ctx, l.System, l.Account); err == nil && a.PersonID != "" && a.PersonID != s.DPO {
		to = append(to, a.PersonID)
	}
	for _, p := range to {
		if p != "" && s.Slack != nil {
			_ = s.Notify(ctx, p, text)
		}
	}
}

// ErrNotDPO: only the DPO approves re-enabling a locked account.
var ErrNotDPO = errors.New("only the DPO (DPP_DPO_PERSON_ID) may approve this")

// Reenable gives a locked account its access back on the DPO's approval,
// recorded as evidence, and resets its failure count.
func (s *Service) Reenable(ctx context.Context, system, account, by string) error {
	if s.DPO == "" || by != s.DPO {
		return ErrNotDPO
	}
	var lockedAt *time.Time
	err := s.Registry.Pool.QueryRow(ctx, `SELECT locked_at FROM login_streaks WHERE system = $1 AND account = $2`,
		system, account).Scan(&lockedAt)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && lockedAt == nil) {
		return fmt.Errorf("%s/%s is not locked", system, account)
	}
	if err != nil {
		return fmt.Errorf("access: read lock: %w", err)
	}
	c, err := s.Connectors.For(system)
	if err != nil {
		return err
	}
	en, ok := c.(Enabler)
	if !ok {
		return fmt.Errorf("connector %s cannot re-enable accounts", c.Name())
	}
	if err := en.Enable(ctx, system, account); err != nil {
		return err
	}
	subject := system + "/" + account
	if _, err := s.Record(ctx, Evidence{Kind: KindReenable, Subject: subject,
		Key:  "reenable/" + subject + "/" + lockedAt.UTC().Format(time.RFC3339Nano),
		Body: map[string]any{"lockedAt": *lockedAt, "approvedBy": by, "enabledAt": s.Registry.now()}}); err != nil {
		return err
	}
	_, err = s.Registry.Pool.Exec(ctx, `UPDATE login_streaks SET locked_at = NULL, disabled_at = NULL, failures = 0
		WHERE system = $1 AND account = $2`, system, account)
	return err
}

// LoginEventsHandler serves POST /access/login-events: {"events": [{"system",
// "account", "outcome": "success|failure", "at"}]}. The caller mounts it behind
// the ingest bearer token (DPP_INGEST_TOKEN). It answers with how many events
// counted and what was locked.
func LoginEventsHandler(s *Service, threshold int, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var body struct {
			Events []LoginEvent `json:"events"`
		}
		dec := json.NewDecoder(io.LimitReader(req.Body, 4<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			http.Error(w, "body: must be {\"events\": [{\"system\", \"account\", \"outcome\", \"at\"}]}: "+jsonProblem(err), http.StatusBadRequest)
			return
		}
		applied, err := s.Registry.RecordLogins(req.Context(), body.Events, threshold)
		if err != nil {
			if strings.HasPrefix(err.Error(), "events") {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			log.Error("Cannot record login events", zap.Error(err))
			http.Error(w, "cannot record the events; send them again", http.StatusServiceUnavailable)
			return
		}
		locks, err := s.EnforceLocks(req.Context())
		if err != nil {
			log.Error("Cannot enforce locks", zap.Error(err))
		}
		for _, l := range locks {
			if l.Problem != "" {
				log.Error("Lock not enforced yet", zap.String("system", l.System), zap.String("account", l.Account), zap.String("problem", l.Problem))
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"applied": applied, "locks": nonNil(locks)})
	})
}

func nonNil(l []LockResult) []LockResult {
	if l == nil {
		return []LockResult{}
	}
	return l
}

// jsonProblem describes a decoding error without quoting the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "unknown field"
	}
	return "not JSON"
}
