-- +goose Up

-- Key epochs (issue 11): deleting an order's rows erases the live database, but WAL,
-- PITR archives, snapshots, replicas and dumps keep the wrapped data key. Those copies
-- die only with the KMS key that wraps them, so PII data keys are wrapped by one KMS
-- key per epoch (alias/dpp/pii/<epoch start>) and tax records by one per year
-- (alias/dpp/tax/<YYYY>). When an epoch's lifetime ends, the data keys that must
-- outlive it are re-wrapped (KMS ReEncrypt) into the current epoch and the key is
-- scheduled for deletion. data_keys.kms_key_id keeps the key that wraps each data key
-- now; a data key under a key with no row here is under DPP_KMS_KEY_ID ("epoch zero":
-- every row sealed before this migration).
--
--   state   active            new data keys may be wrapped by it
--           retiring          its lifetime is over: nothing new goes under it, survivors
--                             are being re-wrapped out of it
--           pending-deletion  ScheduleKeyDeletion succeeded: KMS refuses to use it, and
--                             destroys it at deletion_date
--           deleted           DescribeKey no longer finds it
CREATE TABLE key_epochs (
    kms_key_id            text PRIMARY KEY,  -- the KMS key's ARN, as data_keys.kms_key_id holds it
    alias                 text        NOT NULL UNIQUE,
    purpose               text        NOT NULL CHECK (purpose IN ('pii', 'tax-record')),
    starts_at             timestamptz NOT NULL,
    ends_at               timestamptz NOT NULL, -- exclusive
    retire_at             timestamptz NOT NULL, -- pii: starts_at + DPP_KEY_EPOCH_LIFETIME; tax: the year's end
    state                 text        NOT NULL DEFAULT 'active'
                          CHECK (state IN ('active', 'retiring', 'pending-deletion', 'deleted')),
    rewrapped_out         integer     NOT NULL DEFAULT 0,
    deletion_scheduled_at timestamptz,
    deletion_date         timestamptz,
    certificate_seq       bigint,
    deleted_at            timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK ((state IN ('pending-deletion', 'deleted')) = (deletion_date IS NOT NULL))
);
CREATE INDEX key_epochs_due ON key_epochs (retire_at) WHERE state IN ('active', 'retiring');

-- Which orders' data keys each epoch key wrapped, sealed under it or re-wrapped into
-- it: ids only, kept after the purge (like orders' tombstones) so the epoch
-- certificate can count them and hash their ids.
CREATE TABLE key_epoch_members (
    kms_key_id      text NOT NULL REFERENCES key_epochs (kms_key_id),
    amazon_order_id text NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('pii', 'tax-record')),
    how             text NOT NULL CHECK (how IN ('sealed', 'rewrapped')),
    PRIMARY KEY (kms_key_id, purpose, amazon_order_id)
);
CREATE INDEX key_epoch_members_order ON key_epoch_members (amazon_order_id);

-- Re-wrapping finds the data keys of an epoch by the key that wraps them.
CREATE INDEX data_keys_kms_key_id ON data_keys (kms_key_id);

GRANT SELECT, INSERT ON key_epochs, key_epoch_members TO dpp_worker;
GRANT UPDATE (state, rewrapped_out, deletion_scheduled_at, deletion_date, certificate_seq, deleted_at)
    ON key_epochs TO dpp_worker;
-- Re-wrapping replaces a data key's wrapped form and the key that wraps it, in place.
GRANT UPDATE (kms_key_id, wrapped_key) ON data_keys TO dpp_worker;
-- The auditor reads which key protects which order: ids and dates, no key material.
GRANT SELECT ON key_epochs, key_epoch_members TO dpp_auditor;

-- +goose Down
REVOKE UPDATE (kms_key_id, wrapped_key) ON data_keys FROM dpp_worker;
REVOKE ALL ON key_epochs, key_epoch_members FROM dpp_worker, dpp_auditor;
DROP INDEX data_keys_kms_key_id;
DROP TABLE key_epoch_members;
DROP TABLE key_epochs;
