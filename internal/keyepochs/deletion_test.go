package keyepochs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/orders"
)

// deletingKMS is local-kms plus the deletion states it does not play: it
// never deletes a key before its window (7 days at least) has passed, so this
// fake answers DescribeKey for the keys in state as AWS would later on.
type deletingKMS struct {
	keyepochs.KMS
	state map[string]string // ARN -> "deleted" or a KMS key state
}

func (f *deletingKMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, o ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	switch st := f.state[aws.ToString(in.KeyId)]; st {
	case "":
		return f.KMS.DescribeKey(ctx, in, o...)
	case "deleted":
		return nil, &smithy.GenericAPIError{Code: "NotFoundException", Message: "Key '" + aws.ToString(in.KeyId) + "' does not exist"}
	default:
		return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{Arn: in.KeyId, KeyId: in.KeyId, KeyState: types.KeyState(st)}}, nil
	}
}

// After its deletion date, KeyEpochs asks KMS: while the key is still pending
// deletion nothing is recorded; once DescribeKey no longer finds it, a signed
// follow-up to the epoch certificate is appended, once; a key whose deletion
// was cancelled is reported, never confirmed.
func TestDeletionIsConfirmedOnlyWhenKMSNoLongerFindsTheKey(t *testing.T) {
	r := newRig(t)
	fake := &deletingKMS{KMS: r.kms, state: map[string]string{}}
	r.epochs.KMS = fake
	r.seal(orderID(501))
	r.retain(orderID(501), day0.Add(5*24*time.Hour), false)
	epoch0 := r.dataKeyHolders()[orderID(501)]
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	s := r.retireDue(10)
	if len(s) != 1 {
		t.Fatalf("retired %+v", s)
	}
	due, err := r.epochs.Due(r.ctx)
	if err != nil || len(due.Confirm) != 0 {
		t.Fatalf("confirm before the deletion date: %+v %v", due, err)
	}

	// KMS's deletion date, on our clock.
	r.clock.Set(s[0].Epoch.DeletionDate.Add(time.Hour))
	due, err = r.epochs.Due(r.ctx)
	if err != nil || len(due.Confirm) != 1 || due.Confirm[0].KMSKeyID != epoch0 {
		t.Fatalf("due %+v %v", due, err)
	}
	// local-kms itself: still PendingDeletion (it keeps the key until its real window ends).
	c, err := r.epochs.ConfirmDeletion(r.ctx, epoch0)
	if err != nil || c.Deleted || c.KMSState != string(types.KeyStatePendingDeletion) {
		t.Fatalf("confirm while pending: %+v %v", c, err)
	}
	fake.state[epoch0] = string(types.KeyStateEnabled) // someone cancelled the deletion
	if c, err = r.epochs.ConfirmDeletion(r.ctx, epoch0); err != nil || c.Deleted || c.KMSState != "Enabled" {
		t.Fatalf("confirm a cancelled deletion: %+v %v", c, err)
	}
	fake.state[epoch0] = "deleted"
	c, err = r.epochs.ConfirmDeletion(r.ctx, epoch0)
	if err != nil || !c.Deleted || c.EvidenceSeq == 0 {
		t.Fatalf("confirm once gone: %+v %v", c, err)
	}
	if again, err := r.epochs.ConfirmDeletion(r.ctx, epoch0); err != nil || !again.Deleted {
		t.Fatalf("confirm again: %+v %v", again, err)
	}
	e, _ := r.epochs.Get(r.ctx, epoch0)
	if e.State != keyepochs.StateDeleted || e.DeletedAt == nil {
		t.Fatalf("epoch %+v", e)
	}
	recs, err := evidence.Get(r.ctx, r.pool, e.Alias, keyepochs.KindEpochDeleted)
	if err != nil || len(recs) != 1 {
		t.Fatalf("follow-up entries %d %v", len(recs), err)
	}
	var d keyepochs.DeletedEntry
	if err := json.Unmarshal(recs[0].Body, &d); err != nil || d.CertificateSeq != s[0].CertificateSeq || d.KMSKeyID != epoch0 {
		t.Fatalf("follow-up %+v %v", d, err)
	}
	if due, _ := r.epochs.Due(r.ctx); len(due.Confirm) != 0 {
		t.Fatalf("still to confirm: %+v", due.Confirm)
	}
}

