-- +goose Up

-- Orders OrderSync found malformed (issue 7): one bad order no longer fails its
-- searchOrders page, so the watermark moves on; it is remembered here and asked for
-- again (getOrder) on later passes until it is valid, then its lifecycle starts.
-- No PII: the order number (not PII, as in orders), or for an order without a usable
-- one a digest of its document; the reason is a JSON path and a fixed problem, never a value.
CREATE TABLE sync_rejects (
    sync_name       text        NOT NULL,              -- the watermark's name (sync_state.name)
    reject_key      text        NOT NULL,              -- amazon_order_id, or 'digest:<hex>' without one
    amazon_order_id text,                              -- NULL: no usable orderId, cannot be asked for again
    reason_code     text        NOT NULL,              -- e.g. 'order.createdTime: not an RFC 3339 date-time'
    first_seen_at   timestamptz NOT NULL,              -- first seen malformed (since last resolved)
    last_seen_at    timestamptz NOT NULL,              -- last seen malformed (search or retry)
    attempts        integer     NOT NULL DEFAULT 1,    -- times seen malformed
    resolved_at     timestamptz,                       -- when it was found valid and handled
    resolution      text,                              -- valid-on-retry | valid-in-search | dismissed (by an operator)
    PRIMARY KEY (sync_name, reject_key),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL)),
    CHECK ((amazon_order_id IS NULL) = (reject_key LIKE 'digest:%'))
);
CREATE INDEX sync_rejects_unresolved ON sync_rejects (sync_name, last_seen_at) WHERE resolved_at IS NULL;

-- dpp_worker records (INSERT ... ON CONFLICT DO UPDATE), retries and resolves; the
-- auditor may read it: it holds no PII.
GRANT SELECT, INSERT ON sync_rejects TO dpp_worker;
GRANT UPDATE (reason_code, first_seen_at, last_seen_at, attempts, resolved_at, resolution) ON sync_rejects TO dpp_worker;
GRANT SELECT ON sync_rejects TO dpp_auditor;

-- +goose Down
REVOKE ALL ON sync_rejects FROM dpp_worker, dpp_auditor;
DROP TABLE sync_rejects;
