package app

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/evidence"
)

// Auditor is what the auditor's commands use: a read-only connection and, for
// the commands that check signatures, the pinned public keys. It needs no KMS,
// no signing key, no Temporal and no migrations; dpp_auditor's rights suffice.
type Auditor struct {
	Pool *pgxpool.Pool
	// Keys are the pinned public keys from DPP_EVIDENCE_KEYS (nil when the
	// command did not ask for them).
	Keys map[string]ed25519.PublicKey
}

// OpenAuditor loads the pinned keys (when cfg names them) and connects with
// DATABASE_URL. Every transaction of the connection is read-only
// (default_transaction_read_only), whatever role the URL names.
func OpenAuditor(ctx context.Context, cfg *config.Auditor) (*Auditor, error) {
	a := &Auditor{}
	if cfg.EvidenceKeysFile != "" {
		keys, err := evidence.LoadKeysFile(cfg.EvidenceKeysFile)
		if err != nil {
			return nil, fmt.Errorf("DPP_EVIDENCE_KEYS: %w", err)
		}
		a.Keys = keys
	}
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pc.MaxConns = 2
	if a.Pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := a.Pool.Ping(ctx); err != nil {
		a.Pool.Close()
		return nil, fmt.Errorf("DATABASE_URL: cannot reach PostgreSQL: %w%s", err, roleHint(err))
	}
	return a, nil
}

// Close closes the connection.
func (a *Auditor) Close() { a.Pool.Close() }

// Verify checks the whole chain with the pinned keys and the published heads.
func (a *Auditor) Verify(ctx context.Context, heads []evidence.Head) (evidence.VerifyReport, error) {
	if a.Keys == nil {
		return evidence.VerifyReport{}, fmt.Errorf("no pinned keys: set DPP_EVIDENCE_KEYS")
	}
	return evidence.VerifyWith(ctx, a.Pool, evidence.VerifyOptions{Keys: a.Keys, Heads: heads})
}

// Certificates returns an order's checked certificates (CheckCertificates) with
// the pinned keys and the published heads.
func (a *Auditor) Certificates(ctx context.Context, amazonOrderID string, heads []evidence.Head) ([]CheckedCertificate, error) {
	if a.Keys == nil {
		return nil, fmt.Errorf("no pinned keys: set DPP_EVIDENCE_KEYS")
	}
	return CheckCertificates(ctx, a.Pool, evidence.VerifyOptions{Keys: a.Keys, Heads: heads}, amazonOrderID)
}
