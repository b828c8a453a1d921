package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/keyepochs"
)

// KeyEpochs are the activities of the KeyEpochs workflow: they create epoch
// keys ahead of need, re-wrap survivors out of expired epochs, schedule the
// expired keys' deletion with a signed certificate and confirm it later.
type KeyEpochs struct {
	Epochs *keyepochs.Service
}

// Register registers every key-epoch activity.
func (a *KeyEpochs) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a, registerOptions)
}

// EpochKeys names the epoch keys that exist for now and the next epoch.
type EpochKeys struct {
	Aliases []string `json:"aliases"`
}

// EnsureEpochKeys creates the keys of the current and next PII epoch and tax
// year where they do not exist yet.
func (a *KeyEpochs) EnsureEpochKeys(ctx context.Context) (*EpochKeys, error) {
	aliases, err := a.Epochs.EnsureAhead(ctx)
	if err != nil {
		return nil, err
	}
	return &EpochKeys{Aliases: aliases}, nil
}

// EpochRef names one epoch key; ids only.
type EpochRef struct {
	KMSKeyID string `json:"kmsKeyId"`
	Alias    string `json:"alias"`
	Purpose  string `json:"purpose"`
}

// DueEpochs is what a KeyEpochs run has to do.
type DueEpochs struct {
	Retire  []EpochRef `json:"retire,omitempty"`
	Confirm []EpochRef `json:"confirm,omitempty"`
	// EpochZero: survivors are still wrapped by the configured key.
	EpochZero bool `json:"epochZero,omitempty"`
}

// maxDueEpochs bounds one answer (the next run takes the rest).
const maxDueEpochs = 100

// DueKeyEpochs lists the epochs to retire and the deletions to confirm.
func (a *KeyEpochs) DueKeyEpochs(ctx context.Context) (*DueEpochs, error) {
	d, err := a.Epochs.Due(ctx)
	if err != nil {
		return nil, err
	}
	ref := func(es []keyepochs.Epoch) []EpochRef {
		out := make([]EpochRef, 0, min(len(es), maxDueEpochs))
		for _, e := range es[:min(len(es), maxDueEpochs)] {
			out = append(out, EpochRef{KMSKeyID: e.KMSKeyID, Alias: e.Alias, Purpose: e.Purpose})
		}
		return out
	}
	return &DueEpochs{Retire: ref(d.Retire), Confirm: ref(d.Confirm), EpochZero: d.EpochZero}, nil
}

// RewrapInput is one batch of re-wrapping out of an epoch key ("" for epoch zero).
type RewrapInput struct {
	KMSKeyID  string `json:"kmsKeyId,omitempty"`
	BatchSize int    `json:"batchSize"`
}

// RewrapEpoch closes the epoch (nothing new goes under its key) and re-wraps
// one batch of its survivors into the current epoch. Retrying is harmless: a
// data key already moved is no longer under the old key.
func (a *KeyEpochs) RewrapEpoch(ctx context.Context, in RewrapInput) (*keyepochs.Rewrap, error) {
	if in.BatchSize <= 0 {
		return nil, final(ErrInvalidInput, errors.New("RewrapEpoch: batchSize must be positive"))
	}
	if in.KMSKeyID != "" {
		if err := a.Epochs.BeginRetire(ctx, in.KMSKeyID); err != nil {
			return nil, err
		}
	}
	return a.Epochs.RewrapBatch(ctx, in.KMSKeyID, in.BatchSize, func(i int) { activity.RecordHeartbeat(ctx, i) })
}

// ScheduleEpochDeletionInput names the epoch key to retire.
type ScheduleEpochDeletionInput struct {
	KMSKeyID  string `json:"kmsKeyId"`
	BatchSize int    `json:"batchSize"`
}

// EpochScheduled is a retired epoch key: pending deletion, with its certificate.
type EpochScheduled struct {
	Alias          string    `json:"alias"`
	DeletionDate   time.Time `json:"deletionDate"`
	CertificateSeq int64     `json:"certificateSeq"`
	// Rewrapped: stragglers re-wrapped by this step (after a crash or a late hold).
	Rewrapped int `json:"rewrapped"`
}

// ScheduleEpochDeletion re-wraps any survivor still under the key, schedules
// the key's deletion in KMS and appends the signed epoch certificate.
func (a *KeyEpochs) ScheduleEpochDeletion(ctx context.Context, in ScheduleEpochDeletionInput) (*EpochScheduled, error) {
	if in.KMSKeyID == "" || in.BatchSize <= 0 {
		return nil, final(ErrInvalidInput, errors.New("ScheduleEpochDeletion: kmsKeyId and a positive batchSize are required"))
	}
	stop := keepAlive(ctx)
	s, err := a.Epochs.ScheduleDeletion(ctx, in.KMSKeyID, in.BatchSize)
	stop()
	if err != nil {
		return nil, err
	}
	out := &EpochScheduled{Alias: s.Epoch.Alias, CertificateSeq: s.CertificateSeq, Rewrapped: s.Rewrapped}
	if s.Epoch.DeletionDate != nil {
		out.DeletionDate = *s.Epoch.DeletionDate
	}
	return out, nil
}

// keepAlive heartbeats until stopped: the step may re-wrap a whole epoch's
// stragglers, and a worker that dies in it is then noticed within the
// heartbeat timeout (10 s) instead of the step's whole StartToClose.
func keepAlive(ctx context.Context) (stop func()) {
	return keepHeartbeatingEvery(ctx, 2*time.Second, func() { activity.RecordHeartbeat(ctx) })
}

// ConfirmEpochDeletionInput names an epoch key pending deletion.
type ConfirmEpochDeletionInput struct {
	KMSKeyID string `json:"kmsKeyId"`
}

// ConfirmEpochDeletion asks KMS whether the key is gone and, when it is,
// appends the signed follow-up to the epoch certificate.
func (a *KeyEpochs) ConfirmEpochDeletion(ctx context.Context, in ConfirmEpochDeletionInput) (*keyepochs.Confirmation, error) {
	if in.KMSKeyID == "" {
		return nil, final(ErrInvalidInput, errors.New("ConfirmEpochDeletion: kmsKeyId is required"))
	}
	return a.Epochs.ConfirmDeletion(ctx, in.KMSKeyID)
}
