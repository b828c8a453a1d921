-- +goose Up

-- Free text people write that the evidence log refers to: the reason for
-- keeping a flagged account (access review) and a duty's completion note. The
-- evidence log can never be erased, and forms that ask people to name no one
-- cannot enforce it, so the text lives here, sealed under a data key of its own,
-- and the evidence entry keeps only ref. Erasure (once retain_until has passed)
-- deletes the wrapped key and the ciphertext in one transaction with a
-- free-text-erased evidence entry: Cryptographic Erase, as for an order's PII.
CREATE TABLE free_texts (
    ref          text PRIMARY KEY CHECK (ref ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$'),
    kind         text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9-]{0,62}$'),
    subject      text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    retain_until timestamptz NOT NULL,
    kms_key_id   text,
    wrapped_key  bytea,
    text_sealed  bytea,
    erased_at    timestamptz,
    CHECK ((erased_at IS NULL) = (wrapped_key IS NOT NULL AND text_sealed IS NOT NULL AND kms_key_id IS NOT NULL)),
    CHECK (retain_until > recorded_at)
);
CREATE INDEX free_texts_due ON free_texts (retain_until) WHERE erased_at IS NULL;

GRANT SELECT, INSERT ON free_texts TO dpp_worker;
GRANT UPDATE (kms_key_id, wrapped_key, text_sealed, erased_at) ON free_texts TO dpp_worker;
-- Whether a text exists and until when, never its ciphertext or key.
GRANT SELECT (ref, kind, subject, recorded_at, retain_until, erased_at) ON free_texts TO dpp_auditor;

-- Where the alert check last verified the evidence chain: the entry (seq and
-- hash) up to which it is known good, so each check verifies only what was
-- appended since, and when the whole chain was last verified (a full run
-- repeats daily). Kept outside evidence_log, whose rows it vouches for.
CREATE TABLE evidence_checkpoints (
    name             text PRIMARY KEY,
    seq              bigint      NOT NULL CHECK (seq >= 0),
    hash             bytea       NOT NULL CHECK (length(hash) = 32),
    verified_at      timestamptz NOT NULL,
    full_verified_at timestamptz NOT NULL
);
GRANT SELECT, INSERT ON evidence_checkpoints TO dpp_worker;
GRANT UPDATE (seq, hash, verified_at, full_verified_at) ON evidence_checkpoints TO dpp_worker;
GRANT SELECT ON evidence_checkpoints TO dpp_auditor;

-- +goose Down
REVOKE ALL ON evidence_checkpoints FROM dpp_worker, dpp_auditor;
DROP TABLE evidence_checkpoints;
REVOKE ALL ON free_texts FROM dpp_worker, dpp_auditor;
DROP TABLE free_texts;
