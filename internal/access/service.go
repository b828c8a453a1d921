package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
)

// Service is what the access workflows' activities do: collect a review, post
// and update Slack messages, disable and verify through the connectors, and write
// the evidence of each step.
type Service struct {
	Registry   *Registry
	Connectors Connectors
	Slack      Notifier
	// DPO is the Data Protection Officer's person id (DPP_DPO_PERSON_ID).
	DPO string
}

// ErrNoSlack: SLACK_BOT_TOKEN is not set, so nothing is posted; decisions then
// come by signal or update (temporal CLI).
var ErrNoSlack = errors.New("no Slack client: set SLACK_BOT_TOKEN")

// ErrNoDPO: DPP_DPO_PERSON_ID is not set, and the access workflows need someone
// to review orphans and receive escalations.
var ErrNoDPO = errors.New("the access review needs the DPO's person id: set DPP_DPO_PERSON_ID")

// Collect lists every connector's accounts and builds the review's items.
func (s *Service) Collect(ctx context.Context) ([]Item, error) {
	if s.DPO == "" {
		return nil, ErrNoDPO
	}
	if _, err := s.Registry.Person(ctx, s.DPO); err != nil {
		return nil, fmt.Errorf("DPP_DPO_PERSON_ID %s: %w (import the DPO with `starter access import`)", s.DPO, err)
	}
	var found []Found
	for _, c := range s.Connectors {
		fs, err := c.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("connector %s: %w", c.Name(), err)
		}
		for _, f := range fs {
			if c.Serves(f.System) {
				found = append(found, f)
			}
		}
	}
	registry, err := s.Registry.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	people, err := s.Registry.People(ctx)
	if err != nil {
		return nil, err
	}
	connectorOf := func(system string) string {
		if c, err := s.Connectors.For(system); err == nil {
			return c.Name()
		}
		return ""
	}
	return BuildItems(found, connectorOf, registry, people, s.DPO), nil
}

// slackUser is the Slack user id of a person, or of the DPO when the person has
// none (their messages must reach someone who can act).
func (s *Service) slackUser(ctx context.Context, personID string) (string, error) {
	p, err := s.Registry.Person(ctx, personID)
	if err != nil {
		return "", fmt.Errorf("person %s: %w", personID, err)
	}
	if p.SlackUserID != "" {
		return p.SlackUserID, nil
	}
	if personID != s.DPO && s.DPO != "" {
		return s.slackUser(ctx, s.DPO)
	}
	return "", fmt.Errorf("person %s has no Slack user id", personID)
}

// Notify sends a person a direct message (reminders, escalations). text must
// carry ids only.
func (s *Service) Notify(ctx context.Context, personID, text string) error {
	if s.Slack == nil {
		return ErrNoSlack
	}
	user, err := s.slackUser(ctx, personID)
	if err != nil {
		return err
	}
	_, _, err = s.Slack.PostDM(ctx, user, nil, text)
	return err
}

// ShowReview posts a reviewer's message in a campaign the first time and updates
// it after that, so a retried or repeated call leaves one message.
func (s *Service) ShowReview(ctx context.Context, campaign, reviewer string, lines []ReviewLine) error {
	if s.Slack == nil {
		return ErrNoSlack
	}
	text, blocks := ReviewMessage(campaign, lines)
	return s.show(ctx, "access-review-"+campaign+"/reviewer/"+reviewer, reviewer, text, blocks)
}

func (s *Service) show(ctx context.Context, ref, personID, text string, blocks []slack.Block) error {
	channel, ts, ok, err := s.Registry.Message(ctx, ref)
	if err != nil {
		return err
	}
	if ok {
		return s.Slack.Update(ctx, channel, ts, blocks, text)
	}
	user, err := s.slackUser(ctx, personID)
	if err != nil {
		return err
	}
	if channel, ts, err = s.Slack.PostDM(ctx, user, blocks, text); err != nil {
		return err
	}
	return s.Registry.SaveMessage(ctx, ref, channel, ts)
}

// DisableResult is what disabling an account did.
type DisableResult struct {
	// Manual: the registry connector asked TaskOwner to disable it by hand; the
	// account is disabled once they confirm (ConfirmDisabled).
	Manual     bool       `json:"manual,omitempty"`
	ExecutedAt time.Time  `json:"executedAt"`
	VerifiedAt *time.Time `json:"verifiedAt,omitempty"`
}

// ErrNotVerified: the connector, asked again after disabling, says the account
// is still enabled.
var ErrNotVerified = errors.New("the connector still reports the account enabled after disabling it")

