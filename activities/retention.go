package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/orders"
)

// PurgeReasonRetentionAudit is the certificate reason of a purge the retention
// audit made because the order's workflow no longer runs.
const PurgeReasonRetentionAudit = "retention-audit"

// KindRetentionAudit is the evidence kind of a retention audit's summary.
const KindRetentionAudit = "retention-audit"

// maxReportedRunning bounds the ids of running overdue orders one result carries.
const maxReportedRunning = 100

// Retention keeps the retention promise beyond each order's own timer: it
// records due times, holds and problems, sweeps tax records past their
// retention and audits for orders whose purge is overdue.
type Retention struct {
	Orders *orders.Service
	// Texts erases the free texts past their retention (SweepTaxRecords).
	Texts *freetext.Store
	// Incidents erases closed incidents' texts past their retention
	// (SweepTaxRecords).
	Incidents *incident.Service
	// OrderRuns tells whether an order's workflow still runs (AuditRetention only).
	OrderRuns OrderRuns
}

// Register registers every retention activity.
func (a *Retention) Register(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a, registerOptions)
}

// OrderRuns tells whether an order's workflow still runs. Implemented over the
// Temporal client in internal/app (activities never import workflows).
type OrderRuns interface {
	// Running is true while the order's lifecycle workflow runs; false when it
	// completed, failed, was terminated, timed out, or never started.
	Running(ctx context.Context, amazonOrderID string) (bool, error)
}

// RecordRetention writes the order's purge due time and hold state to the
// database (run as a local activity: a short, idempotent update).
func (a *Retention) RecordRetention(ctx context.Context, in RetentionRecord) error {
	if in.AmazonOrderID == "" || in.PurgeDueAt.IsZero() {
		return final(ErrInvalidInput, errors.New("RecordRetention: amazonOrderId and purgeDueAt are required"))
	}
	err := a.Orders.RecordRetention(ctx, in.AmazonOrderID, in.PurgeDueAt, in.OnHold)
	if errors.Is(err, orders.ErrNotSealed) {
		return final(ErrInvalidInput, err)
	}
	return err
}

// RecordOrderProblem records a step that failed for good: the problem code on the
// order and a signed evidence entry (once per order and step).
func (a *Retention) RecordOrderProblem(ctx context.Context, in OrderProblemInput) (*OrderProblemResult, error) {
	rec, err := a.Orders.RecordProblem(ctx, in.AmazonOrderID, in.Step, in.Code)
	if errors.Is(err, orders.ErrNotSealed) {
		return nil, final(ErrInvalidInput, err)
	}
	if err != nil {
		return nil, err
	}
	// dpp_order_problems is counted by the workflow (once per problem, never on
	// replay), not here, where a retry after a lost answer would count it twice.
	return &OrderProblemResult{EvidenceSeq: rec.Seq}, nil
}

// AuditRetention looks at one batch of sealed orders past their purge due time
// and not on hold. An order whose workflow still runs is left to it and reported;
// every other one (its workflow failed, was terminated, timed out, or never
// started) is crypto-erased here with a certificate, reason retention-audit.
// Purging is idempotent, so a retried batch changes nothing twice.
func (a *Retention) AuditRetention(ctx context.Context, in AuditInput) (*AuditResult, error) {
	if in.BatchSize <= 0 || in.AsOf.IsZero() {
		return nil, final(ErrInvalidInput, errors.New("AuditRetention: asOf and a positive batchSize are required"))
	}
	after := orders.OverdueOrder{AmazonOrderID: in.AfterID, DueAt: in.AfterDueAt}
	overdue, err := a.Orders.Overdue(ctx, in.AsOf, after, in.BatchSize)
	if err != nil {
		return nil, err
	}
	res := &AuditResult{Found: len(overdue), Remaining: len(overdue) == in.BatchSize,
		AfterDueAt: in.AfterDueAt, AfterID: in.AfterID}
	metrics := activity.GetMetricsHandler(ctx)
	for _, o := range overdue {
		running, err := a.OrderRuns.Running(ctx, o.AmazonOrderID)
		if err != nil {
			return nil, err
		}
		if running {
			res.Running++
			if len(res.RunningIDs) < maxReportedRunning {
				res.RunningIDs = append(res.RunningIDs, o.AmazonOrderID)
			}
		} else {
			if _, err := a.Orders.PurgePII(ctx, orders.PurgeRequest{AmazonOrderID: o.AmazonOrderID,
				Reason: PurgeReasonRetentionAudit, RequestedBy: PurgeReasonRetentionAudit, DueAt: o.DueAt}); err != nil {
				return nil, fmt.Errorf("retention audit: purge %s: %w", o.AmazonOrderID, err)
			}
			res.Purged++
			metrics.Counter("dpp_retention_audit_purges").Inc(1)
		}
		res.AfterDueAt, res.AfterID = o.DueAt, o.AmazonOrderID
		activity.RecordHeartbeat(ctx, res.AfterID)
	}
	return res, nil
}

// RecordAudit appends the retention audit's summary to the evidence log, once per
// audit.
func (a *Retention) RecordAudit(ctx context.Context, in AuditSummary) (int64, error) {
	if in.AuditID == "" {
		return 0, final(ErrInvalidInput, errors.New("RecordAudit: auditId is required"))
	}
	rec, err := a.Orders.AppendEvidence(ctx, evidence.Entry{Kind: KindRetentionAudit, Subject: in.AuditID,
		IdempotencyKey: KindRetentionAudit + "/" + in.AuditID, Body: in})
	if err != nil {
		return 0, err
	}
	return rec.Seq, nil
}

// CancelReasonOnAmazon is the cancelled signal's reason code when OrderSync saw
// Amazon's CANCELED status (workflows.CancelOnAmazon).
const CancelReasonOnAmazon = "cancelled-on-amazon"

// SweepTaxRecords crypto-erases one batch of tax records past their retention,
// one batch of free texts past theirs and one of closed incidents' texts past
// DPP_INCIDENT_TEXT_RETENTION: the daily sweep is where records
// whose retention is counted in years end, and running the texts' erasure here
// changes no workflow code (TaxRecordSweep has runs in production).
func (a *Retention) SweepTaxRecords(ctx context.Context, in SweepInput) (*SweepResult, error) {
	if in.BatchSize <= 0 {
		return nil, final(ErrInvalidInput, errors.New("SweepTaxRecords: batchSize must be positive"))
	}
	var texts int
	var textsMore bool
	if a.Texts != nil {
		var err error
		if texts, textsMore, err = a.Texts.EraseDue(ctx, in.BatchSize); err != nil {
			return nil, err
		}
	}
	var incidents int
	var incidentsMore bool
	if a.Incidents != nil {
		var err error
		if incidents, incidentsMore, err = a.Incidents.EraseTextsDue(ctx, in.BatchSize); err != nil {
			return nil, err
		}
	}
	n, more, err := a.Orders.SweepTaxRecords(ctx, in.BatchSize)
	if err != nil {
		return nil, err
	}
	return &SweepResult{Purged: n, TextsErased: texts, IncidentTextsErased: incidents,
		Remaining: more || textsMore || incidentsMore}, nil
}
