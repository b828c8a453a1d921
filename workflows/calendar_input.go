package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/plusranger/dpp/activities"

	"github.com/plusranger/dpp/internal/calendar"
)

// The scheduled inputs of the calendar, the alert check and the Amazon data
// sweep decode strictly, like the other scheduled workflows' (input.go): a
// schedule edited in the Web UI with an unknown or mistyped field fails its
// run at once, naming the field, never echoing its value.

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *ComplianceCalendarInput) UnmarshalJSON(b []byte) error {
	var v struct {
		Duty *string `json:"duty"`
	}
	err := errors.Join(decodeStrict(b, &v), exactFields(b, &v))
	if err == nil && v.Duty != nil {
		in.Duty = *v.Duty
	}
	if err == nil && !calendar.Known(in.Duty) {
		err = fmt.Errorf(`field "duty" must be one of %v`, calendar.Duties)
	}
	in.problem = firstError(err)
	return nil
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *AlertCheckInput) UnmarshalJSON(b []byte) error {
	var v struct {
		Schedules []string `json:"schedules"`
	}
	err := errors.Join(decodeStrict(b, &v), exactFields(b, &v))
	if err == nil {
		in.Schedules = v.Schedules
	}
	in.problem = firstError(err)
	return nil
}

// Validate names the bad field.
func (in AlertCheckInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf("AlertCheck input: %w", in.problem)
	}
	for _, id := range in.Schedules {
		if id == "" {
			return errors.New(`AlertCheck input: field "schedules" holds an empty id`)
		}
	}
	return nil
}

// Validate names the bad field.
func (in AmazonDataSweepInput) Validate() error {
	if in.problem != nil {
		return fmt.Errorf("AmazonDataSweep input: %w", in.problem)
	}
	return nil
}

// UnmarshalJSON decodes as TaxRecordSweepInput does: the same one field.
func (in *AmazonDataSweepInput) UnmarshalJSON(b []byte) error {
	var t TaxRecordSweepInput
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	in.BatchSize, in.problem = t.BatchSize, t.problem
	return nil
}

// ComplianceDutyInput is the plan ComplianceCalendar starts a duty with
// (activities.DutyPlan, the same JSON), decoded as strictly as the scheduled
// inputs: a duty started by hand with a mistyped field fails at once.
type ComplianceDutyInput struct {
	activities.DutyPlan
	problem error
}

// UnmarshalJSON decodes strictly and records, rather than returns, any problem.
func (in *ComplianceDutyInput) UnmarshalJSON(b []byte) error {
	var v activities.DutyPlan
	err := errors.Join(decodeStrict(b, &v), exactFields(b, &v))
	if err == nil {
		in.DutyPlan = v
	}
	in.problem = firstError(err)
	return nil
}

// Validate names the bad field (the workflow also checks its ID against
// duty and period).
func (in ComplianceDutyInput) Validate() error {
	var err error
	switch {
	case in.problem != nil:
		err = in.problem
	case !calendar.Known(in.Duty):
		err = fmt.Errorf(`field "duty" must be one of %v`, calendar.Duties)
	case calendar.CheckPeriod(in.Period) != nil:
		err = calendar.CheckPeriod(in.Period)
	case in.DueAt.IsZero():
		err = errors.New(`field "dueAt" is required`)
	case in.OverdueEvery <= 0:
		err = errors.New(`field "overdueEvery" must be a positive duration in nanoseconds`)
	}
	for _, r := range in.Reminders {
		if err == nil && r <= 0 {
			err = errors.New(`field "reminders" must hold positive durations in nanoseconds`)
		}
	}
	if err != nil {
		return fmt.Errorf("ComplianceDuty input: %w", err)
	}
	return nil
}

// UnmarshalJSON decodes the complete signal's and update's payload strictly;
// validateCompletion reports the problem (the update's validator rejects it,
// the signal is logged and ignored).
func (r *CompleteDutyRequest) UnmarshalJSON(b []byte) error {
	var v struct {
		By           string     `json:"by"`
		Note         string     `json:"note"`
		NoteRef      string     `json:"noteRef"`
		ReportSHA256 string     `json:"reportSha256"`
		RotatedAt    *time.Time `json:"rotatedAt"`
	}
	err := errors.Join(decodeStrict(b, &v), exactFields(b, &v))
	if err == nil {
		*r = CompleteDutyRequest{By: v.By, Note: v.Note, NoteRef: v.NoteRef, ReportSHA256: v.ReportSHA256, RotatedAt: v.RotatedAt}
	}
	r.problem = firstError(err)
	return nil
}
