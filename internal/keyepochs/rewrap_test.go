package keyepochs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/plusranger/dpp/internal/keyepochs"
)

// Re-wrap under load with purges running at the same time: no record is
// lost, none stays decryptable after its time, none is moved twice.
func TestRewrapUnderLoadWithConcurrentPurges(t *testing.T) {
	r := newRig(t)
	const n = 60
	var ids []string
	for i := 1; i <= n; i++ {
		id := orderID(100 + i)
		ids = append(ids, id)
		r.seal(id)
		r.retain(id, day0.Add(90*24*time.Hour), false)
	}
	epoch0 := r.dataKeyHolders()[ids[0]]
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	if err := r.epochs.BeginRetire(r.ctx, epoch0); err != nil {
		t.Fatal(err)
	}

	// Every third order is purged (its buyer asked) while two re-wrappers run
	// (a retried activity racing the first attempt).
	var wg sync.WaitGroup
	var rewrapped [2]int
	errs := make(chan error, 3)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				rw, err := r.epochs.RewrapBatch(r.ctx, epoch0, 7, nil)
				if err != nil {
					errs <- err
					return
				}
				rewrapped[w] += rw.Rewrapped
				if !rw.Remaining {
					return
				}
			}
		}()
	}
	purged := map[string]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += 3 {
			purged[ids[i]] = true
			if _, err := r.orders.PurgePII(r.ctx, purgeReq(ids[i], r.clock.Now())); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := r.epochs.ScheduleDeletion(r.ctx, epoch0, 7)
	if err != nil {
		t.Fatal(err)
	}

	live := openAll(r.ctx, t, r.kms, r.ownerDSN)
	holders := r.dataKeyHolders()
	for _, id := range ids {
		switch {
		case purged[id]:
			if _, ok := live[id]; ok {
				t.Errorf("purged %s still has PII", id)
			}
		case live[id] != nil:
			t.Errorf("%s lost: %v", id, live[id])
		case holders[id] == epoch0:
			t.Errorf("%s still wrapped by the retired key", id)
		}
	}
	moved := rewrapped[0] + rewrapped[1] + s.Rewrapped
	if moved+len(purged) < n || moved > n {
		t.Fatalf("moved %d, purged %d, of %d: a record was moved twice or missed", moved, len(purged), n)
	}
	e, err := r.epochs.Get(r.ctx, epoch0)
	if err != nil || e.RewrappedOut != moved {
		t.Fatalf("epoch counts %d re-wrapped, the re-wrappers %d (%v)", e.RewrappedOut, moved, err)
	}
}

