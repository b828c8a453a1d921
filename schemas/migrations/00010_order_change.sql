-- +goose Up

-- ORDER_CHANGE notifications the consumer has handed to workflows (issue 14). The
-- notification id makes a duplicate delivery a no-op; OrderSync reads the order ids
-- to count what notifications missed. No PII: ids, Amazon's status and times only
-- (the notification's postcode is never decoded).
CREATE TABLE order_notifications (
    notification_id text        PRIMARY KEY,          -- NotificationMetadata.NotificationId
    amazon_order_id text        NOT NULL,
    order_status    text        NOT NULL,             -- Summary.OrderStatus, e.g. Unshipped, Canceled
    changed_at      timestamptz NOT NULL,             -- OrderChangeTrigger.TimeOfOrderChange
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_notifications_order ON order_notifications (amazon_order_id, changed_at);

GRANT SELECT, INSERT ON order_notifications TO dpp_worker;
GRANT SELECT ON order_notifications TO dpp_auditor;

-- +goose Down
REVOKE ALL ON order_notifications FROM dpp_worker, dpp_auditor;
DROP TABLE order_notifications;
