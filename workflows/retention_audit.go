package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/activities"
)

// RetentionAuditInput configures the audit; zero values take defaults. The
// remaining fields carry a run's progress into the next when it continues as new.
// It decodes strictly (input.go).
type RetentionAuditInput struct {
	// BatchSize is how many overdue orders one activity looks at (1 to 1000,
	// default 100).
	BatchSize int `json:"batchSize,omitempty"`
	// MaxBatches bounds one run's history: after that many batches the audit
	// continues as new (1 to 1000, default 200).
	MaxBatches int `json:"maxBatches,omitempty"`
	// AsOf is when the audit began: orders due by then are overdue.
	AsOf       time.Time `json:"asOf,omitempty"`
	AfterDueAt time.Time `json:"afterDueAt,omitempty"`
	AfterID    string    `json:"afterId,omitempty"`
	// Totals so far.
	Found      int      `json:"found,omitempty"`
	Purged     int      `json:"purged,omitempty"`
	Running    int      `json:"running,omitempty"`
	RunningIDs []string `json:"runningIds,omitempty"`
	problem    error
}

// RetentionAuditResult counts what the audit found and did.
type RetentionAuditResult struct {
	AsOf time.Time `json:"asOf"`
	// Found: sealed orders past their purge due time and not on hold.
	Found int `json:"found"`
	// Purged: found orders whose workflow no longer ran, purged with a certificate.
	Purged int `json:"purged"`
	// Running: found orders whose workflow still runs (overdue; left to it).
	Running    int      `json:"running"`
	RunningIDs []string `json:"runningIds,omitempty"`
	// EvidenceSeq is the audit's summary in the evidence log.
	EvidenceSeq int64 `json:"evidenceSeq"`
}

// maxAuditBatches bounds one run's history; the rest continues as new.
const maxAuditBatches = 200

// RetentionAudit is run daily by the retention-audit Schedule. It is the safety
// net under every order's own purge: it finds each sealed order past its purge
// due time that no legal hold stops, whatever became of its workflow (failed,
// terminated, timed out, never started), and purges it with a certificate
// (reason retention-audit). An order whose workflow still runs is left to it and
// reported as overdue. The summary goes to the evidence log. A bad input fails
// the run at once (ErrInvalidInput), naming the field.
func RetentionAudit(ctx workflow.Context, in RetentionAuditInput) (*RetentionAuditResult, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	var a *activities.Retention
	if in.BatchSize <= 0 {
		in.BatchSize = 100
	}
	if in.MaxBatches <= 0 {
		in.MaxBatches = maxAuditBatches
	}
	if in.AsOf.IsZero() {
		in.AsOf = workflow.Now(ctx).UTC()
	}
	for i := 0; i < in.MaxBatches; i++ {
		var res activities.AuditResult
		if err := workflow.ExecuteActivity(withOptions(ctx, auditOptions), a.AuditRetention, activities.AuditInput{
			AsOf: in.AsOf, BatchSize: in.BatchSize, AfterDueAt: in.AfterDueAt, AfterID: in.AfterID,
		}).Get(ctx, &res); err != nil {
			return nil, err
		}
		in.Found += res.Found
		in.Purged += res.Purged
		in.Running += res.Running
		for _, id := range res.RunningIDs {
			if len(in.RunningIDs) < maxAuditRunningIDs {
				in.RunningIDs = append(in.RunningIDs, id)
			}
		}
		in.AfterDueAt, in.AfterID = res.AfterDueAt, res.AfterID
		if !res.Remaining {
			return finishAudit(ctx, in)
		}
	}
	return nil, workflow.NewContinueAsNewError(ctx, RetentionAuditName, in)
}

// maxAuditRunningIDs bounds the ids of running overdue orders an audit reports.
const maxAuditRunningIDs = 100

func finishAudit(ctx workflow.Context, in RetentionAuditInput) (*RetentionAuditResult, error) {
	var a *activities.Retention
	if in.Running > 0 {
		workflow.GetLogger(ctx).Warn("Orders overdue for purge whose workflow still runs", "count", in.Running)
	}
	out := &RetentionAuditResult{AsOf: in.AsOf, Found: in.Found, Purged: in.Purged, Running: in.Running, RunningIDs: in.RunningIDs}
	info := workflow.GetInfo(ctx)
	if err := workflow.ExecuteActivity(withOptions(ctx, recordOptions), a.RecordAudit, activities.AuditSummary{
		AuditID: info.WorkflowExecution.ID + "@" + in.AsOf.Format(time.RFC3339), AsOf: in.AsOf,
		Found: in.Found, Purged: in.Purged, Running: in.Running, RunningIDs: in.RunningIDs,
	}).Get(ctx, &out.EvidenceSeq); err != nil {
		return nil, err
	}
	return out, nil
}
