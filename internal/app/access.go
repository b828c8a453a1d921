package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/access"
	"github.com/plusranger/dpp/internal/accessslack"
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
		// A nil Messenger must stay a nil interface: the service tells "no
		// Slack" apart from a failing Slack.
		if a.Slack != nil {
			d.service.Slack = a.Slack
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
	return &activities.Access{Service: s, Texts: a.FreeTexts()}, nil
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

// mountAccess registers the access review's Slack handlers (Keep/Revoke and the
// confirm button, the reason modal, /offboard) and the lockout's ingest route
// on the public listener.
func (a *App) mountAccess(p *Public) {
	h := &accessslack.Handlers{Temporal: a.Temporal, Registry: &access.Registry{Pool: a.Pool, Vault: a.Vault, Signer: a.Signer},
		TaskQueue: a.Config.TaskQueue, Requesters: a.Config.OffboardingRequesters, DPO: a.Config.DPOPersonID, Texts: a.FreeTexts()}
	if a.Slack != nil {
		h.UI = a.Slack
	}
	p.Router.OnAction(access.ActionPrefix, h.Action)
	p.Router.OnView(access.ViewReason, h.ReasonView)
	p.Router.OnCommand(accessslack.Command, h.Offboard)
	p.Ingest(LoginEventsPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := a.AccessService(r.Context())
		if err != nil {
			a.Log.Error("Access service unavailable", zap.Error(err))
			http.Error(w, "the access registry is unavailable; send the events again", http.StatusServiceUnavailable)
			return
		}
		access.LoginEventsHandler(s, a.Config.LockoutThreshold, a.Log.Named("lockout")).ServeHTTP(w, r)
	}))
}
