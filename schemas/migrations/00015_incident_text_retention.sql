-- +goose Up

-- An incident's own texts (title, summary, the notification e-mailed) may name
-- people, so once the incident has been closed for DPP_INCIDENT_TEXT_RETENTION
-- the daily sweep crypto-erases them: the wrapped data key is emptied and the
-- three ciphertexts NULLed, in one transaction with an incident-texts-erased
-- evidence entry. UK GDPR Art. 33(5) asks for the breach to be documented
-- (facts, effects, remedial action); the incident row's facts and the timeline's
-- codes stay, only the words go.
--
-- The key row is kept (wrapped_key emptied, erased_at set) rather than deleted,
-- so the FOREIGN KEY from incidents stays and an auditor sees that the incident
-- had a key and when it was erased, not a key that silently vanished. Timeline
-- notes sealed under the incident's key before free_texts existed
-- (incident_timeline.note_sealed, append-only) become unreadable with it.
ALTER TABLE incident_keys ADD COLUMN erased_at timestamptz;
ALTER TABLE incident_keys ADD CONSTRAINT incident_keys_erased
    CHECK ((erased_at IS NULL) = (length(wrapped_key) > 0));

ALTER TABLE incidents ALTER COLUMN title_sealed DROP NOT NULL;
ALTER TABLE incidents ADD COLUMN texts_erased_at timestamptz;
-- Only a closed incident's texts are ever erased, and an erased one has none.
ALTER TABLE incidents ADD CONSTRAINT incidents_texts_erased
    CHECK ((texts_erased_at IS NULL) = (title_sealed IS NOT NULL)
       AND (texts_erased_at IS NULL OR (closed_at IS NOT NULL AND summary_sealed IS NULL AND amazon_text_sealed IS NULL)));
CREATE INDEX incidents_texts_due ON incidents (closed_at) WHERE closed_at IS NOT NULL AND texts_erased_at IS NULL;

GRANT UPDATE (title_sealed, summary_sealed, texts_erased_at) ON incidents TO dpp_worker;
GRANT UPDATE (wrapped_key, erased_at) ON incident_keys TO dpp_worker;
GRANT SELECT (texts_erased_at) ON incidents TO dpp_auditor;

-- +goose Down
REVOKE SELECT (texts_erased_at) ON incidents FROM dpp_auditor;
REVOKE UPDATE (wrapped_key, erased_at) ON incident_keys FROM dpp_worker;
REVOKE UPDATE (title_sealed, summary_sealed, texts_erased_at) ON incidents FROM dpp_worker;
DROP INDEX incidents_texts_due;
ALTER TABLE incidents DROP CONSTRAINT incidents_texts_erased;
ALTER TABLE incidents DROP COLUMN texts_erased_at;
-- Erased incidents keep no title; Down cannot give one back, so it fails on them.
ALTER TABLE incidents ALTER COLUMN title_sealed SET NOT NULL;
ALTER TABLE incident_keys DROP CONSTRAINT incident_keys_erased;
ALTER TABLE incident_keys DROP COLUMN erased_at;
