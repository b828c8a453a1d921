package workflows

import (
	"errors"
	"time"
)

// Strict decoding of the access workflows' inputs, signals and updates, as for
// the order's (input.go): a payload that is not the expected JSON never fails a
// workflow task; the problem is kept and Validate reports it, naming the field
// and never the value. The schemas in schemas/json say the same.

// decodeInto decodes b strictly into v (unknown fields, case-folded names and
// nulls refused) and returns the first problem.
func decodeInto(b []byte, v any) error {
	return firstError(errors.Join(decodeStrict(b, v), exactFields(b, v)))
}

// checkTime refuses a time whose offset encoding/json accepts and RFC 3339 does not.
func checkTime(field string, t time.Time) error {
	if !t.IsZero() && !validOffset(t) {
		return errors.New(`field "` + field + `" is not an RFC 3339 time (e.g. 2026-12-01T09:00:00Z)`)
	}
	return nil
}

func (in *AccessReviewInput) UnmarshalJSON(b []byte) error {
	var v struct {
		Campaign string `json:"campaign"`
	}
	in.problem = decodeInto(b, &v)
	in.Campaign = v.Campaign
	return nil
}

func (in *OffboardingInput) UnmarshalJSON(b []byte) error {
	var v struct {
		PersonID     string    `json:"personId"`
		TerminatedAt time.Time `json:"terminatedAt"`
		RequestedBy  string    `json:"requestedBy"`
	}
	in.problem = decodeInto(b, &v)
	if in.problem == nil {
		in.problem = checkTime("terminatedAt", v.TerminatedAt)
	}
	in.PersonID, in.TerminatedAt, in.RequestedBy = v.PersonID, v.TerminatedAt, v.RequestedBy
	return nil
}

func (d *DecisionSignal) UnmarshalJSON(b []byte) error {
	var v struct {
		ItemID   string `json:"itemId"`
		Decision string `json:"decision"`
		By       string `json:"by"`
		Reason   string `json:"reason"`
		// Added after sealing: old histories' payloads lack it, and decode the same.
		ReasonRef string `json:"reasonRef"`
	}
	d.problem = decodeInto(b, &v)
	d.ItemID, d.Decision, d.By, d.Reason, d.ReasonRef = v.ItemID, v.Decision, v.By, v.Reason, v.ReasonRef
	return nil
}

func (e *ExtendSignal) UnmarshalJSON(b []byte) error {
	var v struct {
		By    string    `json:"by"`
		Until time.Time `json:"until"`
	}
	e.problem = decodeInto(b, &v)
	if e.problem == nil {
		e.problem = checkTime("until", v.Until)
	}
	e.By, e.Until = v.By, v.Until
	return nil
}

func (c *ConfirmDisabledSignal) UnmarshalJSON(b []byte) error {
	var v struct {
		System  string `json:"system"`
		Account string `json:"account"`
		By      string `json:"by"`
	}
	c.problem = decodeInto(b, &v)
	c.System, c.Account, c.By = v.System, v.Account, v.By
	return nil
}
