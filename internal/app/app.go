// Package app builds the whole system from a validated configuration: clients,
// the sealed store, activities and the worker. worker/main.go, starter/main.go
// and the integration tests all use it, so tests exercise production wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/plusranger/dpp/activities"
	"github.com/plusranger/dpp/internal/codec"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/evidence"
	"github.com/plusranger/dpp/internal/incident"
	"github.com/plusranger/dpp/internal/invoice"
	"github.com/plusranger/dpp/internal/keyepochs"
	"github.com/plusranger/dpp/internal/metrics"
	"github.com/plusranger/dpp/internal/notifications"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/internal/slackapp"
	"github.com/plusranger/dpp/internal/spapi"
	"github.com/plusranger/dpp/internal/store"
	"github.com/plusranger/dpp/internal/vault"
	"github.com/plusranger/dpp/workflows"
)

// keyCacheSize bounds the data keys a worker keeps in memory (see DPP_KEY_CACHE_TTL):
// enough for every order in flight on one worker.
const keyCacheSize = 4096

// Version is the build's version, printed on certificates of sanitization and
// by `worker -version`; Commit is the source revision it was built from. The
// Dockerfile stamps both with -ldflags "-X .../internal/app.Version=...".
var (
	Version = "dev"
	Commit  = "unknown"
)

// App is the running system's shared dependencies.
type App struct {
	Config *config.Config
	Log    *zap.Logger
	Pool   *pgxpool.Pool
	Vault  *vault.Vault
	Signer *evidence.Signer
	Orders *orders.Service
	// Epochs are the KMS key epochs new data keys are wrapped by (epochs.go).
	Epochs   *keyepochs.Service
	SPAPI    *spapi.Client
	Temporal client.Client
	// Metrics is the Prometheus registry /metrics serves: the SDK's metrics
	// (through contrib/tally), our gauges, Go runtime and process metrics.
	Metrics *metrics.Registry
	// Codec encrypts every Temporal payload the client writes and serves /codec/.
	Codec *codec.Codec

	// OrderChanges is the ORDER_CHANGE notification queue; nil when
	// DPP_ORDER_CHANGE_QUEUE_URL is empty (notifications.go).
	OrderChanges *notifications.Queue

	// access holds the access review's connections (access.go), opened on first use.
	access accessDeps
	// Slack posts and updates messages; nil when SLACK_BOT_TOKEN is empty (slack.go).
	Slack *slackapp.Messenger

	// incidentApprovers resolves DPP_INCIDENT_APPROVERS for the incident
	// activities and Slack handlers alike (incident_decide.go), so they share
	// one cache of Slack lookups; built on first use.
	approversOnce     sync.Once
	incidentApprovers *incident.Approvers

	// public is the public listener's routes (public.go), built on first use.
	publicOnce sync.Once
	public     *Public

	// policyGauges are the gauges /metrics serves (http.go), built on first use.
	gaugesOnce   sync.Once
	policyGauges *metrics.Gauges

	// draining is set once the worker has begun to stop (drain.go): /healthz
	// then answers 503 so a readiness probe takes the pod out of service.
	draining atomic.Bool
}

// Component is a dependency App builds. A command builds only what it uses:
// `starter setup` needs Temporal and nothing else, `starter invoice` the
// database and sealing, the worker everything.
type Component uint8

const (
	// Database is the PostgreSQL pool, its schema checked (DATABASE_URL).
	Database Component = 1 << iota
	// Sealing is KMS, the vault, the evidence signer and the orders service
	// over them (DPP_KMS_KEY_ID); it needs Database, which it adds.
	Sealing
	// SPAPI is the SP-API client (SPAPI_ENDPOINT, LWA_*).
	SPAPI
	// Temporal is the payload codec and the Temporal client (TEMPORAL_*, DPP_CODEC_*).
	Temporal
	// Slack is the Messenger (SLACK_BOT_TOKEN, SLACK_API_URL): App.Slack, nil
	// when the token is empty. It makes no call when built.
	Slack

	// Everything is what the worker uses, and what New builds by default.
	Everything = Database | Sealing | SPAPI | Temporal | Slack
)

// Options adjust New; the zero value builds everything, as the worker does.
type Options struct {
	// Uses names the components to build; zero means Everything. The fields of
	// App that belong to a component left out stay nil.
	Uses Component
	// Logger replaces the logger built from DPP_LOG_FORMAT and DPP_LOG_LEVEL.
	Logger *zap.Logger
	// TemporalClientOptions, if set, adjusts the Temporal client's options just
	// before dialling (tests: a gRPC interceptor that refuses what Temporal Cloud refuses).
	TemporalClientOptions func(*client.Options)
}

