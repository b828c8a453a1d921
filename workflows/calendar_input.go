package workflows

import (
	"errors"
	"fmt"

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

// UnmarshalJSON decodes as TaxRecordSweepInput does: the same one field.
func (in *AmazonDataSweepInput) UnmarshalJSON(b []byte) error {
	var t TaxRecordSweepInput
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	in.BatchSize, in.problem = t.BatchSize, t.problem
	return nil
}
