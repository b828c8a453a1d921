package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/spapi/sandbox"
	"github.com/plusranger/dpp/internal/testenv"
	"github.com/plusranger/dpp/internal/vault"
	"github.com/plusranger/dpp/workflows"
)

// KeyEpochs on the real stack, with epochs of 2 s and a lifetime of 5 s: the
// production worker is killed (SIGKILL) after KMS accepted the old key's
// deletion and before the database recorded it. The next worker finishes
// the run: every survivor was re-wrapped and decrypts, the key is pending
// deletion in KMS, and exactly one epoch certificate is signed.
func TestKeyEpochsSurvivesAWorkerKilledBetweenKMSAndTheRecord(t *testing.T) {
	s := newStack(t, func(env map[string]string, _ *sandbox.Options) {
		env["DPP_KEY_EPOCH"], env["DPP_KEY_EPOCH_LIFETIME"] = "2s", "5s"
	})
	s.worker.Stop() // the worker processes run the workflow
	s.worker = nil
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildWorker(t)

	ids := s.sandbox.Generate(4)
	for i, id := range ids {
		o, _ := s.sandbox.Order(id)
		_, err := s.app.Orders.Seal(ctx, &o)
		s.must(err, "seal %s", id)
		due := time.Now().Add(time.Hour) // not delivered yet: must survive its epoch
		if i == 0 {
			due = time.Now().Add(-time.Minute) // overdue, not held: dies with its epoch
		}
		s.must(s.app.Orders.RecordRetention(ctx, id, due, false), "retain %s", id)
	}
	// The orders may straddle two epochs: wait out the lifetime of the later.
	var epoch0 string
	var retireAt time.Time
	s.must(s.app.Pool.QueryRow(ctx, `SELECT max(retire_at) FROM key_epochs WHERE purpose = 'pii'`).
		Scan(&retireAt), "epochs of the orders")
	s.must(s.app.Pool.QueryRow(ctx, `SELECT kms_key_id FROM key_epochs WHERE purpose = 'pii' ORDER BY starts_at LIMIT 1`).
		Scan(&epoch0), "first epoch") // the one retired first, when the worker is killed
	time.Sleep(time.Until(retireAt.Add(100 * time.Millisecond))) // on the clock the worker reads

	release := s.blockWrites(ctx, "evidence_log") // the certificate's append: after KMS, before the record
	w1 := s.startWorkerProcess(ctx, bin, "worker 1")
	run, err := s.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "key-epochs-crash", TaskQueue: s.env["DPP_TASK_QUEUE"]},
		workflows.KeyEpochsName, workflows.KeyEpochsInput{BatchSize: 2})
	s.must(err, "start KeyEpochs")
	s.awaitBlockedWriter(ctx, "evidence_log")
	desc, err := s.app.Temporal.DescribeWorkflow(ctx, run.GetID(), "")
	s.must(err, "describe")
	inFlight := false
	for _, pa := range desc.RawResponse.GetPendingActivities() {
		inFlight = inFlight || (pa.GetActivityType().GetName() == "ScheduleEpochDeletion" && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED)
	}
	if !inFlight {
		t.Fatalf("ScheduleEpochDeletion is not in flight: %v", desc.RawResponse.GetPendingActivities())
	}
	w1.kill()
	release()

	kmsClient, err := testenv.KMSForTest(t).Client(ctx)
	s.must(err, "kms client")
	d, err := kmsClient.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(epoch0)})
	s.must(err, "describe key")
	var state string
	s.must(s.app.Pool.QueryRow(ctx, `SELECT state FROM key_epochs WHERE kms_key_id = $1`, epoch0).Scan(&state), "state")
	if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || state != keyepochs.StateRetiring {
		t.Fatalf("after the kill: KMS %s, database %s; want the window: PendingDeletion and retiring", d.KeyMetadata.KeyState, state)
	}

	s.startWorkerProcess(ctx, bin, "worker 2")
	var res workflows.KeyEpochsResult
	s.must(run.Get(ctx, &res), "KeyEpochs result")
	s.saveHistory(ctx, run.GetID(), "key_epochs_worker_killed.json")
	if len(res.Scheduled) == 0 || res.Scheduled[0].CertificateSeq == 0 || res.Rewrapped != 3 || len(res.Failed) != 0 {
		t.Fatalf("result %+v, want the orders' epochs scheduled and 3 survivors re-wrapped", res)
	}
	var certs int
	s.must(s.app.Pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log WHERE kind = $1`, keyepochs.KindEpochCertificate).Scan(&certs), "count")
	if certs != len(res.Scheduled) {
		t.Fatalf("%d epoch certificates for %d epochs, want one each", certs, len(res.Scheduled))
	}
	// Each survivor decrypts through KMS (no cache); the overdue order does not.
	v, err := vault.New(kmsClient, "unused")
	s.must(err, "vault")
	for i, id := range ids {
		var keyID string
		var wrapped []byte
		s.must(s.app.Pool.QueryRow(ctx, `SELECT kms_key_id, wrapped_key FROM data_keys WHERE amazon_order_id = $1 AND purpose = 'pii'`, id).
			Scan(&keyID, &wrapped), "data key of %s", id)
		_, err := v.OpenDataKey(ctx, vault.Context{OrderID: id, Purpose: "pii"}, keyID, wrapped)
		if (err == nil) != (i > 0) {
			t.Errorf("order %d (%s) under %s: open: %v", i, id, keyID, err)
		}
	}
	if b, _ := json.Marshal(res); len(b) > 0 {
		t.Logf("KeyEpochs result: %s", b)
	}
}
