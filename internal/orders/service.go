// Package orders keeps an order's data the way the policy promises: PII sealed
// per field under a per-order KMS data key, a gap-free VAT invoice sealed as a tax
// record, and Cryptographic Erase with a signed certificate. Activities and the
// starter call it; it never talks to Temporal.
package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/invoice"
	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/vault"
)

// Purposes of data keys: each purpose of an order has its own key, so erasing the
// PII leaves the tax record readable, and the other way round.
const (
	PurposePII       = "pii"
	PurposeTaxRecord = "tax-record"
)

// Policy holds the settings of the data protection policy this service applies.
type Policy struct {
	PIIRetention     time.Duration // DPP_PII_RETENTION
	TaxRetention     time.Duration // DPP_TAX_RETENTION
	DeliveryFallback time.Duration // DPP_DELIVERY_FALLBACK

	Seller        invoice.Party // name, address, VAT number
	InvoiceSeries string
	// CreditNoteSeries is the prefix of the credit notes' own gap-free series
	// (DPP_CREDIT_NOTE_SERIES).
	CreditNoteSeries string
	VATRates         map[string]int64 // SKU -> basis points
	DefaultVATRate   int64            // basis points
	SimplifiedLimit  int64            // pence incl. VAT
	AlwaysFull       bool

	// Certificate of sanitization details.
	DPOContact     string
	BackupLocation string
	Location       string // where the worker runs (host name)
	ToolVersion    string
}

// Service is the sealed store of orders, invoices and their evidence.
type Service struct {
	Pool   *pgxpool.Pool
	Vault  *vault.Vault
	Signer *evidence.Signer
	// Epochs chooses the KMS key that wraps each new data key: the PII epoch of
	// the sealing time, the tax year of the invoice. Nil wraps every data key
	// with the Vault's configured key (epoch zero, as before key epochs).
	Epochs *keyepochs.Service
	Policy Policy
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Errors callers tell apart.
var (
	// ErrNotSealed: the order was never fetched and sealed.
	ErrNotSealed = errors.New("order has not been sealed")
	// ErrPurged: the order's PII was erased; it cannot be read any more.
	ErrPurged = errors.New("order's PII has been purged")
	// ErrInvalidOrder: the order from SP-API cannot be processed; the message says why.
	ErrInvalidOrder = errors.New("invalid order")
	// ErrDeemedSupplier: Amazon is the deemed supplier (marketplace facilitator
	// tax model) and invoices the buyer; the seller issues none.
	ErrDeemedSupplier = errors.New("the order's deemed supplier is Amazon, which invoices it")
	// ErrNoInvoice: no invoice was issued for the order.
	ErrNoInvoice = errors.New("no invoice was issued for this order")
	// ErrTaxRecordPurged: the invoice was erased after its retention.
	ErrTaxRecordPurged = errors.New("the invoice was purged at the end of its tax retention")
)

func keyRef(purpose, orderID string) string { return purpose + "/" + orderID }

// newDataKey makes the data key of one purpose of an order, wrapped by the key
// of the current epoch (PII) or tax year (tax records: invoices and credit
// notes) when epochs are on.
func (s *Service) newDataKey(ctx context.Context, purpose, orderID string) (*vault.DataKey, error) {
	c := vault.Context{OrderID: orderID, Purpose: purpose}
	if s.Epochs == nil {
		return s.Vault.NewDataKey(ctx, c)
	}
	choose := s.Epochs.PIIKey
	if purpose == PurposeTaxRecord || purpose == PurposeCreditNote {
		choose = s.Epochs.TaxKey
	}
	keyID, err := choose(ctx, s.now())
	if err != nil {
		return nil, err
	}
	return s.Vault.NewDataKeyUnder(ctx, c, keyID)
}

// storeDataKey inserts a new wrapped data key and, with epochs on, records it
// as a member of its epoch (refused if the epoch closed meanwhile: the retried
// step then takes the current one).
func (s *Service) storeDataKey(ctx context.Context, tx pgx.Tx, purpose, orderID string, key *vault.DataKey) error {
	if _, err := tx.Exec(ctx, `INSERT INTO data_keys (key_ref, amazon_order_id, purpose, kms_key_id, wrapped_key)
		VALUES ($1,$2,$3,$4,$5)`, keyRef(purpose, orderID), orderID, purpose, key.KMSKeyID, key.Wrapped); err != nil {
		return fmt.Errorf("insert data key: %w", err)
	}
	if s.Epochs == nil {
		return nil
	}
	return s.Epochs.Join(ctx, tx, key.KMSKeyID, orderID, purpose, "sealed")
}
