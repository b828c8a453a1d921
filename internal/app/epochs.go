package app

import (
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/keyepochs"
)

// openEpochs builds the key epochs (part of Sealing) and has the orders
// service wrap new data keys by them.
func (a *App) openEpochs(kmsClient *kms.Client) {
	cfg := a.Config
	a.Epochs = &keyepochs.Service{KMS: kmsClient, Pool: a.Pool, Signer: a.Signer, Timings: keyepochs.Timings{
		Epoch: cfg.KeyEpoch, Lifetime: cfg.KeyEpochLifetime, DeletionWindow: cfg.KeyDeletionWindow}}
	a.Orders.Epochs = a.Epochs
}

// KeyEpochsActivities are KeyEpochs' activities (Sealing).
func (a *App) KeyEpochsActivities() *activities.KeyEpochs {
	return &activities.KeyEpochs{Epochs: a.Epochs}
}
