package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plusranger/dpp/internal/freetext"
)

// IncidentNotification's workflow type, ID and signals.
const (
	IncidentNotificationName = "IncidentNotification"

	SignalAdvanceStage         = "advance-stage"          // {"stage", "by", "note"}
	SignalApproveNotification  = "approve-notification"   // {"by", "target": "amazon|ico", "text"?}
	SignalICOReported          = "ico-reported"           // {"by", "reference"}
	SignalClose                = "close"                  // {"by", "lessons", "falsePositive", "reason"}
	SignalConfirmFalsePositive = "confirm-false-positive" // {"by"}
)

// IncidentSeverities are the severities a declaration may carry.
var IncidentSeverities = []string{"low", "medium", "high", "critical"}

const incidentIDPrefix = "incident-"

// IncidentWorkflowID is the workflow ID of an incident: one per incident, so
// declaring it twice is a no-op.
func IncidentWorkflowID(id string) string { return incidentIDPrefix + id }

// IncidentIDFromWorkflowID is the inverse of IncidentWorkflowID.
func IncidentIDFromWorkflowID(id string) (string, bool) {
	return strings.CutPrefix(id, incidentIDPrefix)
}

var (
	incidentIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	actorIDPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
)

// Limits of the declaration's texts.
const (
	maxIncidentTitle   = 200
	maxIncidentSummary = 4000
	maxIncidentNote    = 4000
)

// IncidentInput is IncidentNotification's input. Title and summary are
// personal data as far as this system is concerned: the first activity seals
// them and nothing else in the run carries them. Decoding never fails: a
// problem is reported by Validate, which fails the run at once.
type IncidentInput struct {
	ID           string `json:"id,omitempty"`
	Title        string `json:"title"`
	DetectedAt   string `json:"detectedAt,omitempty"`
	Severity     string `json:"severity"`
	ReportedBy   string `json:"reportedBy,omitempty"`
	Summary      string `json:"summary,omitempty"`
	PersonalData bool   `json:"personalData"`
	problem      error
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *IncidentInput) UnmarshalJSON(b []byte) error {
	type plain IncidentInput
	var v plain
	if err := errors.Join(decodeStrict(b, &v), exactFields(b, &v)); err != nil {
		in.problem = firstError(err)
		return nil
	}
	*in = IncidentInput(v)
	return nil
}

const incidentInputExample = `{"title": "...", "severity": "high", "detectedAt": "2026-12-01T09:00:00Z", "personalData": false}`

// Validate names the first thing wrong with the declaration, never its
// values, and returns the detection time (declaredAt when none is given).
func (in IncidentInput) Validate(declaredAt time.Time) (time.Time, error) {
	bad := func(format string, args ...any) (time.Time, error) {
		return time.Time{}, fmt.Errorf("IncidentNotification input: "+format+"; want "+incidentInputExample, args...)
	}
	switch {
	case in.problem != nil:
		return bad("%v", in.problem)
	case in.ID != "" && !incidentIDPattern.MatchString(in.ID):
		return bad(`field "id" must be 1 to 63 letters, digits, ".", "_" or "-"`)
	case strings.TrimSpace(in.Title) == "":
		return bad(`field "title" is missing or empty`)
	case utf8.RuneCountInString(in.Title) > maxIncidentTitle:
		return bad(`field "title" is longer than %d characters`, maxIncidentTitle)
	case utf8.RuneCountInString(in.Summary) > maxIncidentSummary:
		return bad(`field "summary" is longer than %d characters`, maxIncidentSummary)
	case !slices.Contains(IncidentSeverities, in.Severity):
		return bad(`field "severity" must be one of %s`, strings.Join(IncidentSeverities, ", "))
	case in.ReportedBy != "" && !actorIDPattern.MatchString(in.ReportedBy):
		return bad(`field "reportedBy" must be an id (a Slack user id or an operator id), not a name or an e-mail address`)
	}
	if in.DetectedAt == "" {
		return declaredAt, nil
	}
	var detected time.Time
	if err := detected.UnmarshalText([]byte(in.DetectedAt)); err != nil || !validOffset(detected) {
		return bad(`field "detectedAt" is not an RFC 3339 date-time`)
	}
	// A minute's grace for the clocks of whoever declares.
	if detected.After(declaredAt.Add(time.Minute)) {
		return bad(`field "detectedAt" is later than the declaration`)
	}
	return detected, nil
}

