package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/workflows"
)

// searchAttributes are the keys the Web UI searches by (workflows.SearchAttributes).
func searchAttributes() map[string]enumspb.IndexedValueType {
	out := make(map[string]enumspb.IndexedValueType, len(workflows.SearchAttributes))
	for _, k := range workflows.SearchAttributes {
		out[k.GetName()] = k.GetValueType()
	}
	return out
}

// Setup registers the search attributes and creates or updates the schedules.
// Running it again converges on the configuration; it never duplicates.
func (a *App) Setup(ctx context.Context) ([]string, error) {
	var report []string
	ns := a.Config.TemporalNamespace
	existing, err := a.Temporal.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return nil, fmt.Errorf("list search attributes of namespace %s: %w", ns, err)
	}
	want := searchAttributes()
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		if have, ok := existing.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		} else if have != typ {
			return nil, fmt.Errorf("search attribute %s exists with type %s, want %s: remove it or use another namespace", name, have, typ)
		}
	}
	if len(missing) > 0 {
		if _, err := a.Temporal.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: ns, SearchAttributes: missing}); err != nil {
			return nil, fmt.Errorf("add search attributes: %w", err)
		}
	}
	report = append(report, fmt.Sprintf("search attributes: %d present, %d added", len(want)-len(missing), len(missing)))

	// The worker's settings set the intervals they name; the table has the rest.
	intervals := map[string]time.Duration{
		workflows.OrderSyncScheduleID:      a.Config.SyncInterval,
		workflows.TaxRecordSweepScheduleID: a.Config.TaxSweepInterval,
	}
	for _, s := range workflows.Schedules {
		if d, ok := intervals[s.ID]; ok && s.Calendar == nil {
			s.Every = d
		}
		line, err := a.upsertSchedule(ctx, s)
		if err != nil {
			return report, err
		}
		report = append(report, line)
	}
	return report, nil
}

// ScheduleSpec is the Temporal spec of a schedule of the table.
func ScheduleSpec(s workflows.Schedule) client.ScheduleSpec {
	if c := s.Calendar; c != nil {
		return client.ScheduleSpec{TimeZoneName: c.TimeZone, Calendars: []client.ScheduleCalendarSpec{{
			Minute: []client.ScheduleRange{{Start: c.Minute}}, Hour: []client.ScheduleRange{{Start: c.Hour}},
			DayOfMonth: scheduleRanges(c.DaysOfMonth, 1, 31), Month: scheduleRanges(c.Months, 1, 12),
			Comment: c.Comment,
		}}}
	}
	return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.Every}}}
}

// scheduleRanges matches each value, or every value from lo to hi when there are none.
func scheduleRanges(vs []int, lo, hi int) []client.ScheduleRange {
	if len(vs) == 0 {
		return []client.ScheduleRange{{Start: lo, End: hi}}
	}
	out := make([]client.ScheduleRange, len(vs))
	for i, v := range vs {
		out[i] = client.ScheduleRange{Start: v}
	}
	return out
}

// describe says when a schedule runs, for setup's report.
func describe(s workflows.Schedule) string {
	if s.Calendar != nil {
		return s.Calendar.Comment
	}
	return "every " + s.Every.String()
}

