package doctor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/workflows"
)

// Check names of the Temporal group.
const (
	CheckTemporal         = "temporal"
	CheckSearchAttributes = "search attributes"
	CheckSchedules        = "schedules"
)

// errTemporalOptions marks a configuration that gives no client options.
var errTemporalOptions = errors.New("TEMPORAL_* settings")

// dialTemporal connects as the worker would, without its log lines.
func dialTemporal(ctx context.Context, cfg *config.Config) (client.Client, error) {
	co, err := app.TemporalClientOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errTemporalOptions, err)
	}
	co.Logger = log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	return client.DialContext(ctx, co)
}

func checkTemporal(ctx context.Context, cfg *config.Config, _ Options) []Result {
	c, err := dialTemporal(ctx, cfg)
	if errors.Is(err, errTemporalOptions) {
		return []Result{fail(CheckTemporal, oneLine(err), "correct the TEMPORAL_* settings")}
	}
	if err != nil {
		return []Result{fail(CheckTemporal, "cannot connect to "+cfg.TemporalAddress+": "+oneLine(err),
			"start Temporal or correct TEMPORAL_ADDRESS (and TEMPORAL_TLS, TEMPORAL_API_KEY for Temporal Cloud)")}
	}
	defer c.Close()
	ns := cfg.TemporalNamespace
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
		return []Result{fail(CheckTemporal, "namespace "+ns+": "+oneLine(err),
			"create the namespace (temporal operator namespace create "+ns+") or correct TEMPORAL_NAMESPACE")}
	}
	out := []Result{ok(CheckTemporal, "connected to "+cfg.TemporalAddress+", namespace "+ns)}

	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		out = append(out, warn(CheckSearchAttributes, "cannot list them: "+oneLine(err), "run `starter setup`, which checks them another way where listing is not allowed"))
	} else {
		var bad []string
		for _, k := range workflows.SearchAttributes {
			have, found := sa.GetCustomAttributes()[k.GetName()]
			switch {
			case !found:
				bad = append(bad, k.GetName()+" missing")
			case have != k.GetValueType():
				bad = append(bad, fmt.Sprintf("%s is %s, want %s", k.GetName(), have, k.GetValueType()))
			}
		}
		if len(bad) > 0 {
			out = append(out, fail(CheckSearchAttributes, strings.Join(bad, "; "), "run `starter setup` (it registers them), or on Temporal Cloud add them with tcld"))
		} else {
			out = append(out, ok(CheckSearchAttributes, fmt.Sprintf("all %d present with their types", len(workflows.SearchAttributes))))
		}
	}

	var bad, paused []string
	for _, s := range workflows.Schedules {
		d, err := c.ScheduleClient().GetHandle(ctx, s.ID).Describe(ctx)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			bad = append(bad, s.ID+" missing")
		case err != nil:
			bad = append(bad, s.ID+": "+oneLine(err))
		case d.Schedule.State != nil && d.Schedule.State.Paused:
			paused = append(paused, s.ID)
		default:
			if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok && fmt.Sprint(a.Workflow) != s.Workflow {
				bad = append(bad, fmt.Sprintf("%s starts %v, want %s", s.ID, a.Workflow, s.Workflow))
			}
		}
	}
	switch {
	case len(bad) > 0:
		out = append(out, fail(CheckSchedules, strings.Join(bad, "; "), "run `starter setup`: it creates or updates every schedule"))
	case len(paused) > 0:
		out = append(out, warn(CheckSchedules, "paused: "+strings.Join(paused, ", "), "unpause them (temporal schedule toggle --unpause --schedule-id ID) unless paused on purpose"))
	default:
		out = append(out, ok(CheckSchedules, fmt.Sprintf("all %d present and running", len(workflows.Schedules))))
	}
	return out
}
