package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/vault"
)

// Facts are the non-PII facts kept about an order (orders.facts): enough to
// invoice it and to drive its lifecycle.
type Facts struct {
	AmazonOrderID    string     `json:"amazonOrderId"`
	MarketplaceID    string     `json:"marketplaceId"`
	PurchasedAt      time.Time  `json:"purchasedAt"`
	LatestDeliveryAt time.Time  `json:"latestDeliveryAt"`
	DeliveredAt      *time.Time `json:"deliveredAt,omitempty"`
	Cancelled        bool       `json:"cancelled"`
	Business         bool       `json:"business"`
	// DeemedSupplier: Amazon collects the VAT and invoices the buyer itself.
	DeemedSupplier  bool       `json:"deemedSupplier,omitempty"`
	Currency        string     `json:"currency"`
	GrandTotalMinor int64      `json:"grandTotalMinor"`
	Items           []Item     `json:"items"`
	SealedFields    int        `json:"sealedFields"`
	PurgedAt        *time.Time `json:"-"`
	// PurgeDueAt and OnHold are what the database holds of the order's retention
	// (orders.purge_due_at, orders.on_hold): a workflow started again after its
	// predecessor was terminated resumes from them.
	PurgeDueAt *time.Time `json:"-"`
	OnHold     bool       `json:"-"`
}

// Item is an order line: product facts and VAT-inclusive prices, no PII.
type Item struct {
	OrderItemID    string `json:"orderItemId"`
	SKU            string `json:"sku"`
	ASIN           string `json:"asin,omitempty"`
	Title          string `json:"title"`
	Quantity       int64  `json:"quantity"`
	UnitGrossMinor int64  `json:"unitGrossMinor"`
}