// New builds the components opts.Uses names (all of them by default): it
// checks that the database schema is current (it never migrates: `starter
// migrate` does) and loads the evidence signing key. Close releases it all.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	uses := opts.Uses
	if uses == 0 {
		uses = Everything
	}
	if uses&Sealing != 0 {
		uses |= Database
	}
	a := &App{Config: cfg, Log: opts.Logger}
	if a.Log == nil {
		var err error
		if a.Log, err = NewLogger(cfg.LogFormat, cfg.LogLevel); err != nil {
			return nil, err
		}
	}
	a.Metrics = metrics.New(a.Log.Named("metrics"))
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if uses&Database != 0 {
		if err := a.openDatabase(ctx); err != nil {
			return nil, err
		}
	}
	var kmsClient *kms.Client
	if uses&(Sealing|Temporal) != 0 {
		var err error
		if kmsClient, err = vault.NewKMSClient(ctx, cfg.AWSRegion, cfg.KMSEndpoint); err != nil {
			return nil, err
		}
	}
	if uses&Sealing != 0 {
		if err := a.openSealing(ctx, kmsClient); err != nil {
			return nil, err
		}
	}
	if uses&SPAPI != 0 {
		var err error
		if a.SPAPI, err = spapi.New(spapi.Config{
			Endpoint: cfg.SPAPIEndpoint, TokenURL: cfg.LWATokenURL, ClientID: cfg.LWAClientID,
			ClientSecret: cfg.LWAClientSecret, RefreshToken: cfg.LWARefreshToken, Logger: a.Log.Named("spapi"),
			Limits: a.spapiLimits(),
		}); err != nil {
			return nil, err
		}
	}
	if uses&Temporal != 0 {
		if err := a.dialTemporal(ctx, kmsClient, opts); err != nil {
			return nil, err
		}
	}
	if uses&Slack != 0 {
		a.Slack = newSlack(cfg)
	}
	if uses&(Sealing|SPAPI) != 0 {
		if err := a.openNotifications(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return a, nil
}

// openDatabase connects to PostgreSQL and checks, read-only, that the schema
// is exactly what this build expects: the worker never migrates (`starter
// migrate` does, as the schema owner).
func (a *App) openDatabase(ctx context.Context) error {
	var err error
	if a.Pool, err = pgxpool.New(ctx, a.Config.DatabaseURL); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := a.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("DATABASE_URL: cannot reach PostgreSQL: %w%s", err, roleHint(err))
	}
	if err := store.CheckSchema(ctx, a.Pool); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	return nil
}

// openSealing builds the vault, loads the evidence signing key and the orders
// service over them.
func (a *App) openSealing(ctx context.Context, kmsClient *kms.Client) error {
	cfg := a.Config
	var err error
	if a.Vault, err = vault.New(kmsClient, cfg.KMSKeyID, vault.WithKeyCache(cfg.KeyCacheTTL, keyCacheSize)); err != nil {
		return fmt.Errorf("DPP_KMS_KEY_ID: %w", err)
	}
	if a.Signer, err = evidence.LoadOrCreateSigner(ctx, a.Pool, a.Vault); err != nil {
		return fmt.Errorf("evidence signing key (check DPP_KMS_KEY_ID and AWS_ENDPOINT_URL_KMS): %w", err)
	}
	host, _ := os.Hostname()
	a.Orders = &orders.Service{Pool: a.Pool, Vault: a.Vault, Signer: a.Signer, Policy: orders.Policy{
		PIIRetention: cfg.PIIRetention, TaxRetention: cfg.TaxRetention, DeliveryFallback: cfg.DeliveryFallback,
		Seller:        invoice.Party{Name: cfg.SellerName, Address: cfg.SellerAddress, VATNumber: cfg.SellerVATNumber},
		InvoiceSeries: cfg.InvoiceSeries, VATRates: cfg.VATRates, DefaultVATRate: cfg.DefaultVATRate,
		SimplifiedLimit: cfg.SimplifiedInvoiceLimit, AlwaysFull: cfg.AlwaysFullInvoice,
		CreditNoteSeries: cfg.CreditNoteSeries,
		DPOContact:       cfg.DPOContact, BackupLocation: cfg.BackupLocation, Location: host, ToolVersion: Version,
	}}
	a.openEpochs(kmsClient)
	return nil
}

