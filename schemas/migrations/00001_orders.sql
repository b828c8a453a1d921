-- +goose Up

-- Non-PII facts about each order. A row with purged_at set is a tombstone:
-- the order's PII has been crypto-erased and must never be fetched again.
CREATE TABLE orders (
    amazon_order_id    text PRIMARY KEY,
    marketplace_id     text        NOT NULL,
    purchased_at       timestamptz NOT NULL,
    latest_delivery_at timestamptz,
    is_business        boolean     NOT NULL,
    currency           text        NOT NULL,
    facts              jsonb       NOT NULL, -- items, totals: never PII
    sealed_at          timestamptz NOT NULL DEFAULT now(),
    purged_at          timestamptz,
    purge_reason       text
);

-- One AES-256 data key per order and purpose ('pii', 'tax-record'), wrapped by KMS.
-- The KMS key id is kept per wrapped key so keys per retention period can later be
-- scheduled for deletion in KMS (closing the WAL/backup gap).
CREATE TABLE data_keys (
    key_ref          text PRIMARY KEY, -- '<purpose>/<amazonOrderId>'
    amazon_order_id  text        NOT NULL,
    purpose          text        NOT NULL CHECK (purpose IN ('pii', 'tax-record')),
    kms_key_id       text        NOT NULL,
    wrapped_key      bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (amazon_order_id, purpose)
);

-- Buyer PII, one AES-256-GCM ciphertext per field; never plaintext.
CREATE TABLE sealed_fields (
    amazon_order_id text  NOT NULL,
    field           text  NOT NULL,
    key_ref         text  NOT NULL REFERENCES data_keys (key_ref),
    ciphertext      bytea NOT NULL,
    PRIMARY KEY (amazon_order_id, field)
);
CREATE INDEX sealed_fields_key_ref ON sealed_fields (key_ref);

-- Gap-free invoice numbering: a counter row per series, updated in the same
-- transaction as the invoice insert (a SEQUENCE is not gap-free).
CREATE TABLE invoice_counters (
    series      text PRIMARY KEY,
    last_number bigint NOT NULL DEFAULT 0
);

-- VAT invoices are tax records (6 years). The PDF is sealed with its own data key;
-- the row stays after the tax-record purge as evidence that the number was used.
CREATE TABLE invoices (
    series          text        NOT NULL,
    number          bigint      NOT NULL,
    invoice_number  text        NOT NULL UNIQUE,
    amazon_order_id text        NOT NULL UNIQUE,
    kind            text        NOT NULL CHECK (kind IN ('full', 'simplified')),
    issued_at       timestamptz NOT NULL,
    tax_point       timestamptz NOT NULL,
    currency        text        NOT NULL,
    total_net       bigint      NOT NULL, -- minor units
    total_vat       bigint      NOT NULL,
    total_gross     bigint      NOT NULL,
    key_ref         text REFERENCES data_keys (key_ref),
    pdf_sealed      bytea,
    retain_until    timestamptz NOT NULL,
    purged_at       timestamptz,
    PRIMARY KEY (series, number),
    CHECK ((purged_at IS NULL) = (pdf_sealed IS NOT NULL AND key_ref IS NOT NULL))
);
CREATE INDEX invoices_due_for_purge ON invoices (retain_until) WHERE purged_at IS NULL;

-- OrderSync's watermark: the lastUpdatedBefore of the last fully processed search.
CREATE TABLE sync_state (
    name       text PRIMARY KEY,
    watermark  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sync_state;
DROP TABLE invoices;
DROP TABLE invoice_counters;
DROP TABLE sealed_fields;
DROP TABLE data_keys;
DROP TABLE orders;
