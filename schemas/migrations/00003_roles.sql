-- +goose Up

-- Least-privilege database roles (issue 3).
--
--   migration role  whoever runs these migrations (DPP_MIGRATIONS_DATABASE_URL): owns every
--                   table, function and trigger, and keeps all rights on them.
--   dpp_worker      the worker and starter (DATABASE_URL): exactly the statements the code runs.
--                   It seals and erases PII (sealed_fields, data_keys), records order and
--                   invoice facts, and appends evidence, but cannot change or remove evidence,
--                   truncate, drop or alter anything.
--   dpp_auditor     read-only: evidence, signing public keys and non-PII metadata; no
--                   ciphertext (sealed_fields, data_keys, invoices.pdf_sealed,
--                   signing_keys.sealed_private_key).
--
-- Roles are cluster-wide and created here only when missing, with LOGIN and no password:
-- production sets passwords out of band (ALTER ROLE dpp_worker PASSWORD '...'), or creates
-- the roles beforehand, in which case the migration role needs no CREATEROLE. Two databases
-- of one cluster migrated at the same time (parallel test binaries building templates, two
-- environments) may both try to create a role: the loser's error is caught (duplicate_object,
-- or unique_violation on pg_authid when it waited for the winner's commit).
--
-- Grants are per database and live here, so every migrated database, and every test
-- database cloned from a migrated template, carries them. A table or column added by a
-- later migration, or a new kind of statement in the code, needs its grant in a migration.

-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dpp_worker', 'dpp_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by a concurrent migration of another database
            END;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- USAGE on the schema that holds the tables (public unless the search_path says otherwise).
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO dpp_worker, dpp_auditor',
        (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = 'orders'::regclass));
END
$$;
-- +goose StatementEnd

-- dpp_worker. UPDATE is granted per column: only what the code changes.
--   seal:     INSERT orders ON CONFLICT DO NOTHING, INSERT data_keys, COPY INTO sealed_fields
--   read:     SELECT orders, sealed_fields, data_keys, invoices (incl. pdf_sealed)
--   invoice:  INSERT invoice_counters ON CONFLICT DO NOTHING, SELECT ... FOR UPDATE and
--             UPDATE invoice_counters.last_number, INSERT data_keys, INSERT invoices
--   purge:    SELECT orders FOR UPDATE, UPDATE orders (purged_at, purge_reason),
--             DELETE sealed_fields, DELETE data_keys, UPDATE invoices (pdf_sealed, key_ref,
--             purged_at), SELECT invoices FOR UPDATE SKIP LOCKED
--   sync:     SELECT sync_state, INSERT ... ON CONFLICT DO UPDATE (watermark, updated_at)
--   evidence: SELECT/INSERT evidence_log, SELECT evidence_head FOR UPDATE and UPDATE (seq,
--             hash; its trigger lets the head only move forward), SELECT/INSERT signing_keys
--             (the first start creates the signing key)
GRANT SELECT, INSERT, DELETE ON sealed_fields, data_keys TO dpp_worker;
GRANT SELECT, INSERT ON orders, invoices, invoice_counters, sync_state, evidence_log, signing_keys TO dpp_worker;
GRANT UPDATE (purged_at, purge_reason) ON orders TO dpp_worker;
GRANT UPDATE (pdf_sealed, key_ref, purged_at) ON invoices TO dpp_worker;
GRANT UPDATE (last_number) ON invoice_counters TO dpp_worker;
GRANT UPDATE (watermark, updated_at) ON sync_state TO dpp_worker;
GRANT SELECT ON evidence_head TO dpp_worker;
GRANT UPDATE (seq, hash) ON evidence_head TO dpp_worker;

-- dpp_auditor: read-only, and no ciphertext.
GRANT SELECT ON evidence_log, evidence_head, orders, invoice_counters, sync_state TO dpp_auditor;
GRANT SELECT (key_id, public_key, created_at, retired_at) ON signing_keys TO dpp_auditor;
GRANT SELECT (series, number, invoice_number, amazon_order_id, kind, issued_at, tax_point, currency,
              total_net, total_vat, total_gross, key_ref, retain_until, purged_at)
    ON invoices TO dpp_auditor;

-- +goose Down
-- The roles stay: they are cluster-wide and other databases may use them.
-- (Revoking a table's privileges revokes its column privileges too.)
REVOKE ALL ON orders, data_keys, sealed_fields, invoice_counters, invoices, sync_state,
    signing_keys, evidence_log, evidence_head FROM dpp_worker, dpp_auditor;
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM dpp_worker, dpp_auditor',
        (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = 'orders'::regclass));
END
$$;
-- +goose StatementEnd
