-- +goose Up

-- Ed25519 keys that sign the evidence log. The private key is sealed with a vault
-- data key (AES-256-GCM); only the KMS-wrapped data key is stored beside it.
-- Retired keys stay so old entries remain verifiable.
CREATE TABLE signing_keys (
    key_id             text PRIMARY KEY,
    public_key         bytea       NOT NULL CHECK (length(public_key) = 32),
    sealed_private_key bytea       NOT NULL,
    kms_key_id         text        NOT NULL,
    wrapped_data_key   bytea       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    retired_at         timestamptz
);
-- At most one active key: concurrent first starts INSERT ... ON CONFLICT DO NOTHING
-- against this index and then all read the one that won.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- The evidence log: signed, hash-chained, append-only. Entries carry no PII:
-- subjects are order ids or invoice numbers, bodies only ids, counts, key
-- references and hashes.
CREATE TABLE evidence_log (
    seq             bigint      PRIMARY KEY CHECK (seq > 0),
    kind            text        NOT NULL,
    subject         text        NOT NULL, -- order id or invoice number, never PII
    idempotency_key text        NOT NULL UNIQUE,
    recorded_at     timestamptz NOT NULL,
    body            bytea       NOT NULL, -- the exact canonical JSON bytes that were hashed
    prev_hash       bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    signature       bytea       NOT NULL CHECK (length(signature) = 64),
    signing_key_id  text        NOT NULL REFERENCES signing_keys (key_id)
);
CREATE INDEX evidence_log_subject_kind ON evidence_log (subject, kind);

-- The chain's head. Appends lock this row FOR UPDATE, so the chain stays linear
-- under concurrency; seq 0 with 32 zero bytes is the genesis.
CREATE TABLE evidence_head (
    id   int    PRIMARY KEY CHECK (id = 1),
    seq  bigint NOT NULL,
    hash bytea  NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO evidence_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- +goose StatementBegin
CREATE FUNCTION evidence_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence_log is append-only'
        USING ERRCODE = 'restrict_violation',
              HINT = 'evidence is never changed or removed; append a correcting entry instead';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER evidence_log_append_only
    BEFORE UPDATE OR DELETE ON evidence_log
    FOR EACH ROW EXECUTE FUNCTION evidence_log_append_only();
CREATE TRIGGER evidence_log_no_truncate
    BEFORE TRUNCATE ON evidence_log
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_log_append_only();

-- The head only moves forward, one entry at a time, onto an entry that exists.
-- +goose StatementBegin
CREATE FUNCTION evidence_head_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'evidence_head cannot be deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.seq <> OLD.seq + 1 OR NOT EXISTS (
        SELECT 1 FROM evidence_log WHERE seq = NEW.seq AND hash = NEW.hash
    ) THEN
        RAISE EXCEPTION 'evidence_head must advance by one onto an existing entry (from % to %)', OLD.seq, NEW.seq
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER evidence_head_forward_only
    BEFORE UPDATE OR DELETE ON evidence_head
    FOR EACH ROW EXECUTE FUNCTION evidence_head_forward_only();
CREATE TRIGGER evidence_head_no_truncate
    BEFORE TRUNCATE ON evidence_head
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_head_forward_only();

-- +goose Down
DROP TABLE evidence_head;
DROP FUNCTION evidence_head_forward_only();
DROP TABLE evidence_log;
DROP FUNCTION evidence_log_append_only();
DROP TABLE signing_keys;
