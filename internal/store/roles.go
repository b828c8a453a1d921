package store

// The database roles schemas/migrations/00003_roles.sql creates (when missing) and
// grants to. The role that runs the migrations owns the schema and keeps every
// right on it.
const (
	// WorkerRole is what the worker and starter connect as (DATABASE_URL): it may
	// seal and erase PII and append evidence, never change or remove evidence.
	WorkerRole = "dpp_worker"
	// AuditorRole may read evidence, signing public keys and non-PII metadata,
	// and no ciphertext.
	AuditorRole = "dpp_auditor"
)
