// Package calendar keeps the policy's periodic duties in PostgreSQL: each
// occurrence of a duty (table duty_occurrences) is opened when its
// ComplianceDuty workflow starts and completed, with a signed evidence entry
// and any attached report, in one transaction.
package calendar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/freetext"
)

// The duties of the calendar: stable names, used in workflow IDs
// (duty-<duty>-<period>), the database and Slack.
const (
	LWASecretRotation  = "lwa-secret-rotation"
	RiskAssessment     = "risk-assessment"
	IncidentPlanReview = "incident-plan-review"
	VulnerabilityScan  = "vulnerability-scan"
)

// Duties lists every duty, in the order the README documents them.
var Duties = []string{LWASecretRotation, RiskAssessment, IncidentPlanReview, VulnerabilityScan}

// Titles are what reminders call each duty.
var Titles = map[string]string{
	LWASecretRotation:  "Rotate the LWA client secret (it expires 180 days after issue)",
	RiskAssessment:     "Annual risk assessment",
	IncidentPlanReview: "Six-monthly review of the incident response plan",
	VulnerabilityScan:  "Vulnerability scan (every 30 days)",
}

// LWASecretLifetime is how long Amazon's LWA client secrets are valid.
const LWASecretLifetime = 180 * 24 * time.Hour

// KindDutyCompleted is the evidence kind of a completed duty.
const KindDutyCompleted = "compliance-duty-completed"

// MaxReport is the largest report one duty accepts.
const MaxReport = 8 << 20

var (
	periodRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)
	sourceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	// ErrNoOpenDuty: no occurrence of the duty waits for completion.
	ErrNoOpenDuty = errors.New("calendar: no open occurrence of this duty")
	// ErrUnknownDuty: not one of Duties.
	ErrUnknownDuty = errors.New("calendar: unknown duty")
)

// WorkflowID is the ID of a duty occurrence's workflow.
func WorkflowID(duty, period string) string { return "duty-" + duty + "-" + period }

// Known reports whether duty is one of Duties.
func Known(duty string) bool {
	_, ok := Titles[duty]
	return ok
}

// CheckPeriod validates a period label (e.g. 2026, 2026-H2, 2026-12-01).
func CheckPeriod(p string) error {
	if !periodRE.MatchString(p) {
		return errors.New(`field "period" must be 1 to 32 letters, digits or dashes`)
	}
	return nil
}