func (a *App) upsertSchedule(ctx context.Context, s workflows.Schedule) (string, error) {
	spec := ScheduleSpec(s)
	// A run may take up to ten intervals (a day for calendar schedules) before the next is skipped.
	timeout := 10 * s.Every
	if s.Calendar != nil {
		timeout = 24 * time.Hour
	}
	action := &client.ScheduleWorkflowAction{
		ID: s.ID, Workflow: s.Workflow, Args: []any{s.Input}, TaskQueue: a.Config.TaskQueue,
		WorkflowExecutionTimeout: timeout,
	}
	sc := a.Temporal.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{ID: s.ID, Spec: spec, Action: action,
		// One pass at a time: a slow pass is not doubled, and the next one catches up.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP})
	if err == nil {
		return fmt.Sprintf("schedule %s: created, %s", s.ID, describe(s)), nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return "", fmt.Errorf("create schedule %s: %w", s.ID, err)
	}
	err = sc.GetHandle(ctx, s.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			in.Description.Schedule.Spec = &spec
			in.Description.Schedule.Action = action
			in.Description.Schedule.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
	if err != nil {
		return "", fmt.Errorf("update schedule %s: %w", s.ID, err)
	}
	return fmt.Sprintf("schedule %s: updated, %s", s.ID, describe(s)), nil
}

// StartOrder starts an order's lifecycle; false if it already ran or runs.
func (a *App) StartOrder(ctx context.Context, amazonOrderID string) (bool, error) {
	return (&lifecycles{c: a.Temporal, taskQueue: a.Config.TaskQueue}).Start(ctx, amazonOrderID)
}

// CheckedCertificate is a certificate with the result of checking it.
type CheckedCertificate struct {
	Seq            int64           `json:"seq"`
	Subject        string          `json:"amazonOrderId"`
	IdempotencyKey string          `json:"reference"`
	RecordedAt     string          `json:"recordedAt"`
	Hash           string          `json:"hash"`
	SigningKeyID   string          `json:"signingKeyId"`
	Certificate    json.RawMessage `json:"certificate"`
	SignatureValid bool            `json:"signatureValid"`
	LinkValid      bool            `json:"linkValid"`
	ChainIntact    bool            `json:"chainIntact"`
	Problem        string          `json:"problem,omitempty"`
}

// Certificates returns an order's certificates of sanitization, each checked:
// its signature, its link to the entry before it, and the whole chain. It trusts
// the public keys in the database; auditors use CheckCertificates with pinned keys.
func (a *App) Certificates(ctx context.Context, amazonOrderID string) ([]CheckedCertificate, error) {
	return CheckCertificates(ctx, a.Pool, evidence.VerifyOptions{}, amazonOrderID)
}

// CheckCertificates returns an order's certificates of sanitization (evidence
// entries of kind evidence.KindCertificate about it), each checked with
// opts.Keys (nil: the keys in the database): its signature, its link to the
// entry before it, and the whole chain (including opts.Heads). It only reads, so
// dpp_auditor may run it; an error names the first certificate that fails.
func CheckCertificates(ctx context.Context, q evidence.Querier, opts evidence.VerifyOptions, amazonOrderID string) ([]CheckedCertificate, error) {
	recs, err := evidence.Get(ctx, q, amazonOrderID, evidence.KindCertificate)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no certificate of sanitization for order %s (not purged yet?)", amazonOrderID)
	}
	if opts.Keys == nil {
		if opts.Keys, err = evidence.PublicKeys(ctx, q); err != nil {
			return nil, err
		}
	}
	chain, err := evidence.VerifyWith(ctx, q, opts)
	if err != nil {
		return nil, err
	}
	out := make([]CheckedCertificate, 0, len(recs))
	for _, r := range recs {
		c := CheckedCertificate{Seq: r.Seq, Subject: r.Subject, IdempotencyKey: r.IdempotencyKey,
			RecordedAt: r.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), Hash: fmt.Sprintf("%x", r.Hash),
			SigningKeyID: r.SigningKeyID, Certificate: r.Body, ChainIntact: chain.OK()}
		prev := evidence.GenesisHash
		if r.Seq > 1 {
			p, err := evidence.BySeq(ctx, q, r.Seq-1)
			if err != nil {
				return nil, err
			}
			prev = p.Hash
		}
		if pub, ok := opts.Keys[r.SigningKeyID]; !ok {
			c.Problem = fmt.Sprintf("evidence: seq %d: signed by key %q, which is not among the trusted keys", r.Seq, r.SigningKeyID)
		} else if err := evidence.VerifyRecord(r, pub, prev); err != nil {
			c.Problem = err.Error()
		} else {
			c.SignatureValid, c.LinkValid = true, true
		}
		if !chain.OK() && c.Problem == "" {
			c.Problem = chain.FirstBroken.Error()
		}
		out = append(out, c)
	}
	for _, c := range out {
		if c.Problem != "" {
			return out, fmt.Errorf("certificate seq %d does not verify: %s", c.Seq, c.Problem)
		}
	}
	return out, nil
}

// VerifyEvidence checks the whole evidence chain with the keys in the database.
func (a *App) VerifyEvidence(ctx context.Context) (evidence.VerifyReport, error) {
	return evidence.Verify(ctx, a.Pool, nil)
}
