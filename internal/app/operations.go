package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/keyepochs"
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

// ErrSearchAttributesMissing: setup could not add search attributes the
// namespace lacks (Temporal Cloud allows no OperatorService); its report says
// how to create them.
var ErrSearchAttributesMissing = errors.New("search attributes missing")

// Setup registers the search attributes and creates or updates the schedules.
// Running it again converges on the configuration; it never duplicates.
//
// Where the OperatorService is not allowed (Temporal Cloud: search attributes
// are added with tcld or the Cloud UI), it checks through the visibility API
// that each attribute exists, reports for each missing one the command that
// creates it, still creates the schedules, and then returns an error wrapping
// ErrSearchAttributesMissing.
func (a *App) Setup(ctx context.Context) ([]string, error) {
	report, missing, err := a.ensureSearchAttributes(ctx)
	if err != nil {
		return report, err
	}
	// The worker's settings set the intervals they name; the table has the rest.
	intervals := map[string]time.Duration{
		workflows.OrderSyncScheduleID:      a.Config.SyncInterval,
		workflows.TaxRecordSweepScheduleID: a.Config.TaxSweepInterval,
		workflows.KeyEpochsScheduleID:      a.Config.KeyEpoch,
		workflows.AlertCheckScheduleID:     a.Config.AlertInterval,
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
	if len(missing) > 0 {
		return report, fmt.Errorf("%w in namespace %s: %s (create them with the commands above, then run setup again)",
			ErrSearchAttributesMissing, a.Config.TemporalNamespace, strings.Join(missing, ", "))
	}
	return report, nil
}

// operatorDenied reports whether the server refuses the OperatorService to
// this client: Temporal Cloud answers PermissionDenied (or Unimplemented).
func operatorDenied(err error) bool {
	c := grpcCode(err)
	return c == codes.PermissionDenied || c == codes.Unimplemented
}

// grpcCode is the gRPC status code of an error from the Temporal client.
func grpcCode(err error) codes.Code {
	var se serviceerror.ServiceError
	if errors.As(err, &se) {
		return se.Status().Code()
	}
	return status.Code(err)
}

// ensureSearchAttributes adds the search attributes the namespace lacks, or,
// where it may not, finds and reports the missing ones (sorted by name).
func (a *App) ensureSearchAttributes(ctx context.Context) (report, missing []string, err error) {
	ns := a.Config.TemporalNamespace
	want := searchAttributes()
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)

	var absent []string
	var deniedBy error
	existing, err := a.Temporal.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	switch {
	case operatorDenied(err):
		deniedBy = err
		if absent, err = a.searchAttributesMissingFromVisibility(ctx, names, want); err != nil {
			return nil, nil, err
		}
	case err != nil:
		return nil, nil, fmt.Errorf("list search attributes of namespace %s: %w", ns, err)
	default:
		for _, name := range names {
			if have, ok := existing.GetCustomAttributes()[name]; !ok {
				absent = append(absent, name)
			} else if have != want[name] {
				return nil, nil, fmt.Errorf("search attribute %s exists with type %s, want %s: remove it or use another namespace", name, have, want[name])
			}
		}
		if len(absent) == 0 {
			break
		}
		add := make(map[string]enumspb.IndexedValueType, len(absent))
		for _, name := range absent {
			add[name] = want[name]
		}
		_, err := a.Temporal.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: ns, SearchAttributes: add})
		if err == nil {
			return []string{fmt.Sprintf("search attributes: %d present, %d added", len(want)-len(absent), len(absent))}, nil, nil
		}
		if !operatorDenied(err) {
			return nil, nil, fmt.Errorf("add search attributes: %w", err)
		}
		deniedBy = err
	}
	if deniedBy == nil {
		return []string{fmt.Sprintf("search attributes: %d present, 0 added", len(want))}, nil, nil
	}
	if len(absent) == 0 {
		return []string{fmt.Sprintf("search attributes: %d present (checked with visibility queries: this connection may not use the OperatorService)", len(want))}, nil, nil
	}
	report = append(report, fmt.Sprintf("search attributes: %d present, %d missing in namespace %s, which this connection may not add (%s, as on Temporal Cloud). Create each, then run setup again:",
		len(want)-len(absent), len(absent), ns, grpcCode(deniedBy)))
	for _, name := range absent {
		typ := want[name].String()
		report = append(report,
			fmt.Sprintf("  %s (%s), Temporal Cloud: tcld namespace search-attributes add --namespace %s --search-attribute %s=%s", name, typ, ns, name, typ),
			fmt.Sprintf("  %s (%s), self-hosted:    temporal operator search-attribute create --namespace %s --name %s --type %s", name, typ, ns, name, typ))
	}
	return report, absent, nil
}