// Disable disables an account through its connector and verifies it by asking
// again; a manual connector's account becomes a Slack task for taskOwner. kind,
// subject and key are the evidence written once the disable is verified.
func (s *Service) Disable(ctx context.Context, system, account, taskOwner, why string, ev Evidence) (DisableResult, error) {
	c, err := s.Connectors.For(system)
	if err != nil {
		return DisableResult{}, err
	}
	if err := c.Disable(ctx, system, account); err != nil {
		return DisableResult{}, err
	}
	res := DisableResult{ExecutedAt: s.Registry.now()}
	if IsManual(c) {
		res.Manual = true
		if done, err := c.Disabled(ctx, system, account); err != nil || done {
			if done {
				return s.verified(ctx, system, account, ev, res)
			}
			return res, err
		}
		if s.Slack == nil {
			return res, fmt.Errorf("cannot send the task to disable %s/%s by hand: %w", system, account, ErrNoSlack)
		}
		text, blocks := TaskMessage(ev.Subject, system, account, why, "")
		return res, s.show(ctx, taskRef(ev.Subject, system, account), taskOwner, text, blocks)
	}
	done, err := c.Disabled(ctx, system, account)
	if err != nil {
		return res, err
	}
	if !done {
		return res, fmt.Errorf("%s/%s: %w", system, account, ErrNotVerified)
	}
	return s.verified(ctx, system, account, ev, res)
}

func taskRef(workflowID, system, account string) string {
	return workflowID + "/task/" + system + "/" + account
}

// Verify records who confirmed a manual disable (confirmedBy, if any), asks the
// connector whether the account is disabled and, when it is, writes the evidence;
// a manual task's message is updated to say who confirmed.
func (s *Service) Verify(ctx context.Context, system, account, confirmedBy string, ev Evidence, res DisableResult) (DisableResult, error) {
	c, err := s.Connectors.For(system)
	if err != nil {
		return res, err
	}
	if cf, ok := c.(Confirmer); ok && confirmedBy != "" {
		if err := cf.Confirm(ctx, system, account, confirmedBy); err != nil {
			return res, err
		}
	}
	done, err := c.Disabled(ctx, system, account)
	if err != nil {
		return res, err
	}
	if !done {
		return res, fmt.Errorf("%s/%s: %w", system, account, ErrNotVerified)
	}
	return s.verified(ctx, system, account, ev, res)
}

func (s *Service) verified(ctx context.Context, system, account string, ev Evidence, res DisableResult) (DisableResult, error) {
	now := s.Registry.now()
	res.VerifiedAt = &now
	body := map[string]any{"system": system, "account": account, "executedAt": res.ExecutedAt, "verifiedAt": now, "manual": res.Manual}
	for k, v := range ev.Body {
		body[k] = v
	}
	if res.Manual {
		if a, err := s.Registry.Account(ctx, system, account); err == nil && a.DisabledBy != "" {
			body["confirmedBy"] = a.DisabledBy
			if channel, ts, ok, _ := s.Registry.Message(ctx, taskRef(ev.Subject, system, account)); ok && s.Slack != nil {
				text, blocks := TaskMessage(ev.Subject, system, account, "", a.DisabledBy)
				_ = s.Slack.Update(ctx, channel, ts, blocks, text) // cosmetic: the evidence is what counts
			}
		}
	}
	ev.Body = body
	rec, err := s.Record(ctx, ev)
	if err != nil {
		return res, err
	}
	// A retried step keeps the times of its first record.
	var first struct {
		ExecutedAt time.Time `json:"executedAt"`
		VerifiedAt time.Time `json:"verifiedAt"`
	}
	if json.Unmarshal(rec.Body, &first) == nil && !first.VerifiedAt.IsZero() {
		res.ExecutedAt, res.VerifiedAt = first.ExecutedAt, &first.VerifiedAt
	}
	return res, nil
}

// Evidence is an entry the service appends: Body holds ids only, and refers to
// the free texts of Texts, stored in the same transaction.
type Evidence struct {
	Kind    string
	Subject string
	Key     string
	Body    map[string]any
	Texts   []*freetext.Sealed
}

// Record appends an evidence entry in its own transaction; the same Key again
// returns the first entry.
func (s *Service) Record(ctx context.Context, ev Evidence) (evidence.Record, error) {
	if s.Registry.Signer == nil {
		return evidence.Record{}, errors.New("access: no evidence signer")
	}
	var rec evidence.Record
	err := pgx.BeginFunc(ctx, s.Registry.Pool, func(tx pgx.Tx) error {
		for _, t := range ev.Texts {
			if err := t.Insert(ctx, tx); err != nil {
				return err
			}
		}
		var err error
		rec, _, err = evidence.Append(ctx, tx, s.Registry.Signer, evidence.Entry{
			Kind: ev.Kind, Subject: ev.Subject, IdempotencyKey: ev.Key, Body: ev.Body}, s.Registry.now())
		return err
	})
	return rec, err
}