// A crash in the middle of a re-wrap batch, and another between re-wrapping
// and scheduling the deletion (after KMS accepted it, before the database
// recorded it), resume without losing a record; a hold placed meanwhile on an
// order that was meant to die is honoured.
func TestACrashWhileRetiringLosesNoRecord(t *testing.T) {
	r := newRig(t)
	var ids []string
	for i := 1; i <= 6; i++ {
		id := orderID(200 + i)
		ids = append(ids, id)
		r.seal(id)
		r.retain(id, day0.Add(90*24*time.Hour), false)
	}
	late := orderID(299) // overdue when the epoch expires, held at the last moment
	r.seal(late)
	r.retain(late, day0.Add(5*24*time.Hour), false)
	epoch0 := r.dataKeyHolders()[ids[0]]
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	if err := r.epochs.BeginRetire(r.ctx, epoch0); err != nil {
		t.Fatal(err)
	}

	// The worker dies after the third row of a batch.
	ctx, kill := context.WithCancel(r.ctx)
	_, err := r.epochs.RewrapBatch(ctx, epoch0, 5, func(i int) {
		if i == 2 {
			kill()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the killed batch returned %v", err)
	}
	if n := countUnder(r, epoch0); n != 4 { // 3 survivors left and the overdue one
		t.Fatalf("%d data keys under the old key after the crash, want 4", n)
	}

	// A legal hold arrives for the overdue order before the retry.
	r.retain(late, day0.Add(5*24*time.Hour), true)

	// The retried batch finishes the re-wrap, the held order included. Then
	// the worker dies again, right after KMS accepted ScheduleKeyDeletion and
	// before the database recorded it.
	for {
		rw, err := r.epochs.RewrapBatch(r.ctx, epoch0, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rw.Remaining {
			break
		}
	}
	if _, err := r.kms.ScheduleKeyDeletion(r.ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(epoch0), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	// Its retry: local-kms, like AWS, answers KMSInvalidStateException for a
	// key already pending deletion; DescribeKey gives the date.
	s, err := r.epochs.ScheduleDeletion(r.ctx, epoch0, 5)
	if err != nil {
		t.Fatalf("the retry after KMS accepted the deletion: %v", err)
	}
	if s.Epoch.State != keyepochs.StatePendingDeletion || s.CertificateSeq == 0 || s.Epoch.DeletionDate == nil {
		t.Fatalf("scheduled %+v", s)
	}
	live := openAll(r.ctx, t, r.kms, r.ownerDSN)
	for _, id := range append(ids, late) {
		if live[id] != nil {
			t.Errorf("%s lost: %v", id, live[id])
		}
	}
	if n := countUnder(r, epoch0); n != 0 {
		t.Fatalf("%d data keys left under the key pending deletion", n)
	}
}

// The straggler path of ScheduleDeletion itself: survivors still under the key
// (a crash right after BeginRetire) are re-wrapped before KMS is called.
func TestScheduleDeletionRewrapsStragglersFirst(t *testing.T) {
	r := newRig(t)
	for i := 1; i <= 3; i++ {
		r.seal(orderID(300 + i))
		r.retain(orderID(300+i), day0.Add(90*24*time.Hour), false)
	}
	epoch0 := r.dataKeyHolders()[orderID(301)]
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	s, err := r.epochs.ScheduleDeletion(r.ctx, epoch0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rewrapped != 3 || countUnder(r, epoch0) != 0 {
		t.Fatalf("re-wrapped %d, %d left", s.Rewrapped, countUnder(r, epoch0))
	}
	for id, err := range openAll(r.ctx, t, r.kms, r.ownerDSN) {
		if err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
}

// Once an epoch is closing, nothing new is sealed under its key: a worker
// whose clock still says the old epoch is refused, and its retry takes the
// current epoch.
func TestASealRacingTheRetirementIsRefusedAndRetried(t *testing.T) {
	r := newRig(t)
	r.seal(orderID(401))
	epoch0 := r.dataKeyHolders()[orderID(401)]
	if err := r.epochs.BeginRetire(r.ctx, epoch0); err != nil {
		t.Fatal(err)
	}
	// A worker whose clock is still in the old epoch finds the old key.
	err := sealErr(r, orderID(402))
	if !errors.Is(err, keyepochs.ErrEpochClosed) {
		t.Fatalf("sealing under a closed epoch: %v", err)
	}
	r.clock.Set(day0.Add(24 * time.Hour))
	r.seal(orderID(402))
	if k := r.dataKeyHolders()[orderID(402)]; k == epoch0 || k == "" {
		t.Fatalf("the retry sealed under %q", k)
	}
}

func countUnder(r *rig, key string) int {
	r.t.Helper()
	var n int
	if err := r.pool.QueryRow(r.ctx, `SELECT count(*) FROM data_keys WHERE kms_key_id = $1`, key).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// A database restored from before an epoch's retirement still calls the
// epoch active while KMS already holds its key pending deletion: its
// survivors cannot be re-wrapped any more (that is the purge holding for the
// backup), and the run records the key as scheduled instead of retrying for
// ever.
func TestARestoredDatabaseWhoseEpochKMSAlreadyRetiredDoesNotStallTheRun(t *testing.T) {
	r := newRig(t)
	r.seal(orderID(801))
	r.retain(orderID(801), day0.Add(90*24*time.Hour), false)
	epoch0 := r.dataKeyHolders()[orderID(801)]
	if _, err := r.kms.ScheduleKeyDeletion(r.ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(epoch0), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	r.clock.Set(day0.Add(keyepochs.Default.Lifetime + time.Minute))
	rw, err := r.epochs.RewrapBatch(r.ctx, epoch0, 10, nil)
	if err != nil || !rw.Unusable || rw.Remaining || rw.Rewrapped != 0 {
		t.Fatalf("re-wrap out of a key KMS refuses: %+v %v", rw, err)
	}
	s := r.retireDue(10)
	if len(s) != 1 || s[0].Epoch.State != keyepochs.StatePendingDeletion || s[0].CertificateSeq == 0 {
		t.Fatalf("retired %+v", s)
	}
}

// Data keys sealed before key epochs (under DPP_KMS_KEY_ID, "epoch zero") keep
// decrypting; the survivors among them are re-wrapped into the current epoch,
// and the configured key itself is never retired.
func TestEpochZeroSurvivorsMoveIntoTheCurrentEpoch(t *testing.T) {
	r := newRig(t)
	epochs := r.orders.Epochs
	r.orders.Epochs = nil // as before this issue
	r.seal(orderID(901))
	r.seal(orderID(902))
	r.orders.Epochs = epochs
	r.retain(orderID(901), day0.Add(90*24*time.Hour), false)
	r.retain(orderID(902), day0.Add(-time.Hour), false) // overdue: left to its purge
	before := r.dataKeyHolders()
	due, err := r.epochs.Due(r.ctx)
	if err != nil || !due.EpochZero || len(due.Retire) != 0 {
		t.Fatalf("due %+v %v", due, err)
	}
	rw, err := r.epochs.RewrapBatch(r.ctx, "", 10, nil)
	if err != nil || rw.Rewrapped != 1 || rw.Remaining {
		t.Fatalf("epoch zero re-wrap %+v %v", rw, err)
	}
	after := r.dataKeyHolders()
	if after[orderID(901)] == before[orderID(901)] || after[orderID(902)] != before[orderID(902)] {
		t.Fatalf("holders before %v after %v", before, after)
	}
	for id, err := range openAll(r.ctx, t, r.kms, r.ownerDSN) {
		if err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if due, _ := r.epochs.Due(r.ctx); due.EpochZero {
		t.Fatal("epoch zero still has survivors")
	}
	p, err := keyepochs.ProtectionOf(r.ctx, r.pool, orderID(901), keyepochs.PurposePII, keyepochs.Default.DeletionWindow)
	if err != nil || len(p) != 1 || p[0].How != "rewrapped" {
		t.Fatalf("protection %+v %v", p, err)
	}
}