// A KMS error when scheduling leaves the epoch retiring (the next run tries
// again), while new orders keep sealing under the current epoch.
type refusingKMS struct{ keyepochs.KMS }

func (refusingKMS) ScheduleKeyDeletion(context.Context, *kms.ScheduleKeyDeletionInput, ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "KMSInternalException", Message: "try again"}
}

func TestAKeyThatCannotBeScheduledNeverBlocksNewOrders(t *testing.T) {
	r := newRig(t)
	r.epochs.KMS = refusingKMS{r.kms}
	r.seal(orderID(601))
	epoch0 := r.dataKeyHolders()[orderID(601)]
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	if _, err := r.epochs.ScheduleDeletion(r.ctx, epoch0, 10); err == nil {
		t.Fatal("scheduling succeeded against a failing KMS")
	}
	if e, _ := r.epochs.Get(r.ctx, epoch0); e.State != keyepochs.StateRetiring {
		t.Fatalf("state %s, want retiring (due again next run)", e.State)
	}
	r.seal(orderID(602))
	if k := r.dataKeyHolders()[orderID(602)]; k == epoch0 || k == "" {
		t.Fatalf("new order sealed under %q", k)
	}
	if due, err := r.epochs.Due(r.ctx); err != nil || len(due.Retire) != 1 {
		t.Fatalf("due %+v %v", due, err)
	}
}

// A tax-year key outlives its year for as long as one of its invoices is
// kept; once the sweep has purged the last, KeyEpochs schedules its deletion
// with an epoch certificate, and the invoice's certificate names it.
func TestATaxYearKeyIsDeletedAfterTheLastRecordOfItsYear(t *testing.T) {
	r := newRig(t)
	id := orderID(701)
	r.seal(id)
	inv, err := r.orders.IssueInvoice(r.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var taxKey string
	if err := r.pool.QueryRow(r.ctx, `SELECT kms_key_id FROM data_keys WHERE amazon_order_id = $1 AND purpose = 'tax-record'`, id).Scan(&taxKey); err != nil {
		t.Fatal(err)
	}
	e, err := r.epochs.Get(r.ctx, taxKey)
	if err != nil || e.Alias != keyepochs.TaxAlias(r.epochs.AliasPrefix, 2026) || e.Purpose != keyepochs.PurposeTaxRecord {
		t.Fatalf("tax key %+v %v", e, err)
	}

	// The year is over, the invoice is still kept: the key stays.
	r.clock.Set(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC))
	if r.retired(taxKey) != nil {
		t.Fatal("the tax-year key was retired while it still wraps an invoice")
	}
	// Six years on, the sweep purges the invoice; the next run retires the key.
	r.sweepAt(inv.RetainUntil.Add(time.Hour))
	retired := r.retired(taxKey)
	if retired == nil || retired.Epoch.State != keyepochs.StatePendingDeletion || retired.CertificateSeq == 0 {
		t.Fatalf("tax-year key not retired: %+v", retired)
	}
	certs, err := app.CheckCertificates(r.ctx, r.pool, evidence.VerifyOptions{}, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if c.IdempotencyKey == "purge/tax-record/"+inv.Number &&
			(len(c.EpochKeys) != 1 || c.EpochKeys[0].KMSKeyID != taxKey || !c.PromiseComplete) {
			t.Fatalf("the invoice's certificate: %+v", c)
		}
	}
}