// searchAttributesMissingFromVisibility finds the attributes the namespace
// lacks without the OperatorService: a visibility query that names an unknown
// search attribute fails as an invalid argument. It confirms that each exists,
// not its type.
func (a *App) searchAttributesMissingFromVisibility(ctx context.Context, names []string, want map[string]enumspb.IndexedValueType) ([]string, error) {
	var missing []string
	for _, name := range names {
		_, err := a.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: a.Config.TemporalNamespace, Query: name + " = " + sampleValue(want[name])})
		switch {
		case err == nil:
		case grpcCode(err) == codes.InvalidArgument:
			missing = append(missing, name)
		default:
			return nil, fmt.Errorf("check search attribute %s with a visibility query: %w", name, err)
		}
	}
	return missing, nil
}

// sampleValue is a literal of the type, for a query that only checks a name.
func sampleValue(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "'2000-01-01T00:00:00Z'"
	case enumspb.INDEXED_VALUE_TYPE_INT, enumspb.INDEXED_VALUE_TYPE_DOUBLE:
		return "0"
	case enumspb.INDEXED_VALUE_TYPE_BOOL:
		return "true"
	}
	return "'dpp-setup-check'"
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

// CheckedCertificate is a certificate of sanitization with the result of
// checking it, and the epoch keys that protect the copies of what it erased.
type CheckedCertificate struct {
	CheckedEntry
	// EpochKeys are the KMS epoch keys that wrapped the erased data key at some
	// time, so still protect its copies in WAL and backups until each is deleted.
	EpochKeys []EpochKeyStatus `json:"epochKeys,omitempty"`
	// PromiseComplete: every such key's deletion is scheduled, with its epoch
	// certificate: from EpochKeys' last deletion date no copy decrypts. False
	// while a key still waits for its epoch's end (or for data keys sealed
	// before key epochs, under the configured key, which is never deleted).
	PromiseComplete bool `json:"promiseComplete"`
}

