package app_test

import (
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/workflows"
)

func TestQuarterlyCalendarBecomesATemporalSpec(t *testing.T) {
	spec := app.ScheduleSpec(workflows.Schedule{ID: "access-review", Calendar: &workflows.Quarterly})
	if spec.TimeZoneName != "Europe/London" || len(spec.Intervals) != 0 || len(spec.Calendars) != 1 {
		t.Fatalf("spec %+v", spec)
	}
	c := spec.Calendars[0]
	want := []client.ScheduleRange{{Start: 1}, {Start: 4}, {Start: 7}, {Start: 10}}
	if len(c.Month) != 4 || c.Month[0] != want[0] || c.Month[3] != want[3] || c.DayOfMonth[0] != (client.ScheduleRange{Start: 1}) ||
		c.Hour[0] != (client.ScheduleRange{Start: 9}) || c.Minute[0] != (client.ScheduleRange{Start: 0}) {
		t.Fatalf("calendar %+v", c)
	}
	daily := app.ScheduleSpec(workflows.Schedule{Calendar: &workflows.Calendar{Hour: 3, TimeZone: "UTC"}})
	if d := daily.Calendars[0]; d.Month[0] != (client.ScheduleRange{Start: 1, End: 12}) || d.DayOfMonth[0] != (client.ScheduleRange{Start: 1, End: 31}) {
		t.Fatalf("an empty list must match every month and day: %+v", d)
	}
}

// Every schedule of the table has a registered workflow type and a unique id.
func TestScheduleTableNamesRegisteredWorkflows(t *testing.T) {
	registered := namesRegistry{}
	workflows.Register(registered, workflows.Options{})
	seen := map[string]bool{}
	for _, s := range workflows.Schedules {
		if !registered[s.Workflow] || seen[s.ID] || (s.Every <= 0) == (s.Calendar == nil) {
			t.Errorf("schedule %+v: unknown workflow, duplicate id, or not exactly one of interval and calendar", s)
		}
		seen[s.ID] = true
	}
}

// namesRegistry records the names workflows.Register registers.
type namesRegistry map[string]bool

func (r namesRegistry) RegisterWorkflowWithOptions(_ interface{}, o workflow.RegisterOptions) {
	r[o.Name] = true
}