// Service reads and writes duty occurrences.
type Service struct {
	Pool   *pgxpool.Pool
	Signer *evidence.Signer
	// Texts seals completion notes.
	Texts *freetext.Store
	Now   func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Occurrence is one duty occurrence.
type Occurrence struct {
	WorkflowID   string     `json:"workflowId"`
	Duty         string     `json:"duty"`
	Period       string     `json:"period"`
	OpenedAt     time.Time  `json:"openedAt"`
	DueAt        time.Time  `json:"dueAt"`
	CompletedAt  *time.Time `json:"completedAt,omitempty"`
	CompletedBy  string     `json:"completedBy,omitempty"`
	RotatedAt    *time.Time `json:"rotatedAt,omitempty"`
	ReportSHA256 string     `json:"reportSha256,omitempty"`
	EvidenceSeq  int64      `json:"evidenceSeq,omitempty"`
}

// Open records that an occurrence started (idempotent: a second call keeps the
// first row).
func (s *Service) Open(ctx context.Context, duty, period string, openedAt, dueAt time.Time) error {
	if !Known(duty) {
		return ErrUnknownDuty
	}
	if err := CheckPeriod(period); err != nil {
		return err
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO duty_occurrences (workflow_id, duty, period, opened_at, due_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow_id) DO NOTHING`,
		WorkflowID(duty, period), duty, period, openedAt.UTC(), dueAt.UTC())
	return err
}

// Completion is how a duty was done.
type Completion struct {
	Duty   string `json:"duty"`
	Period string `json:"period"`
	// By is a person id, operator id or Slack user id (never a name).
	By string    `json:"by"`
	At time.Time `json:"at"`
	// Note is a short free text (a ticket reference). It is asked to hold no
	// PII but nothing can enforce that, so it is sealed (internal/freetext) and
	// the evidence keeps its ref.
	Note string `json:"note,omitempty"`
	// NoteRef names a note sealed before (the text did not travel here).
	NoteRef string `json:"noteRef,omitempty"`
	// ReportSHA256 names a report stored with AttachReport.
	ReportSHA256 string `json:"reportSha256,omitempty"`
	// RotatedAt is when the new LWA client secret was issued (rotation only).
	RotatedAt *time.Time `json:"rotatedAt,omitempty"`
}

// Complete marks the occurrence done and appends its evidence entry, in one
// transaction; a repeated call returns the first completion's evidence.
func (s *Service) Complete(ctx context.Context, c Completion) (Occurrence, error) {
	var out Occurrence
	wfID := WorkflowID(c.Duty, c.Period)
	key := KindDutyCompleted + "/" + wfID
	var note *freetext.Sealed
	if c.Note != "" {
		var err error
		// Sealed before the transaction: a KMS call must not hold the chain's lock.
		if note, err = s.Texts.Seal(ctx, freetext.KindDutyNote, key+"/note", wfID, c.Note, c.At); err != nil {
			return out, err
		}
	}
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		o, err := scanOccurrence(tx.QueryRow(ctx, `SELECT `+occurrenceColumns+` FROM duty_occurrences
			WHERE workflow_id = $1 FOR UPDATE`, wfID))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoOpenDuty
		}
		if err != nil {
			return err
		}
		if o.CompletedAt != nil {
			out = o
			return nil
		}
		at := c.At.UTC()
		body := map[string]any{
			"duty": o.Duty, "period": o.Period, "dueAt": o.DueAt, "completedAt": at, "by": c.By,
			"reportSha256": c.ReportSHA256, "rotatedAt": c.RotatedAt, "late": at.After(o.DueAt),
		}
		if c.NoteRef != "" {
			body["noteRef"] = c.NoteRef
		}
		if note != nil {
			if err := note.Insert(ctx, tx); err != nil {
				return err
			}
			body["noteRef"] = note.Ref
		}
		rec, _, err := evidence.Append(ctx, tx, s.Signer, evidence.Entry{Kind: KindDutyCompleted, Subject: o.WorkflowID,
			IdempotencyKey: key, Body: body}, s.now())
		if err != nil {
			return err
		}
		var report *string
		if c.ReportSHA256 != "" {
			report = &c.ReportSHA256
		}
		_, err = tx.Exec(ctx, `UPDATE duty_occurrences SET completed_at = $2, completed_by = $3, rotated_at = $4,
			report_sha256 = $5, evidence_seq = $6 WHERE workflow_id = $1`, o.WorkflowID, at, c.By, c.RotatedAt, report, rec.Seq)
		o.CompletedAt, o.CompletedBy, o.RotatedAt, o.EvidenceSeq = &at, c.By, c.RotatedAt, rec.Seq
		if report != nil {
			o.ReportSHA256 = *report
		}
		out = o
		return err
	})
	return out, err
}

const occurrenceColumns = `workflow_id, duty, period, opened_at, due_at, completed_at, COALESCE(completed_by, ''),
	rotated_at, COALESCE(report_sha256, ''), COALESCE(evidence_seq, 0)`

func scanOccurrence(row pgx.Row) (Occurrence, error) {
	var o Occurrence
	err := row.Scan(&o.WorkflowID, &o.Duty, &o.Period, &o.OpenedAt, &o.DueAt, &o.CompletedAt, &o.CompletedBy,
		&o.RotatedAt, &o.ReportSHA256, &o.EvidenceSeq)
	return o, err
}

// Get returns one occurrence.
func (s *Service) Get(ctx context.Context, workflowID string) (Occurrence, error) {
	o, err := scanOccurrence(s.Pool.QueryRow(ctx, `SELECT `+occurrenceColumns+` FROM duty_occurrences WHERE workflow_id = $1`, workflowID))
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNoOpenDuty
	}
	return o, err
}

// OpenOccurrence is the oldest open occurrence of duty (a scanner's webhook
// completes it).
func (s *Service) OpenOccurrence(ctx context.Context, duty string) (Occurrence, error) {
	o, err := scanOccurrence(s.Pool.QueryRow(ctx, `SELECT `+occurrenceColumns+` FROM duty_occurrences
		WHERE duty = $1 AND completed_at IS NULL ORDER BY due_at LIMIT 1`, duty))
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNoOpenDuty
	}
	return o, err
}

// LastRotation is when the LWA client secret was last recorded as issued by a
// completed rotation; zero when none was.
func (s *Service) LastRotation(ctx context.Context) (time.Time, error) {
	var t *time.Time
	err := s.Pool.QueryRow(ctx, `SELECT max(rotated_at) FROM duty_occurrences WHERE duty = $1 AND completed_at IS NOT NULL`,
		LWASecretRotation).Scan(&t)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Report is a stored report's metadata.
type Report struct {
	SHA256     string    `json:"sha256"`
	Duty       string    `json:"duty"`
	Source     string    `json:"source"`
	MediaType  string    `json:"mediaType"`
	ReceivedAt time.Time `json:"receivedAt"`
	Size       int       `json:"size"`
}

// AttachReport stores a report for duty (once per content) and returns its
// digest. source names who sent it (a person id or a scanner's name).
func (s *Service) AttachReport(ctx context.Context, duty, source, mediaType string, content []byte) (Report, error) {
	switch {
	case !Known(duty):
		return Report{}, ErrUnknownDuty
	case !sourceRE.MatchString(source):
		return Report{}, errors.New(`field "source" must be a lower-case id (letters, digits, . _ -)`)
	case len(content) == 0:
		return Report{}, errors.New("the report is empty")
	case len(content) > MaxReport:
		return Report{}, fmt.Errorf("the report is larger than %d bytes", MaxReport)
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	sum := sha256.Sum256(content)
	r := Report{SHA256: hex.EncodeToString(sum[:]), Duty: duty, Source: source, MediaType: mediaType,
		ReceivedAt: s.now(), Size: len(content)}
	_, err := s.Pool.Exec(ctx, `INSERT INTO duty_reports (sha256, duty, source, media_type, received_at, content)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING`, r.SHA256, duty, source, mediaType, r.ReceivedAt, content)
	return r, err
}

// HasReport reports whether a report with this digest is stored.
func (s *Service) HasReport(ctx context.Context, sha string) (bool, error) {
	var ok bool
	err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM duty_reports WHERE sha256 = $1)`, sha).Scan(&ok)
	return ok, err
}