// A credit note's key is wrapped by the tax-year key of its year, like the
// invoice's, and is never re-wrapped: the tax-year key outlives the invoice
// while a credit note under it is kept, and is retired once the sweep has
// erased that too; the credit note's certificate names the key.
func TestATaxYearKeyWaitsForTheCreditNotesUnderIt(t *testing.T) {
	r := newRig(t)
	id := orderID(702)
	r.seal(id)
	inv, err := r.orders.IssueInvoice(r.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Set(day0.Add(30 * 24 * time.Hour)) // a refund a month later, same year
	cn, err := r.orders.IssueCreditNote(r.ctx, orders.CreditRequest{AmazonOrderID: id, SourceID: orders.RefundSource("R-1"),
		Reason: "damaged", By: "dpo", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	var taxKey, cnKey string
	if err := r.pool.QueryRow(r.ctx, `SELECT (SELECT kms_key_id FROM data_keys WHERE amazon_order_id = $1 AND purpose = 'tax-record'),
		(SELECT kms_key_id FROM data_keys WHERE amazon_order_id = $1 AND purpose = 'credit-note')`, id).Scan(&taxKey, &cnKey); err != nil {
		t.Fatal(err)
	}
	if cnKey != taxKey {
		t.Fatalf("the credit note's key is under %s, the invoice's under %s: want the same tax-year key", cnKey, taxKey)
	}
	// The invoice's retention ends first: the sweep erases it, the key stays.
	r.sweepAt(inv.RetainUntil.Add(time.Hour))
	if r.retired(taxKey) != nil {
		t.Fatal("the tax-year key was retired while it still wraps a credit note")
	}
	r.sweepAt(cn.RetainUntil.Add(time.Hour))
	retired := r.retired(taxKey)
	if retired == nil || retired.Epoch.State != keyepochs.StatePendingDeletion {
		t.Fatalf("tax-year key not retired: %+v", retired)
	}
	certs, err := app.CheckCertificates(r.ctx, r.pool, evidence.VerifyOptions{}, id)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range certs {
		if c.IdempotencyKey == "purge/credit-note/"+id {
			found = len(c.EpochKeys) == 1 && c.EpochKeys[0].KMSKeyID == taxKey && c.PromiseComplete
		}
	}
	if !found {
		t.Fatalf("no credit-note certificate naming the tax-year key among %+v", certs)
	}
}

// sweepAt moves the clock to at and runs the tax-record sweep, which must purge one record.
func (r *rig) sweepAt(at time.Time) {
	r.t.Helper()
	r.clock.Set(at)
	if n, _, err := r.orders.SweepTaxRecords(r.ctx, 10); err != nil || n != 1 {
		r.t.Fatalf("sweep purged %d: %v", n, err)
	}
}

// retired runs the retirement of what is due and returns key's, if it was retired.
func (r *rig) retired(key string) *keyepochs.Scheduled {
	r.t.Helper()
	var out *keyepochs.Scheduled
	for _, s := range r.retireDue(10) {
		if s.Epoch.KMSKeyID == key {
			out = s
		}
	}
	return out
}

// countingKMS is local-kms counting CreateKey calls.
type countingKMS struct {
	keyepochs.KMS
	mu      sync.Mutex
	created int
}

func (c *countingKMS) CreateKey(ctx context.Context, in *kms.CreateKeyInput, o ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	c.mu.Lock()
	c.created++
	c.mu.Unlock()
	return c.KMS.CreateKey(ctx, in, o...)
}

// The first seals of a new epoch arrive together (a worker starting, a burst
// of orders): one KMS key is created for the epoch, not one per seal with all
// but one losing the alias and scheduled for deletion.
func TestConcurrentFirstSealsOfAnEpochCreateOneKey(t *testing.T) {
	r := newRig(t)
	counting := &countingKMS{KMS: r.kms}
	r.epochs.KMS = counting
	var wg sync.WaitGroup
	arns := make([]string, 20)
	errs := make([]error, 20)
	for i := range arns {
		wg.Go(func() { arns[i], errs[i] = r.epochs.PIIKey(r.ctx, r.clock.Now()) })
	}
	wg.Wait()
	for i := range arns {
		if errs[i] != nil || arns[i] != arns[0] {
			t.Fatalf("call %d: %q, %v (call 0: %q)", i, arns[i], errs[i], arns[0])
		}
	}
	if counting.created != 1 {
		t.Fatalf("%d KMS keys created for one epoch", counting.created)
	}
}
