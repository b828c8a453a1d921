-- +goose Up

-- Tax documents (VAT invoices, later credit notes) uploaded to Amazon with the
-- Feeds API (UPLOAD_VAT_INVOICE), one row per document: the TaxDocumentUpload
-- workflow (ID tax-document-upload-<document_number>) records each step before
-- it moves on, so a retry after a crash never creates a second feed.
-- attempts counts submissions (a transient rejection submits again; an operator's
-- re-run after a permanent one too); run_id and run_attempt name the workflow run
-- and its submission that made the latest one, so a retried activity finds its
-- own submission and a new run starts another; feed_document_id and feed_id are
-- those of the latest submission. No PII: numbers, ids, codes and times.
CREATE TABLE tax_document_uploads (
    document_number  text PRIMARY KEY CHECK (document_number ~ '^[A-Za-z0-9/_-]{1,64}$'),
    document_type    text        NOT NULL CHECK (document_type IN ('Invoice', 'CreditNote')),
    amazon_order_id  text        NOT NULL CHECK (amazon_order_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    state            text        NOT NULL CHECK (state IN ('submitting', 'processing', 'accepted', 'rejected')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_id           text        NOT NULL DEFAULT '',
    run_attempt      integer     NOT NULL DEFAULT 0,
    feed_document_id text,
    feed_id          text,
    result_code      text,
    evidence_seq     bigint,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    CHECK ((state IN ('accepted', 'rejected')) = (finished_at IS NOT NULL)),
    CHECK (state <> 'processing' OR feed_id IS NOT NULL)
);
CREATE INDEX tax_document_uploads_order ON tax_document_uploads (amazon_order_id);

GRANT SELECT, INSERT ON tax_document_uploads TO dpp_worker;
GRANT UPDATE (state, attempts, run_id, run_attempt, feed_document_id, feed_id, result_code, evidence_seq, updated_at, finished_at)
    ON tax_document_uploads TO dpp_worker;
GRANT SELECT ON tax_document_uploads TO dpp_auditor;

-- +goose Down
REVOKE ALL ON tax_document_uploads FROM dpp_worker, dpp_auditor;
DROP TABLE tax_document_uploads;
