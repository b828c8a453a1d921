-- +goose Up

-- The compliance calendar (issue 13): each occurrence of a periodic duty of the
-- policy (LWA client secret rotation, the annual risk assessment, the six-monthly
-- incident-plan review, the 30-day vulnerability scan) is one ComplianceDuty
-- workflow (ID duty-<duty>-<period>) and one row here, opened when the workflow
-- starts and completed, with its evidence entry, in one transaction.
-- No PII: completed_by is a person or Slack user id, never a name or address.

-- Reports attached as evidence (a vulnerability scan's report, an assessment):
-- uploaded by a person (`starter duty complete --report FILE`) or by a scanner's
-- webhook (POST /duties/vulnerability-scan/report). Kept by digest, so the same
-- report sent twice is stored once. Reports must not hold personal data.
CREATE TABLE duty_reports (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    duty         text        NOT NULL,
    source       text        NOT NULL CHECK (source ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    media_type   text        NOT NULL,
    received_at  timestamptz NOT NULL,
    content      bytea       NOT NULL CHECK (length(content) <= 8388608)
);

CREATE TABLE duty_occurrences (
    workflow_id   text PRIMARY KEY CHECK (workflow_id = 'duty-' || duty || '-' || period),
    duty          text        NOT NULL CHECK (duty IN ('lwa-secret-rotation', 'risk-assessment',
                                                       'incident-plan-review', 'vulnerability-scan')),
    period        text        NOT NULL CHECK (period ~ '^[A-Za-z0-9-]{1,32}$'),
    opened_at     timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    completed_at  timestamptz,
    completed_by  text,
    -- lwa-secret-rotation only: when the new client secret was issued; the next
    -- rotation is due 180 days later.
    rotated_at    timestamptz,
    report_sha256 text REFERENCES duty_reports (sha256),
    evidence_seq  bigint,
    UNIQUE (duty, period),
    CHECK ((completed_at IS NULL) = (completed_by IS NULL))
);
CREATE INDEX duty_occurrences_open ON duty_occurrences (duty, due_at) WHERE completed_at IS NULL;

-- Alerts when a promise slips: one row per raising of a condition (key, e.g.
-- 'purge-overdue' or 'schedule-failed/order-sync'); at most one open row per key,
-- so a condition is announced once, and again only after it cleared and came back.
-- notified_* record that the Slack message went out, so a retried check never
-- sends it twice and a failed send is retried. detail holds ids and counts only.
CREATE TABLE alerts (
    id                bigserial PRIMARY KEY,
    key               text        NOT NULL CHECK (key ~ '^[a-z][a-z0-9-]*(/[A-Za-z0-9._:@-]+)*$'),
    kind              text        NOT NULL,
    detail            jsonb       NOT NULL,
    raised_at         timestamptz NOT NULL,
    raise_notified_at timestamptz,
    cleared_at        timestamptz,
    clear_notified_at timestamptz,
    slack_channel     text,
    slack_ts          text
);
CREATE UNIQUE INDEX alerts_open ON alerts (key) WHERE cleared_at IS NULL;

-- Counters the alert check compares with the previous check (a schedule's skipped
-- actions): a rise raises the alert.
CREATE TABLE alert_counters (
    key        text PRIMARY KEY,
    value      bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Non-PII Amazon Information older than the policy's 18 months (AmazonDataSweep):
-- an order's facts (items, totals) are emptied once its PII is purged and it was
-- bought more than DPP_AMAZON_DATA_RETENTION ago; the row stays as the tombstone
-- that keeps the order from ever being fetched again. Resolved sync rejects that old
-- are deleted. Invoices are tax records, kept and swept by TaxRecordSweep.
ALTER TABLE orders ADD COLUMN facts_swept_at timestamptz;
CREATE INDEX orders_facts_due ON orders (purchased_at) WHERE facts_swept_at IS NULL AND purged_at IS NOT NULL;

GRANT SELECT, INSERT ON duty_reports, duty_occurrences, alerts, alert_counters TO dpp_worker;
GRANT UPDATE (completed_at, completed_by, rotated_at, report_sha256, evidence_seq, due_at) ON duty_occurrences TO dpp_worker;
GRANT UPDATE (detail, raise_notified_at, cleared_at, clear_notified_at, slack_channel, slack_ts) ON alerts TO dpp_worker;
GRANT UPDATE (value, updated_at) ON alert_counters TO dpp_worker;
GRANT USAGE ON SEQUENCE alerts_id_seq TO dpp_worker;
GRANT UPDATE (facts, facts_swept_at) ON orders TO dpp_worker;
GRANT DELETE ON sync_rejects TO dpp_worker;
GRANT SELECT ON duty_occurrences, alerts TO dpp_auditor;
GRANT SELECT (sha256, duty, source, media_type, received_at) ON duty_reports TO dpp_auditor;

-- +goose Down
REVOKE DELETE ON sync_rejects FROM dpp_worker;
REVOKE UPDATE (facts, facts_swept_at) ON orders FROM dpp_worker;
DROP INDEX orders_facts_due;
ALTER TABLE orders DROP COLUMN facts_swept_at;
REVOKE ALL ON duty_reports, duty_occurrences, alerts, alert_counters FROM dpp_worker, dpp_auditor;
REVOKE ALL ON SEQUENCE alerts_id_seq FROM dpp_worker;
DROP TABLE alert_counters;
DROP TABLE alerts;
DROP TABLE duty_occurrences;
DROP TABLE duty_reports;
