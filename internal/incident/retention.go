package incident

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// KindTextsErased is the timeline kind of a closed incident's Cryptographic
// Erase; its evidence entry is incident-texts-erased (EvidenceKindTextsErased).
const KindTextsErased = "texts-erased"

// EvidenceKindTextsErased is the evidence kind of that erasure.
const EvidenceKindTextsErased = "incident-" + KindTextsErased

// TextsEraser is the actor of the erasure: the daily sweep, not a person.
const TextsEraser = "retention-sweep"

// ErrTextsErased: the incident's data key was erased with its texts.
var ErrTextsErased = errors.New("incident: texts erased")

// Erased is how a reader shows an erased text.
func Erased(at time.Time) string { return "erased on " + at.UTC().Format(time.DateOnly) }

// EraseTextsDue crypto-erases the texts of up to limit incidents closed at
// least s.TextRetention ago, each in its own transaction with its timeline
// entry and evidence; more is true when others are still due. An open
// incident is never erased, and erasing one again changes nothing.
func (s *Service) EraseTextsDue(ctx context.Context, limit int) (n int, more bool, err error) {
	if limit <= 0 {
		return 0, false, errors.New("incident texts: erase: limit must be positive")
	}
	if s.TextRetention <= 0 {
		return 0, false, errors.New("incident texts: erase: no retention (DPP_INCIDENT_TEXT_RETENTION) set")
	}
	now := s.now()
	rows, err := s.Pool.Query(ctx, `SELECT incident_id FROM incidents
		WHERE closed_at IS NOT NULL AND texts_erased_at IS NULL AND closed_at <= $1
		ORDER BY closed_at, incident_id LIMIT $2`, now.Add(-s.TextRetention), limit+1)
	if err != nil {
		return 0, false, fmt.Errorf("incident texts: due: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, false, fmt.Errorf("incident texts: due: %w", err)
	}
	if len(ids) > limit {
		ids, more = ids[:limit], true
	}
	for _, id := range ids {
		erased, err := s.eraseTexts(ctx, id, now)
		if err != nil {
			return n, more, err
		}
		if erased {
			n++
		}
	}
	return n, more, nil
}

func (s *Service) eraseTexts(ctx context.Context, id string, now time.Time) (bool, error) {
	erased := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var closedAt *time.Time
		var textsErasedAt *time.Time
		var kmsKeyID string
		var hadSummary, hadNotification bool
		// Locking both rows keeps a concurrent sweep (or a late notification)
		// from seeing a half-erased incident.
		err := tx.QueryRow(ctx, `SELECT i.closed_at, i.texts_erased_at, k.kms_key_id, i.summary_sealed IS NOT NULL,
			i.amazon_text_sealed IS NOT NULL FROM incidents i JOIN incident_keys k USING (incident_id)
			WHERE i.incident_id = $1 FOR UPDATE`, id).Scan(&closedAt, &textsErasedAt, &kmsKeyID, &hadSummary, &hadNotification)
		if err != nil || textsErasedAt != nil {
			return err
		}
		// Checked again under the lock: the retention counts from closing.
		if closedAt == nil || closedAt.After(now.Add(-s.TextRetention)) {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE incident_keys SET wrapped_key = ''::bytea, erased_at = $2 WHERE incident_id = $1`,
			id, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE incidents SET title_sealed = NULL, summary_sealed = NULL, amazon_text_sealed = NULL,
			texts_erased_at = $2 WHERE incident_id = $1`, id, now); err != nil {
			return err
		}
		if err := s.record(ctx, tx, Event{IncidentID: id, Key: "incident-" + id + "/" + KindTextsErased, Kind: KindTextsErased,
			Actor: TextsEraser, At: now, Detail: map[string]any{
				"closedAt": closedAt.UTC(), "retention": s.TextRetention.String(), "erasedAt": now.UTC(), "kmsKeyId": kmsKeyID,
				"texts":  erasedTexts(hadSummary, hadNotification),
				"method": "Cryptographic Erase: the incident's wrapped data key emptied and its sealed texts deleted",
			}}, nil); err != nil {
			return err
		}
		erased = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("incident %s: erase texts: %w", id, err)
	}
	return erased, nil
}

// erasedTexts names the columns that held a text, for the evidence.
func erasedTexts(summary, notification bool) []string {
	texts := []string{"title"}
	if summary {
		texts = append(texts, "summary")
	}
	if notification {
		texts = append(texts, "amazon-notification")
	}
	return texts
}