// Signal payloads of IncidentNotification.
type (
	AdvanceStageSignal struct {
		Stage string `json:"stage,omitempty"` // empty: the next stage
		By    string `json:"by"`
		Note  string `json:"note,omitempty"`
		// NoteRef (and the other refs below) name a text sealed before the
		// decision was sent (internal/freetext), so it never enters the history.
		NoteRef string `json:"noteRef,omitempty"`
	}
	ApproveNotificationSignal struct {
		By     string `json:"by"`
		Target string `json:"target"`
		Text   string `json:"text,omitempty"`
	}
	ICOReportedSignal struct {
		By        string `json:"by"`
		Reference string `json:"reference"`
	}
	CloseSignal struct {
		By            string `json:"by"`
		Lessons       string `json:"lessons,omitempty"`
		FalsePositive bool   `json:"falsePositive,omitempty"`
		Reason        string `json:"reason,omitempty"`
		LessonsRef    string `json:"lessonsRef,omitempty"`
		ReasonRef     string `json:"reasonRef,omitempty"`
	}
	ConfirmFalsePositiveSignal struct {
		By string `json:"by"`
	}
)

// incidentSignal is a signal payload that checks what its schema says.
type incidentSignal interface{ Validate() error }

// decodeIncidentSignal decodes a signal's payload strictly and checks it; the
// error names the field, never a value.
func decodeIncidentSignal(raw json.RawMessage, v incidentSignal) error {
	// exactFields ranges over the payload's keys only to sort them: the
	// result does not depend on map order.
	//workflowcheck:ignore
	if err := errors.Join(decodeStrict(raw, v), exactFields(raw, v)); err != nil {
		return firstError(err)
	}
	return v.Validate()
}

var (
	byPattern        = regexp.MustCompile(`^[^\s<>]{1,254}$`)
	stagePattern     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)
	referencePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$`)
)

// checkIncidentBy checks a signal's "by": a Slack user id, an operator id, or
// an approver's e-mail address (which CheckIncidentApprover turns into an
// approver-<n> reference before anything records it).
func checkIncidentBy(by string) error {
	if by == "" {
		return errors.New(`field "by" is missing`)
	}
	if !byPattern.MatchString(by) {
		return errors.New(`field "by" must be a Slack user id, an operator id or an approver's address`)
	}
	return nil
}

func checkLength(field, v string, max int) error {
	if utf8.RuneCountInString(v) > max {
		return fmt.Errorf("field %q is longer than %d characters", field, max)
	}
	return nil
}

// Validate checks the payload as signal.advance-stage.schema.json does.
func (s AdvanceStageSignal) Validate() error {
	if s.Stage != "" && !stagePattern.MatchString(s.Stage) {
		return errors.New(`field "stage" must be a stage id such as containment`)
	}
	return errors.Join(checkIncidentBy(s.By), checkLength("note", s.Note, maxIncidentNote), checkTextRef("note", s.Note, s.NoteRef))
}

// Validate checks the payload as signal.approve-notification.schema.json does.
func (s ApproveNotificationSignal) Validate() error {
	if s.Target != "amazon" && s.Target != "ico" {
		return errors.New(`field "target" must be amazon or ico`)
	}
	return errors.Join(checkIncidentBy(s.By), checkLength("text", s.Text, maxIncidentSummary))
}

// Validate checks the payload as signal.ico-reported.schema.json does.
func (s ICOReportedSignal) Validate() error {
	if !referencePattern.MatchString(s.Reference) {
		return errors.New(`field "reference" must be the ICO's reference number (letters, digits, ".", "-", "/", ":", up to 64)`)
	}
	return checkIncidentBy(s.By)
}

// Validate checks the payload as signal.close.schema.json does; whether
// lessons or a reason is needed depends on falsePositive, which the workflow
// checks.
func (s CloseSignal) Validate() error {
	return errors.Join(checkIncidentBy(s.By), checkLength("lessons", s.Lessons, maxIncidentNote), checkLength("reason", s.Reason, maxIncidentNote),
		checkTextRef("lessons", s.Lessons, s.LessonsRef), checkTextRef("reason", s.Reason, s.ReasonRef))
}

// checkTextRef checks field's ref (fieldRef): a sealed text's ref, and not
// beside the text itself.
func checkTextRef(field, text, ref string) error {
	switch {
	case ref == "":
		return nil
	case !freetext.RefPattern.MatchString(ref):
		return fmt.Errorf("field %q must be a sealed text's ref (letters, digits and . _ : / -)", field+"Ref")
	case text != "":
		return fmt.Errorf("fields %q and %q exclude each other", field, field+"Ref")
	}
	return nil
}

// Validate checks the payload as signal.confirm-false-positive.schema.json does.
func (s ConfirmFalsePositiveSignal) Validate() error { return checkIncidentBy(s.By) }
