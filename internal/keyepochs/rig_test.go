package keyepochs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/invoice"
	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/internal/vault"
)

// marker is in every PII value sealed here: finding it outside ciphertext is a leak.
const marker = "PIIMARKER11E"

func TestMain(m *testing.M) {
	// local-kms accepts any credentials; the SDK only needs some.
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	code := m.Run()
	testenv.StopAll()
	os.Exit(code)
}

// clock is the rig's time: tests move it across epochs in an instant. KMS
// never looks at it (the deletion window is KMS's own, in real days).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// rig is the sealed store on real components: PostgreSQL (as dpp_worker),
// local-kms, the default epoch timings, and a clock the test moves.
type rig struct {
	t        *testing.T
	ctx      context.Context
	ownerDSN string
	pool     *pgxpool.Pool
	kms      *kms.Client
	vault    *vault.Vault
	epochs   *keyepochs.Service
	orders   *orders.Service
	clock    *clock
}

// day0 is the start of the first epoch the tests seal in.
var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	k := testenv.KMSForTest(t)
	client, err := k.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := testenv.Database(t)
	pool, err := pgxpool.New(ctx, testenv.AsRole(t, owner, store.WorkerRole))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	v, err := vault.New(client, k.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.LoadOrCreateSigner(ctx, pool, v)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: day0.Add(9 * time.Hour)}
	ep := &keyepochs.Service{KMS: client, Pool: pool, Signer: signer, Timings: keyepochs.Default, Now: c.Now,
		// Each test its own keys: the tests share one local-kms.
		AliasPrefix: fmt.Sprintf("alias/dpp-test-%d/", time.Now().UnixNano())}
	svc := &orders.Service{Pool: pool, Vault: v, Signer: signer, Epochs: ep, Now: c.Now, Policy: orders.Policy{
		PIIRetention: 720 * time.Hour, TaxRetention: 52596 * time.Hour, DeliveryFallback: 24 * time.Hour,
		Seller:        invoice.Party{Name: "Plusranger Ltd", Address: []string{"Unit 4", "Leeds", "LS1 4AB"}, VATNumber: "GB123456789"},
		InvoiceSeries: "INV", CreditNoteSeries: "CRN", DefaultVATRate: 2000, SimplifiedLimit: 25000, BackupLocation: "pg_dump nightly"}}
	return &rig{t: t, ctx: ctx, ownerDSN: owner, pool: pool, kms: client, vault: v, epochs: ep, orders: svc, clock: c}
}

func orderID(n int) string { return fmt.Sprintf("205-%07d-%07d", n, n) }

// seal seals an order whose every PII field carries the marker.
func (r *rig) seal(id string) {
	r.t.Helper()
	if err := sealErr(r, id); err != nil {
		r.t.Fatalf("seal %s: %v", id, err)
	}
}

func sealErr(r *rig, id string) error {
	at := r.clock.Now().Format(time.RFC3339)
	doc := fmt.Sprintf(`{"orderId":%q,"createdTime":%q,"lastUpdatedTime":%q,
		"salesChannel":{"channelName":"Amazon.co.uk","marketplaceId":"A1F83G8C2ARO7P"},
		"buyer":{"buyerName":"Jane %[4]s","buyerEmail":"jane.%[4]s@example.invalid"},
		"recipient":{"deliveryAddress":{"name":"Jane %[4]s","addressLine1":"1 %[4]s Street","city":"Leeds","postalCode":"LS1 1AA","countryCode":"GB"}},
		"orderItems":[{"orderItemId":"1","quantityOrdered":1,"product":{"sellerSku":"PR-1","title":"Seat cover",
			"price":{"unitPrice":{"amount":"12.00","currencyCode":"GBP"}}}}]}`, id, at, at, marker)
	var o spapi.Order
	if err := json.Unmarshal([]byte(doc), &o); err != nil {
		return err
	}
	_, err := r.orders.Seal(r.ctx, &o)
	return err
}

// retain sets an order's purge due time and hold, as its workflow would.
func (r *rig) retain(id string, due time.Time, hold bool) {
	r.t.Helper()
	if err := r.orders.RecordRetention(r.ctx, id, due, hold); err != nil {
		r.t.Fatal(err)
	}
}

func purgeReq(id string, at time.Time) orders.PurgeRequest {
	return orders.PurgeRequest{AmazonOrderID: id, Reason: "retention-expired", DueAt: at}
}

func (r *rig) purge(id string) *orders.Purge {
	r.t.Helper()
	p, err := r.orders.PurgePII(r.ctx, purgeReq(id, r.clock.Now()))
	if err != nil {
		r.t.Fatalf("purge %s: %v", id, err)
	}
	return p
}

// openAll tries to decrypt every sealed PII field of every order in the
// database at dsn, through KMS with no key cache, and returns per order nil
// (every field decrypted and carries the marker) or why not.
func openAll(ctx context.Context, t *testing.T, client *kms.Client, dsn string) map[string]error {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	v, err := vault.New(client, "unused")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT d.amazon_order_id, d.kms_key_id, d.wrapped_key, f.field, f.ciphertext
		FROM data_keys d JOIN sealed_fields f ON f.key_ref = d.key_ref WHERE d.purpose = 'pii' ORDER BY 1, 4`)
	if err != nil {
		t.Fatal(err)
	}
	type field struct {
		order, keyID, name string
		wrapped, ct        []byte
	}
	fields, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (field, error) {
		var f field
		return f, r.Scan(&f.order, &f.keyID, &f.wrapped, &f.name, &f.ct)
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]error{}
	for _, f := range fields {
		if _, failed := out[f.order]; failed && out[f.order] != nil {
			continue
		}
		k, err := v.OpenDataKey(ctx, vault.Context{OrderID: f.order, Purpose: "pii"}, f.keyID, f.wrapped)
		if err != nil {
			out[f.order] = err
			continue
		}
		pt, err := k.Open(f.name, f.ct)
		k.Destroy()
		if err == nil && f.name == "buyer.name" && string(pt) != "Jane "+marker {
			err = errors.New("decrypted to something else")
		}
		out[f.order] = err
	}
	return out
}

// dataKeyHolders returns, per order, the KMS key its PII data key is wrapped by now.
func (r *rig) dataKeyHolders() map[string]string {
	r.t.Helper()
	rows, err := r.pool.Query(r.ctx, `SELECT amazon_order_id, kms_key_id FROM data_keys WHERE purpose = 'pii'`)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			r.t.Fatal(err)
		}
		out[id] = key
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// retireDue runs what one KeyEpochs run does for the epochs due now, through
// the service (the workflow's own test covers the orchestration).
func (r *rig) retireDue(batch int) []*keyepochs.Scheduled {
	r.t.Helper()
	if _, err := r.epochs.EnsureAhead(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	due, err := r.epochs.Due(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []*keyepochs.Scheduled
	for _, e := range due.Retire {
		if err := r.epochs.BeginRetire(r.ctx, e.KMSKeyID); err != nil {
			r.t.Fatal(err)
		}
		for {
			rw, err := r.epochs.RewrapBatch(r.ctx, e.KMSKeyID, batch, nil)
			if err != nil {
				r.t.Fatal(err)
			}
			if !rw.Remaining {
				break
			}
		}
		s, err := r.epochs.ScheduleDeletion(r.ctx, e.KMSKeyID, batch)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
