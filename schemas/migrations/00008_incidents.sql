-- +goose Up

-- Security incidents (issue 10). Titles, summaries, notation and notification
-- texts describe people and systems: they are sealed (AES-256-GCM under the
-- incident's data key in incident_keys), never stored in plaintext. Everything
-- else is ids, codes and times.
CREATE TABLE incident_keys (
    incident_id  text PRIMARY KEY,
    kms_key_id   text        NOT NULL,
    wrapped_key  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    incident_id     text PRIMARY KEY REFERENCES incident_keys (incident_id),
    workflow_id     text        NOT NULL UNIQUE,   -- incident-<id>
    severity        text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    personal_data   boolean     NOT NULL,
    detected_at     timestamptz NOT NULL,
    declared_at     timestamptz NOT NULL,
    reported_by     text        NOT NULL,          -- an id: Slack user id, operator id, or 'ingest'
    title_sealed    bytea       NOT NULL,
    summary_sealed  bytea,
    stage           text        NOT NULL,
    amazon_due_at   timestamptz NOT NULL,
    ico_due_at      timestamptz,                   -- only when personal data is involved
    slack_channel   text,                          -- the incident's message, kept current
    slack_ts        text,
    amazon_sent_at  timestamptz,
    amazon_message_id text,
    amazon_text_sealed bytea,                      -- the text that was e-mailed
    ico_reference   text,
    ico_reported_at timestamptz,
    closed_at       timestamptz,
    outcome         text CHECK (outcome IN ('resolved', 'false-positive')),
    CHECK ((closed_at IS NULL) = (outcome IS NULL)),
    CHECK ((amazon_sent_at IS NULL) = (amazon_message_id IS NULL))
);

-- The append-only timeline: every stage change, message, approval, refusal and
-- e-mail, with who (an id) and when. detail holds codes and ids only; a free
-- text (a note, lessons learned, a reason) is note_sealed.
CREATE TABLE incident_timeline (
    incident_id     text        NOT NULL REFERENCES incidents (incident_id),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    at              timestamptz NOT NULL,
    kind            text        NOT NULL,
    actor           text        NOT NULL,
    detail          jsonb       NOT NULL DEFAULT '{}',
    note_sealed     bytea,
    idempotency_key text        NOT NULL UNIQUE,   -- workflow id + step: a retried activity records once
    PRIMARY KEY (incident_id, seq)
);

-- The timeline is append-only for the worker: INSERT, never UPDATE or DELETE.
GRANT SELECT, INSERT ON incident_keys, incidents, incident_timeline TO dpp_worker;
GRANT UPDATE (stage, slack_channel, slack_ts, amazon_sent_at, amazon_message_id, amazon_text_sealed,
              ico_reference, ico_reported_at, closed_at, outcome) ON incidents TO dpp_worker;
-- The auditor reads the facts, not the sealed texts or keys.
GRANT SELECT (incident_id, workflow_id, severity, personal_data, detected_at, declared_at, reported_by, stage,
              amazon_due_at, ico_due_at, amazon_sent_at, amazon_message_id, ico_reference, ico_reported_at,
              closed_at, outcome) ON incidents TO dpp_auditor;
GRANT SELECT (incident_id, seq, at, kind, actor, detail, idempotency_key) ON incident_timeline TO dpp_auditor;

-- +goose Down
REVOKE ALL ON incident_timeline, incidents, incident_keys FROM dpp_worker, dpp_auditor;
DROP TABLE incident_timeline;
DROP TABLE incidents;
DROP TABLE incident_keys;
