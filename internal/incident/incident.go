// Package incident keeps the record of security incidents: the incident row,
// its append-only timeline and their evidence, with every free text (title,
// summary, notes, the notification sent) sealed under the incident's own data
// key. It renders the Amazon notification and the incident's Slack message.
// Nothing here logs or returns a sealed text except Get, for rendering.
package incident

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/vault"
)

// Severities, in increasing order.
var Severities = []string{"low", "medium", "high", "critical"}

// Notification targets.
const (
	TargetAmazon = "amazon"
	TargetICO    = "ico"
)

// Outcomes of a closed incident.
const (
	OutcomeResolved      = "resolved"
	OutcomeFalsePositive = "false-positive"
)

// ErrNotFound: no incident with that id.
var ErrNotFound = errors.New("incident: no such incident")

const purpose = "incident"

// Service reads and writes incidents.
type Service struct {
	Pool   *pgxpool.Pool
	Vault  *vault.Vault
	Signer *evidence.Signer
	// Texts seals a timeline note under a key of its own, erased after its
	// retention (internal/freetext); nil seals it under the incident's key,
	// which is never erased, as before.
	Texts *freetext.Store
	// TextRetention is how long a closed incident's own texts are kept
	// (DPP_INCIDENT_TEXT_RETENTION); EraseTextsDue erases them after it.
	TextRetention time.Duration
	// Now is the clock of recorded times; nil means time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Declaration is a new incident. Title and Summary are sealed.
type Declaration struct {
	ID           string
	WorkflowID   string
	Title        string
	Summary      string
	Severity     string
	ReportedBy   string
	PersonalData bool
	DetectedAt   time.Time
	DeclaredAt   time.Time
	Stage        string
	AmazonDueAt  time.Time
	ICODueAt     *time.Time
}

// Incident is an incident as stored, with its texts opened.
type Incident struct {
	ID              string
	Severity        string
	PersonalData    bool
	DetectedAt      time.Time
	DeclaredAt      time.Time
	ReportedBy      string
	Title, Summary  string
	Stage           string
	AmazonDueAt     time.Time
	ICODueAt        *time.Time
	SlackChannel    string
	SlackTS         string
	AmazonSentAt    *time.Time
	AmazonMessageID string
	ICOReference    string
	ClosedAt        *time.Time
	Outcome         string
	// TextsErasedAt is when the title, summary and notification text were
	// erased (EraseTextsDue); Title then says so and Summary is empty.
	TextsErasedAt *time.Time
}

// Event is one timeline entry. Key makes it idempotent (workflow id + step):
// recording it again changes nothing. Detail holds codes and ids only; Note is
// a person's free text, sealed.
type Event struct {
	IncidentID string
	Key        string
	Kind       string
	Actor      string
	At         time.Time
	Detail     map[string]any
	Note       string
	// NoteRef names a note already sealed (internal/freetext); Note is then empty.
	NoteRef string
	// Stage, when set, becomes the incident's stage with this entry.
	Stage string
	// ICOReference, when set, is recorded as the ICO's reference.
	ICOReference string
	// Outcome, when set, closes the incident at At.
	Outcome string
}

func contextFor(id string) vault.Context {
	return vault.Context{OrderID: "incident:" + id, Purpose: purpose}
}

// Declare records the incident, its first timeline entry and its evidence in
// one transaction. Declaring an id again returns false and changes nothing.
func (s *Service) Declare(ctx context.Context, d Declaration) (bool, error) {
	var exists bool
	if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM incidents WHERE incident_id = $1)`, d.ID).Scan(&exists); err != nil {
		return false, fmt.Errorf("declare incident %s: %w", d.ID, err)
	}
	if exists {
		return false, nil
	}
	k, err := s.Vault.NewDataKey(ctx, contextFor(d.ID))
	if err != nil {
		return false, fmt.Errorf("declare incident %s: data key: %w", d.ID, err)
	}
	defer k.Destroy()
	title, err := k.Seal("title", []byte(d.Title))
	if err != nil {
		return false, err
	}
	var summary []byte
	if d.Summary != "" {
		if summary, err = k.Seal("summary", []byte(d.Summary)); err != nil {
			return false, err
		}
	}
	created := false
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO incident_keys (incident_id, kms_key_id, wrapped_key) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, d.ID, k.KMSKeyID, k.Wrapped)
		if err != nil || tag.RowsAffected() == 0 {
			// A concurrent declaration of the same id won.
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO incidents (incident_id, workflow_id, severity, personal_data, detected_at,
			declared_at, reported_by, title_sealed, summary_sealed, stage, amazon_due_at, ico_due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			d.ID, d.WorkflowID, d.Severity, d.PersonalData, d.DetectedAt, d.DeclaredAt, d.ReportedBy, title, summary,
			d.Stage, d.AmazonDueAt, d.ICODueAt); err != nil {
			return err
		}
		created = true
		detail := map[string]any{"severity": d.Severity, "personalData": d.PersonalData,
			"detectedAt": d.DetectedAt.UTC(), "amazonDueAt": d.AmazonDueAt.UTC(), "stage": d.Stage}
		if d.ICODueAt != nil {
			detail["icoDueAt"] = d.ICODueAt.UTC()
		}
		return s.record(ctx, tx, Event{IncidentID: d.ID, Key: d.WorkflowID + "/declared", Kind: "declared",
			Actor: d.ReportedBy, At: d.DeclaredAt, Detail: detail}, nil)
	})
	if err != nil {
		return false, fmt.Errorf("declare incident %s: %w", d.ID, err)
	}
	return created, nil
}

// Record adds e to the timeline and the evidence chain, and applies its
// stage, ICO reference or outcome, in one transaction; only the first
// recording of e.Key has an effect. It returns whether this call recorded it.
func (s *Service) Record(ctx context.Context, e Event) (bool, error) {
	var note []byte
	var text *freetext.Sealed
	if e.NoteRef != "" {
		detail := map[string]any{"noteRef": e.NoteRef}
		for k, v := range e.Detail {
			detail[k] = v
		}
		e.Detail = detail
	}
	if e.Note != "" && s.Texts != nil {
		at := e.At
		if at.IsZero() {
			at = s.now()
		}
		var err error
		if text, err = s.Texts.Seal(ctx, freetext.KindIncidentNote, e.Key+"/note", "incident-"+e.IncidentID, e.Note, at); err != nil {
			return false, err
		}
		detail := map[string]any{"noteRef": text.Ref}
		for k, v := range e.Detail {
			detail[k] = v
		}
		e.Detail = detail
	} else if e.Note != "" {
		k, err := s.key(ctx, e.IncidentID)
		if err != nil {
			return false, err
		}
		defer k.Destroy()
		if note, err = k.Seal("note/"+e.Key, []byte(e.Note)); err != nil {
			return false, err
		}
	}
	recorded := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		if recorded, err = s.apply(ctx, tx, e, note); err != nil || !recorded || text == nil {
			return err
		}
		return text.Insert(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("incident %s: record %s: %w", e.IncidentID, e.Kind, err)
	}
	return recorded, nil
}

func (s *Service) apply(ctx context.Context, tx pgx.Tx, e Event, note []byte) (bool, error) {
	var seen bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM incident_timeline WHERE idempotency_key = $1)`, e.Key).Scan(&seen); err != nil || seen {
		return false, err
	}
	if e.Stage != "" {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET stage = $2 WHERE incident_id = $1`, e.IncidentID, e.Stage); err != nil {
			return false, err
		}
	}
	if e.ICOReference != "" {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET ico_reference = $2, ico_reported_at = $3 WHERE incident_id = $1`,
			e.IncidentID, e.ICOReference, e.At); err != nil {
			return false, err
		}
	}
	if e.Outcome != "" {
		if _, err := tx.Exec(ctx, `UPDATE incidents SET outcome = $2, closed_at = $3 WHERE incident_id = $1 AND closed_at IS NULL`,
			e.IncidentID, e.Outcome, e.At); err != nil {
			return false, err
		}
	}
	return true, s.record(ctx, tx, e, note)
}

