-- +goose Up

-- Credit notes (issue 14): an order cancelled, refunded or partly refunded after its
-- invoice gets a credit note with its own number in a gap-free series (its counter is a
-- row of invoice_counters, series DPP_CREDIT_NOTE_SERIES), referencing the invoice,
-- reversing amounts and VAT. A credit note is a tax record like the invoice, kept as
-- long, but under its own data key: purpose 'credit-note', one per order (all the
-- order's credit notes are sealed under it), wrapped by the tax-record epoch key of the
-- year of the first credit note, erased by the tax-record sweep once the last of the
-- order's credit notes is past its retention.
ALTER TABLE data_keys DROP CONSTRAINT data_keys_purpose_check,
    ADD CONSTRAINT data_keys_purpose_check CHECK (purpose IN ('pii', 'tax-record', 'credit-note'));
-- key_epochs.purpose stays: a credit-note key lives under a 'tax-record' epoch key. The
-- member rows name the data key's purpose, so the epoch's certificate counts both.
ALTER TABLE key_epoch_members DROP CONSTRAINT key_epoch_members_purpose_check,
    ADD CONSTRAINT key_epoch_members_purpose_check CHECK (purpose IN ('pii', 'tax-record', 'credit-note'));

-- The invoice document as issued (lines by order item, the customer block of a full
-- invoice), sealed under the tax-record key with the PDF: a credit note shows the
-- invoice's customer details, and may be issued after the order's PII was purged (a
-- refund 60 days after delivery) without the PII. NULL on invoices issued before this
-- migration (rebuilt from the sealed PII while the order is not purged) and after the
-- tax-record purge.
ALTER TABLE invoices ADD COLUMN document_sealed bytea,
    ADD CONSTRAINT invoices_document_purged CHECK (purged_at IS NULL OR document_sealed IS NULL);

CREATE TABLE credit_notes (
    series             text        NOT NULL,
    number             bigint      NOT NULL,
    credit_note_number text        NOT NULL UNIQUE,
    amazon_order_id    text        NOT NULL,
    invoice_number     text        NOT NULL REFERENCES invoices (invoice_number),
    -- What the credit note answers: 'cancellation' or 'refund/<refundId>'. A repeated
    -- notification, signal or retry finds its row and issues nothing.
    source_id          text        NOT NULL CHECK (source_id ~ '^(cancellation|refund/[A-Za-z0-9._:-]{1,64})$'),
    reason_code        text        NOT NULL CHECK (reason_code ~ '^[a-z0-9-]{1,64}$'),
    requested_by       text        NOT NULL CHECK (requested_by ~ '^[a-z][a-z0-9._-]{0,63}$'), -- operator id or system name
    -- Per credited line: order item id, SKU, quantity, VAT rate, net, VAT, gross (minor
    -- units). Product facts and amounts, never PII.
    lines              jsonb       NOT NULL,
    currency           text        NOT NULL,
    total_net          bigint      NOT NULL CHECK (total_net >= 0),
    total_vat          bigint      NOT NULL CHECK (total_vat >= 0),
    total_gross        bigint      NOT NULL CHECK (total_gross > 0 AND total_gross = total_net + total_vat),
    issued_at          timestamptz NOT NULL,
    key_ref            text REFERENCES data_keys (key_ref),
    pdf_sealed         bytea,
    retain_until       timestamptz NOT NULL,
    purged_at          timestamptz,
    PRIMARY KEY (series, number),
    UNIQUE (amazon_order_id, source_id),
    CHECK ((purged_at IS NULL) = (pdf_sealed IS NOT NULL AND key_ref IS NOT NULL))
);
CREATE INDEX credit_notes_order ON credit_notes (amazon_order_id);
CREATE INDEX credit_notes_due_for_purge ON credit_notes (retain_until) WHERE purged_at IS NULL;

GRANT UPDATE (document_sealed) ON invoices TO dpp_worker;
GRANT SELECT, INSERT ON credit_notes TO dpp_worker;
GRANT UPDATE (pdf_sealed, key_ref, purged_at) ON credit_notes TO dpp_worker;
-- The auditor reads numbers, amounts and dates; no ciphertext.
GRANT SELECT (series, number, credit_note_number, amazon_order_id, invoice_number, source_id, reason_code,
              requested_by, lines, currency, total_net, total_vat, total_gross, issued_at, key_ref,
              retain_until, purged_at)
    ON credit_notes TO dpp_auditor;

-- +goose Down
REVOKE ALL ON credit_notes FROM dpp_worker, dpp_auditor;
REVOKE UPDATE (document_sealed) ON invoices FROM dpp_worker;
DROP TABLE credit_notes;
ALTER TABLE invoices DROP CONSTRAINT invoices_document_purged, DROP COLUMN document_sealed;
ALTER TABLE key_epoch_members DROP CONSTRAINT key_epoch_members_purpose_check,
    ADD CONSTRAINT key_epoch_members_purpose_check CHECK (purpose IN ('pii', 'tax-record'));
ALTER TABLE data_keys DROP CONSTRAINT data_keys_purpose_check,
    ADD CONSTRAINT data_keys_purpose_check CHECK (purpose IN ('pii', 'tax-record'));