// Seal stores an order fetched from SP-API: every PII field encrypted under a new
// per-order data key, the wrapped key and the non-PII facts, in one transaction.
// Sealing an order that is already sealed returns the stored facts and writes
// nothing, so a retried activity is harmless. A purged order returns ErrPurged.
func (s *Service) Seal(ctx context.Context, o *spapi.Order) (*Facts, error) {
	facts, err := s.factsOf(o)
	if err != nil {
		return nil, err
	}
	if existing, err := s.Facts(ctx, o.OrderID); err == nil || !errors.Is(err, ErrNotSealed) {
		return existing, err
	}
	fields := piiFields(o)
	facts.SealedFields = len(fields)
	key, err := s.newDataKey(ctx, PurposePII, o.OrderID)
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	sealed := make([][]byte, len(names))
	for i, n := range names {
		if sealed[i], err = key.Seal(n, []byte(fields[n])); err != nil {
			return nil, fmt.Errorf("seal field %s: %w", n, err)
		}
	}
	factsJSON, err := json.Marshal(facts)
	if err != nil {
		return nil, err
	}
	ref := keyRef(PurposePII, o.OrderID)
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO orders (amazon_order_id, marketplace_id, purchased_at,
			latest_delivery_at, is_business, currency, facts, purge_due_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
			ON CONFLICT (amazon_order_id) DO NOTHING`,
			o.OrderID, facts.MarketplaceID, facts.PurchasedAt, facts.LatestDeliveryAt, facts.Business, facts.Currency, factsJSON,
			s.initialPurgeDue(facts))
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // sealed concurrently by another attempt: keep that one
		}
		if err := s.storeDataKey(ctx, tx, PurposePII, o.OrderID, key); err != nil {
			return err
		}
		rows := make([][]any, len(names))
		for i, n := range names {
			rows[i] = []any{o.OrderID, n, ref, sealed[i]}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sealed_fields"},
			[]string{"amazon_order_id", "field", "key_ref", "ciphertext"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("insert sealed fields: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal order %s: %w", o.OrderID, err)
	}
	return s.Facts(ctx, o.OrderID)
}

// Facts returns the stored facts of an order: ErrNotSealed if it has none, and
// the facts with PurgedAt set plus ErrPurged if its PII was erased.
func (s *Service) Facts(ctx context.Context, orderID string) (*Facts, error) {
	var raw []byte
	var purgedAt, dueAt *time.Time
	var onHold bool
	err := s.Pool.QueryRow(ctx, `SELECT facts, purged_at, purge_due_at, on_hold FROM orders WHERE amazon_order_id = $1`,
		orderID).Scan(&raw, &purgedAt, &dueAt, &onHold)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotSealed
	}
	if err != nil {
		return nil, fmt.Errorf("read order %s: %w", orderID, err)
	}
	var f Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("read order %s: stored facts: %w", orderID, err)
	}
	f.PurgedAt, f.PurgeDueAt, f.OnHold = purgedAt, dueAt, onHold
	if dueAt != nil {
		d := dueAt.UTC()
		f.PurgeDueAt = &d
	}
	if purgedAt != nil {
		return &f, ErrPurged
	}
	return &f, nil
}

// factsOf extracts the non-PII facts, rejecting an order that cannot be processed.
// Errors name the JSON path of the problem, never a value.
func (s *Service) factsOf(o *spapi.Order) (*Facts, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOrder, err)
	}
	f := &Facts{
		AmazonOrderID:  o.OrderID,
		PurchasedAt:    o.CreatedTime.Time.UTC(),
		Cancelled:      o.Cancelled(),
		Business:       o.IsBusiness(),
		DeemedSupplier: o.MarketplaceFacilitated(),
		Items:          []Item{},
	}
	if o.SalesChannel != nil {
		f.MarketplaceID = o.SalesChannel.MarketplaceID
	}
	if d, ok := o.LatestDeliveryDate(); ok {
		f.LatestDeliveryAt = d.UTC()
	} else {
		f.LatestDeliveryAt = f.PurchasedAt.Add(s.Policy.DeliveryFallback)
	}
	if d, ok := o.DeliveredAt(); ok {
		d = d.UTC()
		f.DeliveredAt = &d
	}
	for i, it := range o.OrderItems {
		item := Item{OrderItemID: it.OrderItemID, Quantity: int64(it.Quantity())}
		if it.Cancelled() {
			// Cancelled before the seal: not supplied, so never invoiced.
			item.Quantity = 0
		}
		p := it.Product
		item.SKU, item.ASIN, item.Title = p.SellerSKU, p.ASIN, p.Title
		if p.Price == nil || p.Price.UnitPrice == nil {
			return nil, fmt.Errorf("%w: order.orderItems[%d].product.price.unitPrice: missing", ErrInvalidOrder, i)
		}
		minor, err := p.Price.UnitPrice.Amount.Minor()
		if err != nil {
			return nil, fmt.Errorf("%w: order.orderItems[%d].product.price.unitPrice.amount: %v", ErrInvalidOrder, i, err)
		}
		if f.Currency == "" {
			f.Currency = p.Price.UnitPrice.CurrencyCode
		} else if f.Currency != p.Price.UnitPrice.CurrencyCode {
			return nil, fmt.Errorf("%w: order.orderItems[%d].product.price.unitPrice.currencyCode: differs from the order's other items", ErrInvalidOrder, i)
		}
		item.UnitGrossMinor = minor
		if item.Title == "" {
			item.Title = item.SKU
		}
		f.Items = append(f.Items, item)
		f.GrandTotalMinor += minor * item.Quantity
	}
	if o.Proceeds != nil && o.Proceeds.GrandTotal != nil {
		if minor, err := o.Proceeds.GrandTotal.Amount.Minor(); err == nil {
			f.GrandTotalMinor = minor
		}
	}
	if f.Currency == "" {
		return nil, fmt.Errorf("%w: order.orderItems[].product.price.unitPrice.currencyCode: missing", ErrInvalidOrder)
	}
	return f, nil
}

// openPII decrypts an order's sealed fields, in memory only: the caller must drop
// the map as soon as it is used.
func (s *Service) openPII(ctx context.Context, orderID string) (map[string]string, error) {
	k, err := s.loadKey(ctx, s.Pool, PurposePII, orderID)
	if err != nil {
		return nil, err
	}
	defer k.Destroy()
	rows, err := s.Pool.Query(ctx, `SELECT field, ciphertext FROM sealed_fields WHERE amazon_order_id = $1`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read sealed fields of %s: %w", orderID, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var field string
		var ct []byte
		if err := rows.Scan(&field, &ct); err != nil {
			return nil, err
		}
		pt, err := k.Open(field, ct)
		if err != nil {
			return nil, fmt.Errorf("open sealed field %s of %s: %w", field, orderID, err)
		}
		out[field] = string(pt)
	}
	return out, rows.Err()
}

// ErrNoKey: the data key is gone (erased), so nothing sealed under it can be opened.
var ErrNoKey = errors.New("no data key: it has been destroyed or never existed")

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Service) loadKey(ctx context.Context, q querier, purpose, orderID string) (*vault.DataKey, error) {
	var kmsKeyID string
	var wrapped []byte
	err := q.QueryRow(ctx, `SELECT kms_key_id, wrapped_key FROM data_keys WHERE key_ref = $1`,
		keyRef(purpose, orderID)).Scan(&kmsKeyID, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s key of order %s: %w", purpose, orderID, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s key of order %s: %w", purpose, orderID, err)
	}
	return s.Vault.OpenDataKey(ctx, vault.Context{OrderID: orderID, Purpose: purpose}, kmsKeyID, wrapped)
}
