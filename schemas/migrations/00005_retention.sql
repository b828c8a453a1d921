-- +goose Up

-- The database, not only each order's workflow, knows when the order's PII is due
-- for purge and whether a legal hold stops it: RetentionAudit purges every sealed
-- order past its due time that is not held, whatever became of its workflow
-- (failed, terminated, timed out, never started).
--
--   purge_due_at  delivery (reported, or the promised latest delivery) + the PII
--                 retention; the request time for purge-now and cancellation. Set when
--                 the order is sealed and whenever the workflow changes it. NULL only on
--                 rows sealed before this migration: RetentionAudit then takes
--                 latest_delivery_at + DPP_PII_RETENTION.
--   on_hold       a legal hold is in place: no purge until it is released.
--   problem       the reason code of a step that failed for good (e.g.
--                 invoice-no-buyer-address): the order still goes on to its purge; the
--                 code, never free text, is also in the evidence log.
ALTER TABLE orders
    ADD COLUMN purge_due_at timestamptz,
    ADD COLUMN on_hold      boolean NOT NULL DEFAULT false,
    ADD COLUMN problem      text CHECK (problem ~ '^[a-z0-9-]{1,64}$');
CREATE INDEX orders_purge_due ON orders (purge_due_at) WHERE purged_at IS NULL;

GRANT UPDATE (purge_due_at, on_hold, problem) ON orders TO dpp_worker;
-- dpp_auditor reads the new columns through its table-wide SELECT on orders.

-- +goose Down
REVOKE UPDATE (purge_due_at, on_hold, problem) ON orders FROM dpp_worker;
DROP INDEX orders_purge_due;
ALTER TABLE orders DROP COLUMN problem, DROP COLUMN on_hold, DROP COLUMN purge_due_at;