// record inserts the timeline entry and appends its evidence.
func (s *Service) record(ctx context.Context, tx pgx.Tx, e Event, note []byte) error {
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	at := e.At
	if at.IsZero() {
		at = s.now()
	}
	if _, err := tx.Exec(ctx, `INSERT INTO incident_timeline (incident_id, at, kind, actor, detail, note_sealed, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.IncidentID, at, e.Kind, e.Actor, e.Detail, note, e.Key); err != nil {
		return err
	}
	_, noteRef := e.Detail["noteRef"]
	body := map[string]any{"incident": e.IncidentID, "kind": e.Kind, "actor": e.Actor, "at": at.UTC(), "detail": e.Detail,
		"note": note != nil || noteRef}
	_, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: "incident-" + e.Kind, Subject: "incident-" + e.IncidentID,
		IdempotencyKey: e.Key, Body: body}, s.now())
	return err
}

func (s *Service) key(ctx context.Context, id string) (*vault.DataKey, error) {
	var kmsKey string
	var wrapped []byte
	var erasedAt *time.Time
	err := s.Pool.QueryRow(ctx, `SELECT kms_key_id, wrapped_key, erased_at FROM incident_keys WHERE incident_id = $1`, id).
		Scan(&kmsKey, &wrapped, &erasedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: key: %w", id, err)
	}
	if erasedAt != nil {
		return nil, fmt.Errorf("incident %s: %w on %s", id, ErrTextsErased, erasedAt.UTC().Format(time.DateOnly))
	}
	return s.Vault.OpenDataKey(ctx, contextFor(id), kmsKey, wrapped)
}

// Get returns the incident with its title and summary opened, for rendering.
func (s *Service) Get(ctx context.Context, id string) (Incident, error) {
	var inc Incident
	var title, summary []byte
	err := s.Pool.QueryRow(ctx, `SELECT incident_id, severity, personal_data, detected_at, declared_at, reported_by,
		title_sealed, summary_sealed, stage, amazon_due_at, ico_due_at, COALESCE(slack_channel, ''), COALESCE(slack_ts, ''),
		amazon_sent_at, COALESCE(amazon_message_id, ''), COALESCE(ico_reference, ''), closed_at, COALESCE(outcome, ''),
		texts_erased_at FROM incidents WHERE incident_id = $1`, id).Scan(&inc.ID, &inc.Severity, &inc.PersonalData, &inc.DetectedAt,
		&inc.DeclaredAt, &inc.ReportedBy, &title, &summary, &inc.Stage, &inc.AmazonDueAt, &inc.ICODueAt, &inc.SlackChannel,
		&inc.SlackTS, &inc.AmazonSentAt, &inc.AmazonMessageID, &inc.ICOReference, &inc.ClosedAt, &inc.Outcome, &inc.TextsErasedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Incident{}, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("incident %s: %w", id, err)
	}
	if inc.TextsErasedAt != nil {
		inc.Title = "title " + Erased(*inc.TextsErasedAt)
		return inc, nil
	}
	k, err := s.key(ctx, id)
	if err != nil {
		return Incident{}, err
	}
	defer k.Destroy()
	t, err := k.Open("title", title)
	if err != nil {
		return Incident{}, fmt.Errorf("incident %s: open title: %w", id, err)
	}
	inc.Title = string(t)
	if summary != nil {
		sm, err := k.Open("summary", summary)
		if err != nil {
			return Incident{}, fmt.Errorf("incident %s: open summary: %w", id, err)
		}
		inc.Summary = string(sm)
	}
	return inc, nil
}

// SetSlackMessage remembers where the incident's Slack message is.
func (s *Service) SetSlackMessage(ctx context.Context, id, channel, ts string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE incidents SET slack_channel = $2, slack_ts = $3 WHERE incident_id = $1`, id, channel, ts)
	if err != nil {
		return fmt.Errorf("incident %s: slack message: %w", id, err)
	}
	return nil
}

// Entry is a timeline entry as stored. A note sealed under the incident's key
// stays sealed; one kept in free_texts is shown by Report as Note.
type Entry struct {
	Seq     int64
	At      time.Time
	Kind    string
	Actor   string
	Detail  map[string]any
	HasNote bool
	Key     string
	// Note is the note's text while it exists, "erased on <date>" after.
	Note string
}

// Timeline returns the incident's timeline in order.
func (s *Service) Timeline(ctx context.Context, id string) ([]Entry, error) {
	rows, err := s.Pool.Query(ctx, `SELECT seq, at, kind, actor, detail, note_sealed IS NOT NULL OR detail ? 'noteRef', idempotency_key
		FROM incident_timeline WHERE incident_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("incident %s: timeline: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Seq, &e.At, &e.Kind, &e.Actor, &e.Detail, &e.HasNote, &e.Key)
		return e, err
	})
}
