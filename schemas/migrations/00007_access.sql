-- +goose Up

-- The access registry (issue 9): who works here, which accounts they hold in which
-- system, and what the access review, offboarding and lockout need to remember.
--
-- Staff names and e-mail addresses are personal data, kept like buyer PII: each person
-- has a data key wrapped by KMS (encryption context {"orderId": "person/<id>",
-- "purpose": "staff"}) and the two fields are AES-256-GCM ciphertexts bound to the
-- person and field. Everything else here is ids, flags and times: what workflows,
-- evidence and logs may carry.
CREATE TABLE people (
    id             text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9._-]{0,63}$'),
    slack_user_id  text UNIQUE CHECK (slack_user_id ~ '^[UW][A-Z0-9]{2,}$'),
    manager_id     text REFERENCES people (id) DEFERRABLE INITIALLY DEFERRED,
    status         text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'terminated')),
    terminated_at  timestamptz,
    kms_key_id     text        NOT NULL,
    wrapped_key    bytea       NOT NULL,
    name_sealed    bytea       NOT NULL,
    email_sealed   bytea       NOT NULL,
    imported_at    timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'terminated') = (terminated_at IS NOT NULL)),
    CHECK (manager_id IS DISTINCT FROM id)
);

-- An account in a system (a PostgreSQL login role in system 'postgres'; anything else
-- is disabled by hand and confirmed, the 'registry' connector). person_id NULL: the
-- account is mapped to nobody, which the review flags.
--   disable_requested_at  the registry connector asked a person to disable it
--   disabled_at           registry: confirmed disabled by disabled_by (a person id)
CREATE TABLE accounts (
    system               text    NOT NULL CHECK (system ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    account              text    NOT NULL CHECK (length(account) BETWEEN 1 AND 128),
    person_id            text    REFERENCES people (id),
    amazon_data          boolean NOT NULL,
    service              boolean NOT NULL,
    last_seen_at         timestamptz,
    disable_requested_at timestamptz,
    disabled_at          timestamptz,
    disabled_by          text,
    PRIMARY KEY (system, account)
);
CREATE INDEX accounts_person ON accounts (person_id);

-- Consecutive failed logins per account (lockout, DPP_LOCKOUT_THRESHOLD). Events at
-- or before last_event_at are ignored, so a log shipped twice counts once.
--   locked_at    the threshold was reached: the account must be disabled; cleared when
--                the DPO's approval re-enables it (both are evidence)
--   disabled_at  its connector disabled it and verified that (a lock without it is
--                retried by every later request until it holds)
CREATE TABLE login_streaks (
    system        text        NOT NULL,
    account       text        NOT NULL,
    failures      integer     NOT NULL DEFAULT 0,
    last_event_at timestamptz NOT NULL,
    locked_at     timestamptz,
    disabled_at   timestamptz,
    PRIMARY KEY (system, account)
);

-- Slack messages a workflow may update later (chat.update needs channel and ts): a
-- reviewer's list in a campaign, an offboarding task. ref is e.g.
-- 'access-review-2026-Q4/reviewer/p-7'.
CREATE TABLE slack_messages (
    ref        text PRIMARY KEY,
    channel    text        NOT NULL,
    ts         text        NOT NULL,
    posted_at  timestamptz NOT NULL DEFAULT now()
);

-- dpp_worker imports the registry (starter access import), marks leavers, records
-- registry disables, counts login failures and remembers messages.
GRANT SELECT, INSERT ON people, accounts, login_streaks, slack_messages TO dpp_worker;
GRANT UPDATE (slack_user_id, manager_id, status, terminated_at, name_sealed, email_sealed, updated_at) ON people TO dpp_worker;
GRANT UPDATE (person_id, amazon_data, service, last_seen_at, disable_requested_at, disabled_at, disabled_by) ON accounts TO dpp_worker;
GRANT UPDATE (failures, last_event_at, locked_at, disabled_at) ON login_streaks TO dpp_worker;
GRANT UPDATE (channel, ts, posted_at) ON slack_messages TO dpp_worker;
-- The auditor sees the registry without the sealed names and e-mails.
GRANT SELECT (id, slack_user_id, manager_id, status, terminated_at, imported_at, updated_at) ON people TO dpp_auditor;
GRANT SELECT ON accounts, login_streaks TO dpp_auditor;

-- +goose Down
REVOKE ALL ON people, accounts, login_streaks, slack_messages FROM dpp_worker, dpp_auditor;
DROP TABLE slack_messages;
DROP TABLE login_streaks;
DROP TABLE accounts;
DROP TABLE people;
