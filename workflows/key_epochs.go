package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/keyepochs"
)

// KeyEpochsName is the workflow type the key-epochs schedule starts.
const KeyEpochsName = "KeyEpochs"

// KeyEpochsScheduleID is the schedule of KeyEpochs: every DPP_KEY_EPOCH (a day),
// at each epoch's start.
const KeyEpochsScheduleID = "key-epochs"

// KeyEpochsInput tunes a run; the schedule sends {}. Rewrapped carries the
// total into the next run when it continues as new. It decodes strictly.
type KeyEpochsInput struct {
	// BatchSize is how many data keys one re-wrap activity moves (1 to 1000,
	// default 100).
	BatchSize int `json:"batchSize,omitempty"`
	// MaxBatches bounds one run's history: after that many re-wrap batches it
	// continues as new (1 to 1000, default 200).
	MaxBatches int `json:"maxBatches,omitempty"`
	Rewrapped  int `json:"rewrapped,omitempty"`
	problem    error
}

// KeyEpochsResult says what a run did; aliases and counts only.
type KeyEpochsResult struct {
	// Keys are the epoch keys that exist for now and the next epoch.
	Keys      []string                    `json:"keys"`
	Rewrapped int                         `json:"rewrapped"`
	Scheduled []activities.EpochScheduled `json:"scheduled,omitempty"`
	Confirmed []string                    `json:"confirmed,omitempty"`
	// Failed are epoch keys whose deletion could not be scheduled or whose
	// deletion KMS no longer plans (someone cancelled it): the next run tries
	// again; new orders never wait for them.
	Failed []string `json:"failed,omitempty"`
}

// maxEpochBatches bounds one run's history; the rest continues as new.
const maxEpochBatches = 200

var (
	// A whole epoch's stragglers may be re-wrapped inside this step; it
	// heartbeats, so a dead worker is noticed in seconds.
	epochDeletionOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: 10 * time.Second, RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5,
		NonRetryableErrorTypes: finalErrors}}
	rewrapOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: 10 * time.Second, RetryPolicy: retry()}
)

// KeyEpochs is run by the key-epochs schedule at each epoch's start. It creates
// the keys of this epoch and the next ahead of need; for each epoch past its
// lifetime it re-wraps the survivors (orders on hold or not yet due) into the
// current epoch with KMS ReEncrypt and schedules the old key's deletion, with a
// signed epoch certificate; it re-wraps survivors still under the configured key
// (epoch zero); and it confirms, with a signed follow-up, each deletion whose
// date has passed. A key whose deletion cannot be scheduled is retried a few
// times, reported in Failed and left to the next run. Every step is
// idempotent, so a crash anywhere resumes without losing a record.
func KeyEpochs(ctx workflow.Context, in KeyEpochsInput) (*KeyEpochsResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	if in.BatchSize <= 0 {
		in.BatchSize = 100
	}
	if in.MaxBatches <= 0 {
		in.MaxBatches = maxEpochBatches
	}
	var a *activities.KeyEpochs
	log := workflow.GetLogger(ctx)
	res := &KeyEpochsResult{Rewrapped: in.Rewrapped}
	var keys activities.EpochKeys
	if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.EnsureEpochKeys).Get(ctx, &keys); err != nil {
		return nil, err
	}
	res.Keys = keys.Aliases
	var due activities.DueEpochs
	if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.DueKeyEpochs).Get(ctx, &due); err != nil {
		return nil, err
	}
	batches := 0
	// rewrap moves survivors out of an epoch key ("" for epoch zero); false
	// when this run has used its batches.
	rewrap := func(keyID string) (bool, error) {
		for batches < in.MaxBatches {
			batches++
			var r keyepochs.Rewrap
			if err := workflow.ExecuteActivity(withOptions(ctx, rewrapOptions), a.RewrapEpoch,
				activities.RewrapInput{KMSKeyID: keyID, BatchSize: in.BatchSize}).Get(ctx, &r); err != nil {
				return false, err
			}
			res.Rewrapped += r.Rewrapped
			if !r.Remaining || r.Unusable {
				return true, nil
			}
		}
		return false, nil
	}
	next := func() error {
		return workflow.NewContinueAsNewError(ctx, KeyEpochsName,
			KeyEpochsInput{BatchSize: in.BatchSize, MaxBatches: in.MaxBatches, Rewrapped: res.Rewrapped})
	}
	for _, e := range due.Retire {
		if e.Purpose == keyepochs.PurposePII {
			done, err := rewrap(e.KMSKeyID)
			if err != nil {
				return nil, err
			}
			if !done {
				return nil, next()
			}
		}
		var s activities.EpochScheduled
		err := workflow.ExecuteActivity(withOptions(ctx, epochDeletionOptions), a.ScheduleEpochDeletion,
			activities.ScheduleEpochDeletionInput{KMSKeyID: e.KMSKeyID, BatchSize: in.BatchSize}).Get(ctx, &s)
		if err != nil {
			log.Error("Key epoch deletion could not be scheduled; the next run tries again", "alias", e.Alias, "error", err)
			workflow.GetMetricsHandler(ctx).Counter("dpp_key_epoch_failures").Inc(1)
			res.Failed = append(res.Failed, e.Alias)
			continue
		}
		res.Rewrapped += s.Rewrapped
		res.Scheduled = append(res.Scheduled, s)
	}
	if due.EpochZero {
		done, err := rewrap("")
		if err != nil {
			return nil, err
		}
		if !done {
			return nil, next()
		}
	}
	for _, e := range due.Confirm {
		var c keyepochs.Confirmation
		if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.ConfirmEpochDeletion,
			activities.ConfirmEpochDeletionInput{KMSKeyID: e.KMSKeyID}).Get(ctx, &c); err != nil {
			return nil, err
		}
		switch {
		case c.Deleted:
			res.Confirmed = append(res.Confirmed, e.Alias)
		case c.KMSState != "PendingDeletion":
			log.Error("Key epoch past its deletion date is not pending deletion in KMS: was its deletion cancelled?",
				"alias", e.Alias, "kmsState", c.KMSState)
			workflow.GetMetricsHandler(ctx).Counter("dpp_key_epoch_failures").Inc(1)
			res.Failed = append(res.Failed, e.Alias)
		}
	}
	return res, nil
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *KeyEpochsInput) UnmarshalJSON(b []byte) error {
	var v struct {
		BatchSize  *float64 `json:"batchSize"`
		MaxBatches *float64 `json:"maxBatches"`
		Rewrapped  *float64 `json:"rewrapped"`
	}
	*in = KeyEpochsInput{}
	if err := errors.Join(decodeStrict(b, &v), exactFields(b, &v)); err != nil {
		in.problem = firstError(err)
		return nil
	}
	var errs []error
	var err error
	in.BatchSize, err = wholeNumber("batchSize", v.BatchSize, 1, maxBatchSize)
	errs = append(errs, err)
	in.MaxBatches, err = wholeNumber("maxBatches", v.MaxBatches, 1, maxMaxBatches)
	errs = append(errs, err)
	in.Rewrapped, err = wholeNumber("rewrapped", v.Rewrapped, 0, maxCount)
	errs = append(errs, err)
	in.problem = firstError(errors.Join(errs...))
	return nil
}

// Validate names the first thing wrong with the input.
func (in KeyEpochsInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf(`KeyEpochs input: %w; want {} or {"batchSize": 100, "maxBatches": 200}`, in.problem)
	}
	return nil
}
