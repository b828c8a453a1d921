package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slack-go/slack"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/workflows"
)

// accessDeps are the access review's own connections, opened on first use: the
// postgres connector's pool (DPP_ACCESS_POSTGRES_URL) and the Slack client.
type accessDeps struct {
	once    sync.Once
	err     error
	service *access.Service
	pgPool  *pgxpool.Pool
}

// AccessService is the access registry, its connectors and Slack, built from the
// configuration on first use.
func (a *App) AccessService(ctx context.Context) (*access.Service, error) {
	d := &a.access
	d.once.Do(func() {
		reg := &access.Registry{Pool: a.Pool, Vault: a.Vault, Signer: a.Signer}
		var conns access.Connectors
		var automatic []string
		if url := a.Config.AccessPostgresURL; url != "" {
			if d.pgPool, d.err = pgxpool.New(ctx, url); d.err != nil {
				d.err = fmt.Errorf("DPP_ACCESS_POSTGRES_URL: %w", d.err)
				return
			}
			conns = append(conns, &access.PostgresConnector{Pool: d.pgPool, Application: a.applicationRoles()})
			automatic = append(automatic, access.SystemPostgres)
		}
		conns = append(conns, &access.RegistryConnector{Registry: reg, Automatic: automatic})
		d.service = &access.Service{Registry: reg, Connectors: conns, DPO: a.Config.DPOPersonID}
		if a.Config.SlackBotToken != "" {
			var opts []slack.Option
			if a.Config.SlackAPIURL != "" {
				opts = append(opts, slack.OptionAPIURL(a.Config.SlackAPIURL))
			}
			d.service.Slack = &access.SlackNotifier{Client: slack.New(a.Config.SlackBotToken, opts...)}
		}
	})
	return d.service, d.err
}

// applicationRoles are the roles the DPP runs as: the migrations' worker and
// auditor roles, and whatever role DATABASE_URL names.
func (a *App) applicationRoles() []string {
	roles := []string{store.WorkerRole, store.AuditorRole}
	if pc, err := pgxpool.ParseConfig(a.Config.DatabaseURL); err == nil && pc.ConnConfig.User != "" {
		roles = append(roles, pc.ConnConfig.User)
	}
	return roles
}

func (d *accessDeps) close() {
	if d.pgPool != nil {
		d.pgPool.Close()
	}
}

// accessOptions are the access workflows' settings.
func (a *App) accessOptions() workflows.AccessOptions {
	c := a.Config
	return workflows.AccessOptions{Reminders: c.ReviewReminders, Escalation: c.ReviewEscalation, Deadline: c.ReviewDeadline,
		SLA: c.OffboardingSLA, Escalations: c.OffboardingEscalations, DPO: c.DPOPersonID}
}

// AccessActivities are the access activities with production dependencies.
func (a *App) AccessActivities(ctx context.Context) (*activities.Access, error) {
	s, err := a.AccessService(ctx)
	if err != nil {
		return nil, err
	}
	return &activities.Access{Service: s}, nil
}

// StartOffboarding starts a leaver's Offboarding (ID offboarding-<personId>)
// after checking the person exists; started is false when it already ran or runs.
func (a *App) StartOffboarding(ctx context.Context, in workflows.OffboardingInput) (started bool, err error) {
	if err := in.Validate(); err != nil {
		return false, err
	}
	s, err := a.AccessService(ctx)
	if err != nil {
		return false, err
	}
	if _, err := s.Registry.Person(ctx, in.PersonID); err != nil {
		return false, fmt.Errorf("personId %s: %w", in.PersonID, err)
	}
	return a.startOnce(ctx, workflows.OffboardingWorkflowID(in.PersonID), workflows.OffboardingName, in)
}

// StartAccessReview starts a campaign's review (ID access-review-<campaign>);
// started is false when it already ran or runs.
func (a *App) StartAccessReview(ctx context.Context, campaign string) (bool, error) {
	in := workflows.AccessReviewInput{Campaign: campaign}
	if err := in.Validate(); err != nil {
		return false, err
	}
	return a.startOnce(ctx, workflows.AccessReviewWorkflowID(campaign), workflows.AccessReviewName, in)
}

// startOnce starts a workflow whose ID may be used once, ever.
func (a *App) startOnce(ctx context.Context, id, name string, in any) (bool, error) {
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: a.Config.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true}, name, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("start %s: %w", id, err)
	}
	return true, nil
}
