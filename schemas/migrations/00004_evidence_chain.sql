-- +goose Up

-- Issue 7: evidence its writer cannot rewrite.
--
-- 1. Every INSERT into evidence_log must extend the chain: seq = head seq + 1 and
--    prev_hash = head hash, checked under the head row's lock, and the head then moves
--    onto the new entry in the same statement. No role, the owner included, can leave a
--    gap, fork the chain or insert an entry the head does not point through. (The owner
--    can still switch triggers off: that is why auditors verify with public keys pinned
--    outside the database and compare against heads published outside it.)
-- 2. dpp_worker may read the migration table, so a worker checks that the schema is
--    current (read-only) instead of migrating it: only `starter migrate` migrates.
--
-- Both trigger functions run with the rights of the role inserting (no SECURITY
-- DEFINER): dpp_worker already holds what they use (SELECT ... FOR UPDATE and UPDATE of
-- evidence_head's seq and hash); dpp_auditor may not insert at all.

-- +goose StatementBegin
CREATE FUNCTION evidence_log_extends_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq  bigint;
    head_hash bytea;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM evidence_head WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'evidence_head is missing' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
        RAISE EXCEPTION 'evidence_log entries must extend the chain: the next entry is seq % with prev_hash % (the head''s hash), got seq % with prev_hash %',
                head_seq + 1, encode(head_hash, 'hex'), NEW.seq, encode(NEW.prev_hash, 'hex')
            USING ERRCODE = 'restrict_violation',
                  HINT = 'append through the evidence package, which locks the head first';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION evidence_log_advance_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- evidence_head_forward_only checks that this is one step onto the new entry.
    UPDATE evidence_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER evidence_log_extends_chain
    BEFORE INSERT ON evidence_log
    FOR EACH ROW EXECUTE FUNCTION evidence_log_extends_chain();
CREATE TRIGGER evidence_log_advance_head
    AFTER INSERT ON evidence_log
    FOR EACH ROW EXECUTE FUNCTION evidence_log_advance_head();

-- The head still moves only forward, one entry at a time, onto an existing entry. An
-- UPDATE that changes nothing is now allowed: the insert has already moved the head, and
-- a worker built before this migration still sets it to the same place afterwards.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION evidence_head_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'evidence_head cannot be deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.seq = OLD.seq AND NEW.hash = OLD.hash THEN
        RETURN NEW;
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

-- The worker reads which migrations are applied (and refuses to start when one is
-- missing); it never writes the table.
GRANT SELECT ON goose_db_version TO dpp_worker;

-- +goose Down
REVOKE ALL ON goose_db_version FROM dpp_worker;
DROP TRIGGER evidence_log_advance_head ON evidence_log;
DROP TRIGGER evidence_log_extends_chain ON evidence_log;
DROP FUNCTION evidence_log_advance_head();
DROP FUNCTION evidence_log_extends_chain();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION evidence_head_forward_only() RETURNS trigger
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