// dialTemporal builds the codec, which encrypts every payload, failure
// message and stack trace, and connects to Temporal through it.
func (a *App) dialTemporal(ctx context.Context, kmsClient *kms.Client, opts Options) error {
	cfg := a.Config
	var err error
	if a.Codec, err = codec.ForConfig(ctx, cfg, kmsClient); err != nil {
		return err
	}
	if err := a.Codec.Warm(ctx); err != nil {
		return fmt.Errorf("DPP_CODEC_KMS_KEY_ID %s: %w", a.Codec.KeyID(), err)
	}
	co, err := TemporalClientOptions(cfg)
	if err != nil {
		return err
	}
	co.Logger = temporalLogger(a.Log.Named("temporal"))
	co.MetricsHandler = a.Metrics.Handler()
	co.DataConverter, co.FailureConverter = a.Codec.Converters()
	if opts.TemporalClientOptions != nil {
		opts.TemporalClientOptions(&co)
	}
	if a.Temporal, err = client.Dial(co); err != nil {
		return fmt.Errorf("TEMPORAL_ADDRESS %s%s: %w", cfg.TemporalAddress, tlsNote(co), err)
	}
	return nil
}

// TemporalClientOptions are the Temporal client's connection options from the
// SDK's environment configuration (config.TemporalProfile: the configuration
// file's profile, TEMPORAL_* variables on top): address, namespace, API key,
// TLS and mTLS, gRPC metadata. The caller adds the logger, metrics handler and
// converters. A remote codec named by the profile is never used: the worker
// encrypts payloads itself.
func TemporalClientOptions(cfg *config.Config) (client.Options, error) {
	prof, err := cfg.TemporalProfile()
	if err != nil {
		return client.Options{}, fmt.Errorf("the Temporal client configuration (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE): %w", err)
	}
	co, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("the Temporal client configuration (TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE): %w", err)
	}
	co.ConnectionOptions.GrpcCompression = GRPCCompression()
	return co, nil
}

// GRPCCompression is the worker's gRPC compression towards Temporal: none. The
// SDK gzips every request by default, and the server then gzips its answers,
// but nearly all of what travels is payloads the codec has encrypted, which do
// not compress: measured with `make bench`, gzip was an eighth of the worker's
// CPU and cost the server as much, for nothing. The benchmark's own client uses
// it too, so its no-op baseline runs under the same conditions.
func GRPCCompression() client.GrpcCompression { return &client.GrpcCompressionNone{} }

// tlsNote says how the client connects, for connection errors: a certificate
// problem reads better next to the settings that chose the certificates.
func tlsNote(co client.Options) string {
	if co.ConnectionOptions.TLS == nil || co.ConnectionOptions.TLSDisabled {
		return " (plaintext; TEMPORAL_TLS, TEMPORAL_API_KEY and TEMPORAL_TLS_* turn TLS on)"
	}
	var parts []string
	if co.ConnectionOptions.TLS.RootCAs != nil {
		parts = append(parts, "server CA from TEMPORAL_TLS_SERVER_CA_CERT_*")
	} else {
		parts = append(parts, "server CA from the system")
	}
	if len(co.ConnectionOptions.TLS.Certificates) > 0 {
		parts = append(parts, "client certificate from TEMPORAL_TLS_CLIENT_CERT_*")
	}
	if co.Credentials != nil {
		parts = append(parts, "API key")
	}
	if n := co.ConnectionOptions.TLS.ServerName; n != "" {
		parts = append(parts, "server name "+n)
	}
	return " (TLS: " + strings.Join(parts, ", ") + ")"
}

// roleHint adds a hint when dpp_worker or dpp_auditor does not exist yet: the
// migrations create them.
func roleHint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "28000" && strings.Contains(pgErr.Message, "does not exist") &&
		(strings.Contains(pgErr.Message, `"`+store.WorkerRole+`"`) || strings.Contains(pgErr.Message, `"`+store.AuditorRole+`"`)) {
		return " (the migrations create the roles dpp_worker and dpp_auditor: run `" + store.MigrateCommand + "` first)"
	}
	return ""
}

// LifecycleActivities are the order lifecycle's activities (Sealing, SPAPI).
func (a *App) LifecycleActivities() *activities.Lifecycle {
	return &activities.Lifecycle{Orders: a.Orders, SPAPI: a.SPAPI, UploadInvoices: a.Config.UploadInvoices}
}

// RetentionActivities are the retention activities (Sealing, Temporal).
func (a *App) RetentionActivities() *activities.Retention {
	return &activities.Retention{Orders: a.Orders, Texts: a.FreeTexts(), Incidents: a.IncidentService(), OrderRuns: &lifecycles{c: a.Temporal, taskQueue: a.Config.TaskQueue}}
}