// CheckedEntry is a signed evidence entry with the result of checking it.
type CheckedEntry struct {
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

// EpochKeyStatus is one epoch key of an order, with its checked epoch
// certificate once its deletion is scheduled.
type EpochKeyStatus struct {
	Alias    string `json:"alias"`
	KMSKeyID string `json:"kmsKeyId"`
	State    string `json:"state"`
	How      string `json:"how"` // sealed or rewrapped
	// DeletionTakesEffect is KMS's deletion date, or the planned one.
	DeletionTakesEffect string        `json:"deletionTakesEffect"`
	Planned             bool          `json:"planned,omitempty"`
	EpochCertificate    *CheckedEntry `json:"epochCertificate,omitempty"`
	// DeletionConfirmedSeq is the signed follow-up once DescribeKey no longer found the key.
	DeletionConfirmedSeq int64 `json:"deletionConfirmedSeq,omitempty"`
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
// entry before it, and the whole chain (including opts.Heads). Each names the
// epoch keys that still protect copies of what it erased, with their epoch
// certificates, checked the same way. It only reads, so dpp_auditor may run
// it; an error names the first certificate that fails.
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
	var problems []CheckedEntry
	for _, r := range recs {
		e, err := checkRecord(ctx, q, opts, chain, r)
		if err != nil {
			return nil, err
		}
		c := CheckedCertificate{CheckedEntry: e}
		purpose := keyepochs.PurposeTaxRecord
		switch {
		case strings.HasPrefix(r.IdempotencyKey, "purge/"+keyepochs.PurposePII+"/"):
			purpose = keyepochs.PurposePII
		case strings.HasPrefix(r.IdempotencyKey, "purge/"+keyepochs.PurposeCreditNote+"/"):
			purpose = keyepochs.PurposeCreditNote
		}
		if c.EpochKeys, c.PromiseComplete, err = epochKeysOf(ctx, q, opts, chain, amazonOrderID, purpose); err != nil {
			return nil, err
		}
		problems = append(problems, e)
		for _, k := range c.EpochKeys {
			if k.EpochCertificate != nil {
				problems = append(problems, *k.EpochCertificate)
			}
		}
		out = append(out, c)
	}
	for _, c := range problems {
		if c.Problem != "" {
			return out, fmt.Errorf("certificate seq %d does not verify: %s", c.Seq, c.Problem)
		}
	}
	return out, nil
}

// checkRecord checks one evidence entry's signature, its link and the chain.
func checkRecord(ctx context.Context, q evidence.Querier, opts evidence.VerifyOptions, chain evidence.VerifyReport, r evidence.Record) (CheckedEntry, error) {
	c := CheckedEntry{Seq: r.Seq, Subject: r.Subject, IdempotencyKey: r.IdempotencyKey,
		RecordedAt: r.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), Hash: fmt.Sprintf("%x", r.Hash),
		SigningKeyID: r.SigningKeyID, Certificate: r.Body, ChainIntact: chain.OK()}
	prev := evidence.GenesisHash
	if r.Seq > 1 {
		p, err := evidence.BySeq(ctx, q, r.Seq-1)
		if err != nil {
			return c, err
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
	return c, nil
}

// epochKeysOf lists the epoch keys that wrapped an order's data key of the
// purpose, each with its checked epoch certificate when there is one, and
// whether they are all scheduled for deletion. The planned dates assume the
// default deletion window: the auditor has no configuration, and a scheduled
// key carries KMS's own date.
func epochKeysOf(ctx context.Context, q evidence.Querier, opts evidence.VerifyOptions, chain evidence.VerifyReport, orderID, purpose string) ([]EpochKeyStatus, bool, error) {
	keys, err := keyepochs.ProtectionOf(ctx, q, orderID, purpose, keyepochs.Default.DeletionWindow)
	if err != nil {
		return nil, false, err
	}
	complete := len(keys) > 0
	out := make([]EpochKeyStatus, 0, len(keys))
	for _, k := range keys {
		s := EpochKeyStatus{Alias: k.Alias, KMSKeyID: k.KMSKeyID, State: k.State, How: k.How,
			DeletionTakesEffect: k.DeletionTakesEffect.Format(time.RFC3339), Planned: k.Planned}
		if k.CertificateSeq != nil {
			r, err := evidence.BySeq(ctx, q, *k.CertificateSeq)
			if err != nil {
				return nil, false, err
			}
			c, err := checkRecord(ctx, q, opts, chain, r)
			if err != nil {
				return nil, false, err
			}
			s.EpochCertificate = &c
		}
		if recs, err := evidence.Get(ctx, q, k.Alias, keyepochs.KindEpochDeleted); err != nil {
			return nil, false, err
		} else if len(recs) > 0 {
			s.DeletionConfirmedSeq = recs[0].Seq
		}
		complete = complete && s.EpochCertificate != nil
		out = append(out, s)
	}
	return out, complete, nil
}

// VerifyEvidence checks the whole evidence chain with the keys in the database.
func (a *App) VerifyEvidence(ctx context.Context) (evidence.VerifyReport, error) {
	return evidence.Verify(ctx, a.Pool, nil)
}