// SyncActivities are OrderSync's activities (Sealing, SPAPI, Temporal).
func (a *App) SyncActivities() *activities.Sync {
	return &activities.Sync{
		Orders: a.Orders, SPAPI: a.SPAPI, Lifecycles: &lifecycles{c: a.Temporal, taskQueue: a.Config.TaskQueue},
		MarketplaceIDs: a.Config.MarketplaceIDs, Lookback: a.Config.SyncLookback,
		Settle: a.Config.SyncSettle, RejectRetryFor: a.Config.SyncRejectRetryFor,
		NotificationsOn: a.Config.OrderChangeQueueURL != "",
		Uploads:         a.taxDocumentUploads(), UploadCreditNotes: a.Config.UploadInvoices,
	}
}

// registerActivities registers every concern's activities on a worker.
func (a *App) registerActivities(w worker.ActivityRegistry) {
	a.LifecycleActivities().Register(w)
	a.RetentionActivities().Register(w)
	a.SyncActivities().Register(w)
	// A bad DPP_ACCESS_POSTGRES_URL shows here and in the access workflows'
	// stuck activities; the order pipeline keeps running.
	if acts, err := a.AccessActivities(context.Background()); err == nil {
		acts.Register(w)
	} else {
		a.Log.Error("Access activities not registered", zap.Error(err))
	}
	a.IncidentActivities().Register(w)
	a.KeyEpochsActivities().Register(w)
	a.CalendarActivities().Register(w)
	a.AlertActivities().Register(w)
	a.AmazonDataActivities().Register(w)
	a.NotificationActivities().Register(w)
	a.TaxUploadActivities().Register(w)
}

// NewWorker builds the worker for the configured task queue with every workflow
// and activity registered.
func (a *App) NewWorker() worker.Worker { return a.NewWorkerWithOptions(a.WorkerOptions()) }

// WorkerOptions are the production worker's options; the benchmark starts from
// them to try a change before it is made.
func (a *App) WorkerOptions() worker.Options {
	return worker.Options{
		// On SIGTERM, let running steps finish rather than leave them to time out
		// (DPP_WORKER_STOP_TIMEOUT; the pod's grace period must be longer).
		WorkerStopTimeout: a.Config.WorkerStopTimeout,
		// Measured with `make bench` (README, Performance): when thousands of
		// retention timers fire together, their workflow tasks queue on this
		// worker's sticky queue for up to a minute or two. A task that times out
		// there only moves to the normal queue, where the same worker takes it,
		// at the price of two more history events: 2 minutes (the SDK's default
		// is 5 s, ours was 30 s) lets the burst drain. A worker that dies is noticed
		// by the server within seconds for new tasks; only tasks already queued for it
		// wait out the timeout. Pollers that follow the load cut start-to-sealed latency.
		StickyScheduleToStartTimeout: 2 * time.Minute,
		WorkflowTaskPollerBehavior:   worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior:   worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		// A signal whose payload cannot be decoded yet (KMS outage) fails the
		// workflow task, retried, instead of being dropped.
		Interceptors: []interceptor.WorkerInterceptor{a.Codec.WorkerInterceptor()},
	}
}

// NewWorkerWithOptions builds a worker with the given options and every
// workflow and activity registered.
// With them come the workers of the SP-API task queues (SPAPIQueues), built
// from the production options and started and stopped with it.
func (a *App) NewWorkerWithOptions(o worker.Options) worker.Worker {
	w := worker.New(a.Temporal, a.Config.TaskQueue, o)
	workflows.Register(w, a.workflowOptions())
	// Every worker registers every activity: a task scheduled on a queue before
	// its activity moved to another one is still served.
	a.registerActivities(w)
	ws := &workers{Worker: w}
	for _, q := range a.SPAPIQueues() {
		sw := worker.New(a.Temporal, q.Name, a.spapiWorkerOptions(q))
		a.registerActivities(sw)
		ws.spapi = append(ws.spapi, sw)
	}
	return ws
}

// Close releases every connection.
func (a *App) Close() {
	if a.Temporal != nil {
		a.Temporal.Close()
	}
	a.access.close()
	if a.Metrics != nil {
		_ = a.Metrics.Close()
	}
	if a.Pool != nil {
		a.Pool.Close()
	}
	if a.Log != nil {
		_ = a.Log.Sync()
	}
}

// Ready checks the dependencies /healthz reports on.
func (a *App) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var errs []error
	if a.Pool != nil {
		if err := a.Pool.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("postgres: %w", err))
		}
	}
	if a.Temporal != nil {
		if _, err := a.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			errs = append(errs, fmt.Errorf("temporal: %w", err))
		}
	}
	return errors.Join(errs...)
}
