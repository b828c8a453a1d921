// Package config defines every environment variable the worker and starter read:
// each is declared once with its name, default and meaning, validated at start,
// and printed by `worker -help`.
package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plusranger/dpp/internal/actor"
)

// Setting is one environment variable.
type Setting struct {
	Name     string
	Default  string
	Required bool
	Doc      string
	// Secret values are never printed.
	Secret bool
	// load parses the value (Default when unset) into its Config field, reporting
	// problems through the loader. Load runs it for every setting, so a setting
	// cannot be declared without being read: add a variable with one entry here.
	load func(l *loader, c *Config, name string)
}

// into loads a setting with parse into the Config field that field points to.
func into[T any](parse func(l *loader, name string) T, field func(c *Config) *T) func(*loader, *Config, string) {
	return func(l *loader, c *Config, name string) { *field(c) = parse(l, name) }
}

// Parsers for into: each applies the default, reports a problem under the
// variable's name and returns the parsed value.
var (
	str       = (*loader).str
	absURL    = (*loader).url
	list      = (*loader).list
	lines     = (*loader).lines
	duration  = (*loader).duration
	boolean   = (*loader).boolean
	email     = (*loader).email
	series    = (*loader).series
	vatNumber = (*loader).vatNumber
	percent   = (*loader).percent
	pounds    = (*loader).pounds
	vatRates  = (*loader).vatRates
	origin    = (*loader).origin
	size      = (*loader).size
	number    = (*loader).number
	durations = (*loader).durations
	count     = (*loader).count
)

func oneOf(allowed ...string) func(*loader, string) string {
	return func(l *loader, name string) string { return l.oneOf(name, allowed...) }
}

// Settings lists every variable in the order `worker -help` prints them.
var Settings = []Setting{
	{Name: "DATABASE_URL", Default: "postgres://postgres@127.0.0.1:5432/dpp?sslmode=disable", Doc: "PostgreSQL connection string (pgx form) the worker and starter use; in production as the least-privileged role dpp_worker (auditor commands: dpp_auditor)",
		load: into(str, func(c *Config) *string { return &c.DatabaseURL })},
	{Name: "DPP_MIGRATIONS_DATABASE_URL", Doc: "PostgreSQL connection string of the role that owns the schema, used only by `starter migrate` (the migrations create the roles dpp_worker and dpp_auditor when missing); empty means DATABASE_URL. The worker never migrates: it refuses to start on a schema that is not current",
		load: into(str, func(c *Config) *string { return &c.MigrationsDatabaseURL })},
	{Name: "DPP_EVIDENCE_KEYS", Doc: "file of the pinned public signing keys (`starter evidence keys > FILE`, kept outside the database) that `starter evidence verify`, `starter evidence export` and `starter certificate` trust; required by them, not used by the worker",
		load: into(str, func(c *Config) *string { return &c.EvidenceKeysFile })},
	// The Temporal connection: the SDK's environment configuration (envconfig),
	// the variables the temporal CLI reads too. Unset ones come from the profile
	// of the SDK's configuration file, if there is one (temporal.go).
	{Name: "TEMPORAL_ADDRESS", Default: DefaultTemporalAddress, Doc: "Temporal frontend host:port (Temporal Cloud: <namespace>.<account>.tmprl.cloud:7233, or the regional endpoint with an API key); unset: the profile's address, else the default",
		load: temporalVar},
	{Name: "TEMPORAL_NAMESPACE", Default: DefaultTemporalNamespace, Doc: "Temporal namespace (Temporal Cloud: <namespace>.<account>); unset: the profile's namespace, else the default",
		load: temporalVar},
	{Name: "TEMPORAL_API_KEY", Secret: true, Doc: "Temporal Cloud API key, sent as a bearer token; turns TLS on (with the system's CAs) unless TEMPORAL_TLS=false. Never logged",
		load: temporalVar},
	{Name: "TEMPORAL_TLS", Doc: "true or false: connect to Temporal over TLS; empty means on when TEMPORAL_API_KEY or any TEMPORAL_TLS_* variable is set, else off",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_CLIENT_CERT_PATH", Doc: "PEM file of the client certificate for mTLS (Temporal Cloud with certificates, or an mTLS cluster); needs TEMPORAL_TLS_CLIENT_KEY_PATH",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_CLIENT_KEY_PATH", Doc: "PEM file of the client certificate's private key (keep it readable by the worker only)",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_CLIENT_CERT_DATA", Doc: "the client certificate as PEM text, instead of TEMPORAL_TLS_CLIENT_CERT_PATH; needs TEMPORAL_TLS_CLIENT_KEY_DATA",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_CLIENT_KEY_DATA", Secret: true, Doc: "the client certificate's private key as PEM text, instead of TEMPORAL_TLS_CLIENT_KEY_PATH",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_SERVER_CA_CERT_PATH", Doc: "PEM file of the CA(s) that sign the Temporal server's certificate; empty means the system's CAs (right for Temporal Cloud)",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_SERVER_CA_CERT_DATA", Doc: "the server CA(s) as PEM text, instead of TEMPORAL_TLS_SERVER_CA_CERT_PATH",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_SERVER_NAME", Doc: "name the Temporal server's certificate must carry (SNI), when it differs from the host of TEMPORAL_ADDRESS",
		load: temporalVar},
	{Name: "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", Doc: "true accepts any server certificate: the SDK then checks neither its CA nor its name (never in production)",
		load: temporalVar},
	{Name: "TEMPORAL_CLIENT_AUTHORITY", Doc: "value of the HTTP/2 :authority header (a proxy in front of Temporal that routes by it); empty means the address",
		load: temporalVar},
	{Name: "TEMPORAL_PROFILE", Doc: "profile of the Temporal configuration file to use (`temporal config set --profile ...` writes them); empty means \"default\", which may be absent. Variables set here override the profile's values",
		load: temporalVar},
	{Name: "TEMPORAL_CONFIG_FILE", Doc: "the Temporal configuration file (TOML, as the temporal CLI writes it); empty means <user config dir>/temporalio/temporal.toml if it exists. Its codec settings are ignored: the worker encrypts payloads itself",
		load: temporalVar},
	{Name: "DPP_TASK_QUEUE", Default: "dpp", Doc: "Temporal task queue the worker polls",
		load: into(str, func(c *Config) *string { return &c.TaskQueue })},
	{Name: "DPP_WORKER_STOP_TIMEOUT", Default: "10s", Doc: "on SIGTERM the worker stops polling and gives running activities this long to finish (a purge or invoice transaction commits or rolls back whole either way); a pod's terminationGracePeriodSeconds must exceed it",
		load: into(duration, func(c *Config) *time.Duration { return &c.WorkerStopTimeout })},
	{Name: "AWS_REGION", Default: "eu-west-2", Doc: "AWS region of the KMS key",
		load: into(str, func(c *Config) *string { return &c.AWSRegion })},
	{Name: "AWS_ENDPOINT_URL_KMS", Doc: "KMS endpoint override (local-kms in dev); empty means AWS",
		load: into(absURL, func(c *Config) *string { return &c.KMSEndpoint })},
	{Name: "AWS_ENDPOINT_URL_SQS", Doc: "SQS endpoint override (goaws in dev and tests); empty means AWS",
		load: into(absURL, func(c *Config) *string { return &c.SQSEndpoint })},
	{Name: "DPP_ORDER_CHANGE_QUEUE_URL", Doc: "URL of the SQS queue SP-API delivers ORDER_CHANGE notifications to (the OrderNotifications workflow consumes it; give the queue a redrive policy to a dead-letter queue); empty turns notifications off and leaves OrderSync alone",
		load: into(absURL, func(c *Config) *string { return &c.OrderChangeQueueURL })},
	{Name: "DPP_KMS_KEY_ID", Required: true, Doc: "KMS key id, ARN or alias that wraps every data key",
		load: into(str, func(c *Config) *string { return &c.KMSKeyID })},
	{Name: "DPP_KEY_CACHE_TTL", Default: "2m", Doc: "how long a data key stays in worker memory after use, so an order's next step needs no KMS call (0 disables)",
		load: into(duration, func(c *Config) *time.Duration { return &c.KeyCacheTTL })},
	{Name: "DPP_KEY_EPOCH", Default: "24h", Doc: "how long one KMS key (alias alias/dpp/pii/<epoch start>) wraps the data keys of newly sealed buyer PII; the key-epochs schedule runs this often. Whole seconds; epochs of whole days take the date as alias, others YYYY-MM-DDTHHMMSSZ",
		load: into(duration, func(c *Config) *time.Duration { return &c.KeyEpoch })},
	{Name: "DPP_KEY_EPOCH_LIFETIME", Default: "552h", Doc: "how long after an epoch opens its key is retired: survivors re-wrapped (KMS ReEncrypt) into the current epoch, the key scheduled for deletion. Longer than DPP_KEY_EPOCH; with DPP_KEY_DELETION_WINDOW at most 720h, so every copy of buyer PII (backups included) is undecryptable within 30 days of sealing",
		load: into(duration, func(c *Config) *time.Duration { return &c.KeyEpochLifetime })},
	{Name: "DPP_KEY_DELETION_WINDOW", Default: "168h", Doc: "KMS pending-deletion window of a retired epoch key: whole days from 7 (168h, AWS's minimum) to 30; KMS refuses the key from the start of the window and destroys it at its end",
		load: into(duration, func(c *Config) *time.Duration { return &c.KeyDeletionWindow })},
	{Name: "SPAPI_ENDPOINT", Default: "http://127.0.0.1:8099", Doc: "SP-API base URL; the sandbox when no LWA credentials are set (EU: https://sellingpartnerapi-eu.amazon.com)",
		load: into(absURL, func(c *Config) *string { return &c.SPAPIEndpoint })},
	{Name: "LWA_TOKEN_URL", Default: "https://api.amazon.com/auth/o2/token", Doc: "Login with Amazon token endpoint",
		load: into(absURL, func(c *Config) *string { return &c.LWATokenURL })},
	{Name: "LWA_CLIENT_ID", Doc: "LWA client id; empty means the sandbox (no auth)",
		load: into(str, func(c *Config) *string { return &c.LWAClientID })},
	{Name: "LWA_CLIENT_SECRET", Secret: true, Doc: "LWA client secret (rotate every 180 days)",
		load: into(str, func(c *Config) *string { return &c.LWAClientSecret })},
	{Name: "LWA_REFRESH_TOKEN", Secret: true, Doc: "LWA refresh token of the seller authorisation",
		load: into(str, func(c *Config) *string { return &c.LWARefreshToken })},
	{Name: "DPP_SPAPI_TASK_QUEUE", Doc: "task queue of FetchAndSeal, the step that calls SP-API getOrder: every worker polls it and the server dispatches its tasks at getOrder's published rate (0.5/s) for all workers together; empty means DPP_TASK_QUEUE + \"-spapi\" (dpp-spapi)",
		load: into(str, func(c *Config) *string { return &c.SPAPITaskQueue })},
	{Name: "DPP_SPAPI_SYNC_TASK_QUEUE", Doc: "task queue of SyncOrders, the OrderSync pass that calls SP-API searchOrders (and getOrder): one pass at a time per worker, its calls paced by the worker's limiter (the schedule never overlaps passes); empty means DPP_TASK_QUEUE + \"-spapi-sync\" (dpp-spapi-sync)",
		load: into(str, func(c *Config) *string { return &c.SPAPISyncTaskQueue })},
	{Name: "DPP_SPAPI_SANDBOX_SPEEDUP", Default: "1", Doc: "sandbox only (no LWA credentials): multiply Amazon's published SP-API rates by this factor, in the client's limiter and on the SP-API task queues, so a demo (`make run` sets 100) or a test sees orders flow fast; must stay 1 against Amazon",
		load: into(number, func(c *Config) *float64 { return &c.SPAPISandboxSpeedup })},
	{Name: "SPAPI_MARKETPLACE_IDS", Default: "A1F83G8C2ARO7P", Doc: "comma-separated marketplace ids OrderSync searches (default: UK)",
		load: into(list, func(c *Config) *[]string { return &c.MarketplaceIDs })},
	{Name: "DPP_UPLOAD_INVOICES", Default: "false", Doc: "upload each VAT invoice the system issues to Amazon (Feeds API, UPLOAD_VAT_INVOICE) in its own TaxDocumentUpload workflow, as sellers not on Amazon's VAT Calculation Service must; read when the invoice is issued. SubmitTaxDocument runs on the task queue DPP_TASK_QUEUE + \"-spapi-feeds\", dispatched at createFeed's rate (0.0083/s) for all workers together",
		load: into(boolean, func(c *Config) *bool { return &c.UploadInvoices })},
	{Name: "DPP_PII_RETENTION", Default: "720h", Doc: "how long buyer PII is kept after delivery before purge (Go duration; policy: 30 days)",
		load: into(duration, func(c *Config) *time.Duration { return &c.PIIRetention })},
	{Name: "DPP_TAX_RETENTION", Default: "52596h", Doc: "how long VAT invoices are kept (Go duration; HMRC: 6 years)",
		load: into(duration, func(c *Config) *time.Duration { return &c.TaxRetention })},
	{Name: "DPP_DELIVERY_FALLBACK", Default: "720h", Doc: "when an order has no latest delivery date, treat it as delivered this long after purchase",
		load: into(duration, func(c *Config) *time.Duration { return &c.DeliveryFallback })},
	{Name: "DPP_SYNC_INTERVAL", Default: "5m", Doc: "how often the OrderSync schedule runs; with LWA credentials at least 3m (each pass calls searchOrders, which Amazon refills once per 180 s)",
		load: into(duration, func(c *Config) *time.Duration { return &c.SyncInterval })},
	{Name: "DPP_SYNC_SETTLE", Default: "2m", Doc: "OrderSync searches up to this long before now (Amazon wants lastUpdatedBefore at least 2 minutes back); 0 searches up to the server's now",
		load: into(duration, func(c *Config) *time.Duration { return &c.SyncSettle })},
	{Name: "DPP_SYNC_REJECT_RETRY_FOR", Default: "168h", Doc: "how long OrderSync keeps asking SP-API again, every pass, for an order it found malformed (table sync_rejects) before leaving it to an operator",
		load: into(duration, func(c *Config) *time.Duration { return &c.SyncRejectRetryFor })},
	{Name: "DPP_SYNC_LOOKBACK", Default: "168h", Doc: "how far back the first OrderSync searches when it has no watermark",
		load: into(duration, func(c *Config) *time.Duration { return &c.SyncLookback })},
	{Name: "DPP_TAX_SWEEP_INTERVAL", Default: "24h", Doc: "how often the TaxRecordSweep schedule runs",
		load: into(duration, func(c *Config) *time.Duration { return &c.TaxSweepInterval })},
	{Name: "DPP_HTTP_ADDR", Default: "127.0.0.1:8088", Doc: "worker HTTP address: /healthz, /metrics, /codec/encode, /codec/decode",
		load: into(str, func(c *Config) *string { return &c.HTTPAddr })},
	{Name: "DPP_CODEC_KMS_KEY_ID", Doc: "KMS key id, ARN or alias the payload codec encrypts new Temporal payloads under; change it to rotate (each payload names its key, so older ones keep decoding); empty means DPP_KMS_KEY_ID",
		load: into(str, func(c *Config) *string { return &c.CodecKMSKeyID })},
	{Name: "DPP_CODEC_PREVIOUS_KMS_KEY_IDS", Doc: "comma-separated KMS keys (ids, ARNs or aliases) DPP_CODEC_KMS_KEY_ID named before a rotation: payloads are decoded only under DPP_CODEC_KMS_KEY_ID, these and DPP_KMS_KEY_ID, never under a key a payload alone names",
		load: into(list, func(c *Config) *[]string { return &c.CodecPreviousKMSKeyIDs })},
	{Name: "DPP_CODEC_TOKEN", Secret: true, Doc: "bearer token /codec/encode and /codec/decode require (temporal --codec-auth 'Bearer <token>'); at least 16 characters; empty refuses every request",
		load: into(str, func(c *Config) *string { return &c.CodecToken })},
	{Name: "DPP_CODEC_CORS_ORIGIN", Default: "http://127.0.0.1:8233", Doc: "the Temporal Web UI origin (scheme://host[:port]) allowed to call the codec endpoints from a browser; no other origin gets a CORS grant",
		load: into(origin, func(c *Config) *string { return &c.CodecCORSOrigin })},
	{Name: "DPP_CODEC_MAX_BODY", Default: "4MiB", Doc: "largest codec request body, in bytes or with a KiB/MiB suffix; larger requests get 413",
		load: into(size, func(c *Config) *int64 { return &c.CodecMaxBody })},
	{Name: "DPP_CODEC_MAX_DECODED", Default: "16MiB", Doc: "most bytes one codec request may decode to (a few KiB of compressed payloads can inflate to gigabytes); larger get 413. One payload decodes to at most 8 MiB wherever it is decoded",
		load: into(size, func(c *Config) *int64 { return &c.CodecMaxDecoded })},
	{Name: "DPP_CODEC_ENCODE", Default: "true", Doc: "serve /codec/encode (the temporal CLI's --codec-endpoint encodes --input through it); false leaves only /codec/decode",
		load: into(boolean, func(c *Config) *bool { return &c.CodecEncode })},
	{Name: "DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN", Default: "false", Doc: "development only: accept codec requests that carry no Authorization header when they come from DPP_CODEC_CORS_ORIGIN (the dev Web UI cannot send a token); requires a loopback DPP_CODEC_CORS_ORIGIN and DPP_HTTP_ADDR",
		load: into(boolean, func(c *Config) *bool { return &c.CodecAllowUIWithoutToken })},
	{Name: "DPP_METRICS_REFRESH", Default: "30s", Doc: "how often the worker recomputes the policy gauges /metrics serves (dpp_orders_sealed, dpp_purges_overdue, ...); scrapes never query the database",
		load: into(duration, func(c *Config) *time.Duration { return &c.MetricsRefresh })},
	{Name: "DPP_LOG_FORMAT", Default: "json", Doc: "log encoding: json (production) or console (dev)",
		load: into(oneOf("json", "console"), func(c *Config) *string { return &c.LogFormat })},
	{Name: "DPP_LOG_LEVEL", Default: "info", Doc: "log level: debug, info, warn, error",
		load: into(oneOf("debug", "info", "warn", "error"), func(c *Config) *string { return &c.LogLevel })},
	{Name: "DPP_PUBLIC_ADDR", Default: "127.0.0.1:8089", Doc: "the public listener, what Slack and monitoring systems reach through the operator's ingress: /slack/interactions, /slack/commands and the bearer-protected ingest routes (/incidents, /access/login-events); never the same listener as DPP_HTTP_ADDR",
		load: into(str, func(c *Config) *string { return &c.PublicAddr })},
	{Name: "DPP_INGEST_TOKEN", Secret: true, Doc: "bearer token the public listener's ingest routes (/incidents, /access/login-events) require from monitoring systems; at least 16 characters; empty refuses every ingest request",
		load: into(str, func(c *Config) *string { return &c.IngestToken })},
	{Name: "SLACK_BOT_TOKEN", Secret: true, Doc: "the Slack app's bot token (xoxb-...; scopes chat:write, im:write, commands, users:read) the worker posts and updates messages with; needs SLACK_SIGNING_SECRET. Empty: Slack is off, nothing is posted and decisions arrive by signal (temporal CLI, starter)",
		load: into(str, func(c *Config) *string { return &c.SlackBotToken })},
	{Name: "SLACK_SIGNING_SECRET", Secret: true, Doc: "the Slack app's signing secret: every request to /slack/interactions and /slack/commands must be signed with it (slack-go's verifier, 5-minute window; replays refused). Required with SLACK_BOT_TOKEN; empty: those routes answer 503",
		load: into(str, func(c *Config) *string { return &c.SlackSigningSecret })},
	{Name: "SLACK_API_URL", Default: "https://slack.com/api/", Doc: "Slack Web API base URL (tests: slacktest's)",
		load: into(absURL, func(c *Config) *string { return &c.SlackAPIURL })},
	{Name: "SMTP_URL", Default: "smtp://127.0.0.1:1025", Doc: "SMTP server for notifications: smtp://[user:password@]host[:port] (STARTTLS) or smtps://... (implicit TLS); TLS is required except to a loopback host (Mailpit in dev)",
		load: into(absURL, func(c *Config) *string { return &c.SMTPURL })},
	{Name: "DPP_AMAZON_SECURITY_EMAIL", Default: "security@amazon.com", Doc: "where security incidents are reported",
		load: into(email, func(c *Config) *string { return &c.AmazonSecurityEmail })},
	{Name: "DPP_MAIL_FROM", Default: "dpp@localhost", Doc: "sender address of the system's e-mail (incident notifications)",
		load: into(email, func(c *Config) *string { return &c.MailFrom })},
	{Name: "DPP_INCIDENT_CHANNEL", Doc: "Slack channel id where each incident's message (stage, deadlines, buttons) is posted and kept current; empty: no channel message",
		load: into(str, func(c *Config) *string { return &c.IncidentChannel })},
	{Name: "DPP_INCIDENT_APPROVERS", Doc: "comma-separated Slack user ids, operator ids (DPP_OPERATORS) or e-mail addresses of who may approve incident notifications and confirm a false positive (an address is recorded as approver-<n> and counts for the Slack account whose profile has it); empty: nobody approves and the preliminary notification goes out at DPP_INCIDENT_AUTO_SEND",
		load: into(list, func(c *Config) *[]string { return &c.IncidentApprovers })},
	{Name: "DPP_INCIDENT_STAGES", Default: "triage,containment,notification,eradication,recovery,lessons-learned", Doc: "the incident runbook's stages, in order (lower-case ids); the first is where an incident starts",
		load: into(list, func(c *Config) *[]string { return &c.IncidentStages })},
	{Name: "DPP_INCIDENT_AMAZON_DEADLINE", Default: "24h", Doc: "Amazon must be notified this long after detection (policy: 24 hours)",
		load: into(duration, func(c *Config) *time.Duration { return &c.IncidentAmazonDeadline })},
	{Name: "DPP_INCIDENT_ICO_DEADLINE", Default: "72h", Doc: "a personal-data breach must be reported to the ICO this long after detection (UK GDPR: 72 hours)",
		load: into(duration, func(c *Config) *time.Duration { return &c.IncidentICODeadline })},
	{Name: "DPP_INCIDENT_REMINDERS", Default: "4h,12h,20h", Doc: "comma-separated times after detection at which the channel and approvers are reminded while Amazon's notification is not sent (the ICO's are scaled to its deadline)",
		load: into(durationList, func(c *Config) *[]time.Duration { return &c.IncidentReminders })},
	{Name: "DPP_INCIDENT_AUTO_SEND", Default: "22h", Doc: "if nothing was sent to Amazon this long after detection, a preliminary notification goes out by itself; 0 turns it off",
		load: into(duration, func(c *Config) *time.Duration { return &c.IncidentAutoSend })},
	{Name: "DPP_INCIDENT_TEXT_RETENTION", Default: "17532h", Doc: "a closed incident's title, summary and notification text are crypto-erased this long after it closed (Go duration; 17532h = 24 months). UK GDPR Art. 33(5) wants a breach documented (facts, effects, remedial action): the incident's facts, deadlines and timeline codes are kept for good; its words, which may name people, are kept through the annual review of the record that follows its closing and the audit after it, then go. An open incident's texts are never erased",
		load: into(duration, func(c *Config) *time.Duration { return &c.IncidentTextRetention })},
	{Name: "DPP_SELLER_NAME", Required: true, Doc: "seller's legal name, printed on invoices and certificates",
		load: into(str, func(c *Config) *string { return &c.SellerName })},
	{Name: "DPP_SELLER_ADDRESS", Required: true, Doc: "seller's address, lines separated by '|' or newlines",
		load: into(lines, func(c *Config) *[]string { return &c.SellerAddress })},
	{Name: "DPP_SELLER_VAT_NUMBER", Required: true, Doc: "seller's UK VAT registration number (GB + 9 or 12 digits)",
		load: into(vatNumber, func(c *Config) *string { return &c.SellerVATNumber })},
	{Name: "DPP_OPERATORS", Default: "dpo", Doc: "comma-separated identifiers of the people who may sign signals and exports ('by'), e.g. 'dpo,ops-1,legal'; lower-case ids, never names or e-mail addresses (they are kept for years in certificates and the evidence log)",
		load: into(list, func(c *Config) *[]string { return &c.Operators })},
	{Name: "DPP_DPO_CONTACT", Default: "dpo@example.invalid", Doc: "contact of the Data Protection Officer, printed on certificates",
		load: into(str, func(c *Config) *string { return &c.DPOContact })},
	{Name: "DPP_INVOICE_SERIES", Default: "INV", Doc: "prefix of the gap-free invoice number series",
		load: into(series, func(c *Config) *string { return &c.InvoiceSeries })},
	// Credit notes (issue 14): their own gap-free series.
	{Name: "DPP_CREDIT_NOTE_SERIES", Default: "CRN", Doc: "prefix of the gap-free credit note number series (HMRC: credit notes are numbered on their own); must differ from DPP_INVOICE_SERIES",
		load: into(series, func(c *Config) *string { return &c.CreditNoteSeries })},
	{Name: "DPP_VAT_RATES", Doc: "per-SKU VAT rates, e.g. 'PR-BOOK-01=0,PR-SEAT-02=5' (percent)",
		load: into(vatRates, func(c *Config) *map[string]int64 { return &c.VATRates })},
	{Name: "DPP_DEFAULT_VAT_RATE", Default: "20", Doc: "VAT rate in percent for SKUs not in DPP_VAT_RATES (UK standard rate)",
		load: into(percent, func(c *Config) *int64 { return &c.DefaultVATRate })},
	{Name: "DPP_SIMPLIFIED_INVOICE_LIMIT", Default: "250.00", Doc: "consumer orders up to this total (GBP incl. VAT) get a simplified invoice without buyer name or address",
		load: into(pounds, func(c *Config) *int64 { return &c.SimplifiedInvoiceLimit })},
	{Name: "DPP_ALWAYS_FULL_INVOICE", Default: "false", Doc: "issue full invoices (with buyer name and address) for every order",
		load: into(boolean, func(c *Config) *bool { return &c.AlwaysFullInvoice })},
	{Name: "DPP_BACKUP_LOCATION", Default: "none", Doc: "where database backups go, recorded on certificates of sanitization",
		load: into(str, func(c *Config) *string { return &c.BackupLocation })},
	// Access review, offboarding and lockout (issue 9; access.go checks them together).
	{Name: "DPP_DPO_PERSON_ID", Doc: "person id (people.id, from `starter access import`) of the Data Protection Officer: reviews orphans, managerless people's and managers' own accounts, gets escalations, extends campaigns and approves re-enabling locked accounts; required by the worker's access workflows",
		load: into(str, func(c *Config) *string { return &c.DPOPersonID })},
	{Name: "DPP_ACCESS_POSTGRES_URL", Secret: true, Doc: "connection string of the `postgres` access connector: the DPP database, as a role with CREATEROLE and membership in pg_signal_backend (not the worker's role); it lists the login roles that reach the database's tables and disables them (NOLOGIN, sessions ended), never a superuser or itself. Empty: no postgres connector, its accounts are disabled by hand like every registry system",
		load: into(str, func(c *Config) *string { return &c.AccessPostgresURL })},
	{Name: "DPP_REVIEW_REMINDERS", Default: "72h,144h", Doc: "comma-separated times after an access review starts when reviewers with open items are reminded in Slack",
		load: into(durations, func(c *Config) *[]time.Duration { return &c.ReviewReminders })},
	{Name: "DPP_REVIEW_ESCALATION", Default: "168h", Doc: "time after an access review starts when open items are escalated to the DPO",
		load: into(duration, func(c *Config) *time.Duration { return &c.ReviewEscalation })},
	{Name: "DPP_REVIEW_DEADLINE", Default: "336h", Doc: "time after an access review starts when every undecided item is revoked (fail closed), unless the DPO extends the campaign; undecided service accounts are escalated instead",
		load: into(duration, func(c *Config) *time.Duration { return &c.ReviewDeadline })},
	{Name: "DPP_OFFBOARDING_SLA", Default: "24h", Doc: "a leaver's accounts must be disabled within this time of terminatedAt; past it the Offboarding workflow records a breach",
		load: into(duration, func(c *Config) *time.Duration { return &c.OffboardingSLA })},
	{Name: "DPP_OFFBOARDING_ESCALATIONS", Default: "12h,20h", Doc: "comma-separated times after terminatedAt when an unfinished offboarding is escalated to the DPO",
		load: into(durations, func(c *Config) *[]time.Duration { return &c.OffboardingEscalations })},
	{Name: "DPP_OFFBOARDING_REQUESTERS", Doc: "comma-separated person ids allowed to start an offboarding with the Slack command /offboard",
		load: into(list, func(c *Config) *[]string { return &c.OffboardingRequesters })},
	{Name: "DPP_LOCKOUT_THRESHOLD", Default: "10", Doc: "consecutive failed logins (POST /access/login-events) after which an account is disabled through its connector (Amazon's rule: 10)",
		load: into(count, func(c *Config) *int { return &c.LockoutThreshold })},
}

// Config is the validated configuration. Every field is set by the load of a
// setting in Settings (TestEverySettingReachesConfig checks that each one is).
type Config struct {
	DatabaseURL string
	// TemporalAddress and TemporalNamespace are where the client connects:
	// TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, else the profile's, else the defaults.
	TemporalAddress   string
	TemporalNamespace string
	// TemporalEnv holds the Temporal SDK variables that are set (TEMPORAL_*),
	// which app.New hands to the SDK's envconfig loader (TemporalProfile).
	TemporalEnv TemporalEnv
	TaskQueue   string
	// WorkerStopTimeout bounds the drain on SIGTERM (DPP_WORKER_STOP_TIMEOUT).
	WorkerStopTimeout time.Duration

	// MigrationsDatabaseURL is the schema owner's connection string (DatabaseURL
	// when DPP_MIGRATIONS_DATABASE_URL is unset), used only by `starter migrate`.
	MigrationsDatabaseURL string
	// EvidenceKeysFile is the pinned public signing keys file (DPP_EVIDENCE_KEYS).
	EvidenceKeysFile string

	AWSRegion   string
	KMSEndpoint string
	// SQSEndpoint and OrderChangeQueueURL: AWS_ENDPOINT_URL_SQS, DPP_ORDER_CHANGE_QUEUE_URL.
	SQSEndpoint         string
	OrderChangeQueueURL string
	KMSKeyID            string
	KeyCacheTTL         time.Duration
	// Key epochs (internal/keyepochs): DPP_KEY_EPOCH, DPP_KEY_EPOCH_LIFETIME,
	// DPP_KEY_DELETION_WINDOW; checkKeyEpochs keeps them within the promise.
	KeyEpoch          time.Duration
	KeyEpochLifetime  time.Duration
	KeyDeletionWindow time.Duration
	SPAPIEndpoint     string
	LWATokenURL       string
	LWAClientID       string
	LWAClientSecret   string
	LWARefreshToken   string
	MarketplaceIDs    []string
	// SPAPITaskQueue and SPAPISyncTaskQueue name the SP-API task queues as set
	// (empty: derived from TaskQueue; app.SPAPIQueues resolves them).
	SPAPITaskQueue, SPAPISyncTaskQueue string
	// SPAPISandboxSpeedup multiplies Amazon's rates, sandbox only (DPP_SPAPI_SANDBOX_SPEEDUP).
	SPAPISandboxSpeedup float64
	// UploadInvoices sends issued invoices to Amazon (DPP_UPLOAD_INVOICES).
	UploadInvoices bool

	PIIRetention     time.Duration
	TaxRetention     time.Duration
	DeliveryFallback time.Duration
	SyncInterval     time.Duration
	SyncLookback     time.Duration
	SyncSettle       time.Duration
	// SyncRejectRetryFor: how long malformed orders are retried (DPP_SYNC_REJECT_RETRY_FOR).
	SyncRejectRetryFor time.Duration
	TaxSweepInterval   time.Duration

	HTTPAddr  string
	LogFormat string
	LogLevel  string
	// MetricsRefresh is how often the /metrics gauges are recomputed.
	MetricsRefresh time.Duration

	// Payload codec and its HTTP endpoints (internal/codec).
	CodecKMSKeyID            string // DPP_CODEC_KMS_KEY_ID, or KMSKeyID when unset
	CodecToken               string
	CodecCORSOrigin          string
	CodecMaxBody             int64
	CodecPreviousKMSKeyIDs   []string // DPP_CODEC_PREVIOUS_KMS_KEY_IDS
	CodecMaxDecoded          int64    // DPP_CODEC_MAX_DECODED
	CodecEncode              bool
	CodecAllowUIWithoutToken bool

	// PublicAddr is the public listener (DPP_PUBLIC_ADDR); IngestToken guards
	// its ingest routes (DPP_INGEST_TOKEN).
	PublicAddr          string
	IngestToken         string
	SlackBotToken       string
	SlackSigningSecret  string
	SlackAPIURL         string
	SMTPURL             string
	AmazonSecurityEmail string
	MailFrom            string

	// Incident notification (issue 10; internal/incident).
	IncidentChannel        string
	IncidentApprovers      []string
	IncidentStages         []string
	IncidentAmazonDeadline time.Duration
	IncidentICODeadline    time.Duration
	IncidentReminders      []time.Duration
	IncidentAutoSend       time.Duration
	IncidentTextRetention  time.Duration

	// The compliance calendar and alerts (issue 13; calendar.go).
	Calendar

	SellerName      string
	SellerAddress   []string
	SellerVATNumber string
	DPOContact      string
	BackupLocation  string
	// Operators may sign signals and exports (DPP_OPERATORS).
	Operators []string

	InvoiceSeries          string
	CreditNoteSeries       string
	VATRates               map[string]int64 // SKU -> basis points
	DefaultVATRate         int64            // basis points
	SimplifiedInvoiceLimit int64            // pence incl. VAT
	AlwaysFullInvoice      bool

	// Access review, offboarding and lockout (access.go).
	DPOPersonID            string
	AccessPostgresURL      string
	ReviewReminders        []time.Duration
	ReviewEscalation       time.Duration
	ReviewDeadline         time.Duration
	OffboardingSLA         time.Duration
	OffboardingEscalations []time.Duration
	OffboardingRequesters  []string
	LockoutThreshold       int
}

// minSyncInterval: with LWA credentials, OrderSync passes may not begin more
// often than Amazon refills one searchOrders call (0.0056/s: every 178.6 s).
const minSyncInterval = 3 * time.Minute

// Sandbox reports whether SP-API calls go to a sandbox (no LWA credentials).
func (c *Config) Sandbox() bool { return c.LWAClientID == "" }

// Load reads and validates every setting through getenv (os.Getenv in production).
// All problems are reported together, each naming its variable.
func Load(getenv func(string) string) (*Config, error) {
	l := newLoader(getenv)
	c := &Config{}
	for _, s := range Settings {
		if s.load == nil {
			panic("config: setting " + s.Name + " has no load: say which Config field it sets")
		}
		s.load(&l, c, s.Name)
	}
	l.loadTemporal(c)
	if c.MigrationsDatabaseURL == "" {
		c.MigrationsDatabaseURL = c.DatabaseURL
	}
	if c.LWAClientID != "" && (c.LWAClientSecret == "" || c.LWARefreshToken == "") {
		l.fail("LWA_CLIENT_ID", "is set, so LWA_CLIENT_SECRET and LWA_REFRESH_TOKEN are required too")
	}
	if c.PIIRetention <= 0 {
		l.fail("DPP_PII_RETENTION", "must be positive")
	}
	if c.TaxRetention < c.PIIRetention {
		l.fail("DPP_TAX_RETENTION", "must not be shorter than DPP_PII_RETENTION")
	}
	if c.CreditNoteSeries != "" && c.CreditNoteSeries == c.InvoiceSeries {
		l.fail("DPP_CREDIT_NOTE_SERIES", "must differ from DPP_INVOICE_SERIES: credit notes have their own series")
	}
	for _, name := range []string{"DPP_SYNC_INTERVAL", "DPP_TAX_SWEEP_INTERVAL", "DPP_DELIVERY_FALLBACK", "DPP_SYNC_LOOKBACK", "DPP_SYNC_REJECT_RETRY_FOR"} {
		if d, err := time.ParseDuration(l.str(name)); err == nil && d <= 0 {
			l.fail(name, "must be positive")
		}
	}
	if c.WorkerStopTimeout <= 0 {
		l.fail("DPP_WORKER_STOP_TIMEOUT", "must be positive")
	}
	if c.KeyCacheTTL < 0 {
		l.fail("DPP_KEY_CACHE_TTL", "must not be negative")
	}
	if c.SyncSettle < 0 {
		l.fail("DPP_SYNC_SETTLE", "must not be negative")
	}
	l.checkCodec(c)
	l.checkAccess(c)
	l.checkPublic(c)
	l.checkIncident(c)
	l.checkCalendar(c)
	l.checkKeyEpochs(c)
	// Entries are named by position, not value: a wrong one may be a person's e-mail.
	for i, id := range c.Operators {
		if err := actor.Valid(id); err != nil {
			l.fail("DPP_OPERATORS", fmt.Sprintf("entry %d %v", i+1, err))
		} else if actor.IsSystem(id) {
			l.fail("DPP_OPERATORS", fmt.Sprintf("entry %d is a system name (%s); choose another", i+1, strings.Join(actor.System, ", ")))
		}
	}
	if !c.Sandbox() && c.SyncInterval > 0 && c.SyncInterval < minSyncInterval {
		l.fail("DPP_SYNC_INTERVAL", fmt.Sprintf("must be at least %s against Amazon: every pass calls searchOrders, which Amazon refills once per 180 s (0.0056/s)", minSyncInterval))
	}
	if c.SPAPISandboxSpeedup != 1 && !c.Sandbox() {
		l.fail("DPP_SPAPI_SANDBOX_SPEEDUP", "applies only to the SP-API sandbox: with LWA credentials Amazon's published rates hold (unset it)")
	}
	if q := c.SPAPITaskQueue; q != "" && (q == c.TaskQueue || q == c.SPAPISyncTaskQueue) {
		l.fail("DPP_SPAPI_TASK_QUEUE", "must differ from DPP_TASK_QUEUE and DPP_SPAPI_SYNC_TASK_QUEUE: each queue has its own rate")
	}
	if q := c.SPAPISyncTaskQueue; q != "" && q == c.TaskQueue {
		l.fail("DPP_SPAPI_SYNC_TASK_QUEUE", "must differ from DPP_TASK_QUEUE: each queue has its own rate")
	}
	if len(c.MarketplaceIDs) == 0 {
		l.fail("SPAPI_MARKETPLACE_IDS", "must name at least one marketplace")
	}
	if err := errors.Join(l.errs...); err != nil {
		return nil, fmt.Errorf("invalid configuration (see `worker -help`):\n%w", err)
	}
	return c, nil
}

// PIICopiesBound is the promise key epochs keep: every copy of buyer PII,
// backups included, is undecryptable within 30 days of sealing.
const PIICopiesBound = 720 * time.Hour

// checkKeyEpochs rejects epoch timings that break the promise. Data sealed at
// an epoch's very start is the oldest its key wraps: the key is retired
// DPP_KEY_EPOCH_LIFETIME later and destroyed DPP_KEY_DELETION_WINDOW after that.
func (l *loader) checkKeyEpochs(c *Config) {
	day := 24 * time.Hour
	if c.KeyEpoch <= 0 || c.KeyEpoch%time.Second != 0 {
		l.fail("DPP_KEY_EPOCH", "must be a positive whole number of seconds")
	}
	if c.KeyEpochLifetime <= c.KeyEpoch {
		l.fail("DPP_KEY_EPOCH_LIFETIME", fmt.Sprintf("must be longer than DPP_KEY_EPOCH (%s): an epoch's key is retired only after the epoch has closed", c.KeyEpoch))
	}
	if w := c.KeyDeletionWindow; w%day != 0 || w < 7*day || w > 30*day {
		l.fail("DPP_KEY_DELETION_WINDOW", "must be whole days from 7 to 30 (168h to 720h): KMS ScheduleKeyDeletion takes PendingWindowInDays 7 to 30")
	}
	if sum := c.KeyEpochLifetime + c.KeyDeletionWindow; sum > PIICopiesBound {
		l.fail("DPP_KEY_EPOCH_LIFETIME", fmt.Sprintf("plus DPP_KEY_DELETION_WINDOW is %s, more than %s: buyer PII sealed at an epoch's start would stay decryptable in backups for more than 30 days (shorten DPP_KEY_EPOCH_LIFETIME or DPP_KEY_DELETION_WINDOW)",
			sum, PIICopiesBound))
	}
}

// MigrationsURL is all `starter migrate` reads: the schema owner's connection
// string from DPP_MIGRATIONS_DATABASE_URL, else DATABASE_URL (else its default),
// and the name of the variable it came from.
func MigrationsURL(getenv func(string) string) (dsn, variable string) {
	l := newLoader(getenv)
	if v := l.str("DPP_MIGRATIONS_DATABASE_URL"); v != "" {
		return v, "DPP_MIGRATIONS_DATABASE_URL"
	}
	return l.str("DATABASE_URL"), "DATABASE_URL"
}

// Auditor is the configuration of the auditor's commands (`starter evidence
// verify|keys|head`, `starter certificate`): a database URL, read-only is enough
// (dpp_auditor), and the pinned public keys. No KMS, no Temporal, no seller
// settings, no AWS variables.
type Auditor struct {
	DatabaseURL      string
	EvidenceKeysFile string // DPP_EVIDENCE_KEYS
}

// LoadAuditor reads only DATABASE_URL and DPP_EVIDENCE_KEYS; requireKeys makes
// the latter required (commands that verify signatures need it).
func LoadAuditor(getenv func(string) string, requireKeys bool) (*Auditor, error) {
	l := newLoader(getenv)
	a := &Auditor{DatabaseURL: l.str("DATABASE_URL"), EvidenceKeysFile: l.str("DPP_EVIDENCE_KEYS")}
	if requireKeys && a.EvidenceKeysFile == "" {
		l.fail("DPP_EVIDENCE_KEYS", "is required: "+l.settings["DPP_EVIDENCE_KEYS"].Doc)
	}
	if err := errors.Join(l.errs...); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return a, nil
}

// PrintHelp writes the table of settings with defaults and meanings.
func PrintHelp(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, s := range Settings {
		def := s.Default
		switch {
		case s.Required:
			def = "(required)"
		case def == "":
			def = "(empty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, def, s.Doc)
	}
	tw.Flush()
}

func newLoader(getenv func(string) string) loader {
	l := loader{getenv: getenv, settings: make(map[string]Setting, len(Settings))}
	for _, s := range Settings {
		l.settings[s.Name] = s
	}
	return l
}

type loader struct {
	getenv   func(string) string
	settings map[string]Setting // Settings by name
	errs     []error
}

func (l *loader) fail(name, problem string) {
	l.errs = append(l.errs, fmt.Errorf("  %s %s", name, problem))
}

func (l *loader) str(name string) string {
	s, ok := l.settings[name]
	if !ok {
		panic("config: setting " + name + " is not declared in Settings")
	}
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		v = s.Default
	}
	if v == "" && s.Required {
		l.fail(name, "is required: "+s.Doc)
	}
	return v
}

func (l *loader) url(name string) string {
	v := l.str(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		l.fail(name, "must be an absolute URL like https://host[:port]")
		return ""
	}
	return v
}

func (l *loader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(l.str(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (l *loader) lines(name string) []string {
	v := strings.ReplaceAll(l.str(name), "\n", "|")
	var out []string
	for _, p := range strings.Split(v, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (l *loader) duration(name string) time.Duration {
	v := l.str(name)
	d, err := time.ParseDuration(v)
	if err != nil {
		l.fail(name, fmt.Sprintf("must be a Go duration like 720h or 30s, got %q", v))
		return 0
	}
	return d
}

// number parses a factor: a finite decimal from 1 to 1,000,000.
func (l *loader) number(name string) float64 {
	v := l.str(name)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 1 || f > 1e6 {
		l.fail(name, fmt.Sprintf("must be a number from 1 to 1000000, got %q", v))
		return 1
	}
	return f
}

func (l *loader) oneOf(name string, allowed ...string) string {
	v := l.str(name)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	l.fail(name, fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), v))
	return allowed[0]
}

func (l *loader) boolean(name string) bool {
	v := l.str(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(name, fmt.Sprintf("must be true or false, got %q", v))
	}
	return b
}

func (l *loader) email(name string) string {
	v := l.str(name)
	if v != "" && (!strings.Contains(v, "@") || strings.ContainsAny(v, " <>")) {
		l.fail(name, fmt.Sprintf("must be a plain e-mail address, got %q", v))
	}
	return v
}

func (l *loader) series(name string) string {
	v := l.str(name)
	for _, r := range v {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			l.fail(name, fmt.Sprintf("may hold only A-Z, 0-9 and '-', got %q", v))
			break
		}
	}
	if len(v) == 0 || len(v) > 12 {
		l.fail(name, "must be 1 to 12 characters")
	}
	return v
}

func (l *loader) vatNumber(name string) string {
	v := strings.ReplaceAll(strings.ToUpper(l.str(name)), " ", "")
	if v == "" {
		return v
	}
	digits := strings.TrimPrefix(v, "GB")
	ok := strings.HasPrefix(v, "GB") && (len(digits) == 9 || len(digits) == 12)
	for _, r := range digits {
		ok = ok && r >= '0' && r <= '9'
	}
	if !ok {
		l.fail(name, fmt.Sprintf("must be GB followed by 9 or 12 digits, got %q", v))
	}
	return v
}

// percent parses "20" or "17.5" into basis points.
func parsePercent(v string) (int64, error) {
	minor, err := parseDecimal2(v)
	if err != nil || minor < 0 || minor > 10000 {
		return 0, fmt.Errorf("must be a percentage between 0 and 100 with at most 2 decimals, got %q", v)
	}
	return minor, nil
}

func (l *loader) percent(name string) int64 {
	bp, err := parsePercent(l.str(name))
	if err != nil {
		l.fail(name, err.Error())
	}
	return bp
}

func (l *loader) pounds(name string) int64 {
	v := l.str(name)
	minor, err := parseDecimal2(v)
	if err != nil || minor < 0 {
		l.fail(name, fmt.Sprintf("must be an amount like 250.00, got %q", v))
	}
	return minor
}

func (l *loader) vatRates(name string) map[string]int64 {
	out := map[string]int64{}
	v := l.str(name)
	if v == "" {
		return out
	}
	for _, pair := range strings.Split(v, ",") {
		sku, rate, ok := strings.Cut(strings.TrimSpace(pair), "=")
		sku = strings.TrimSpace(sku)
		if !ok || sku == "" {
			l.fail(name, fmt.Sprintf("entry %q must be SKU=percent", pair))
			continue
		}
		bp, err := parsePercent(strings.TrimSpace(rate))
		if err != nil {
			l.fail(name, fmt.Sprintf("rate of SKU %s %v", sku, err))
			continue
		}
		out[sku] = bp
	}
	return out
}

// parseDecimal2 turns "12", "12.3" or "12.34" into hundredths without floats.
func parseDecimal2(v string) (int64, error) {
	whole, frac, _ := strings.Cut(v, ".")
	if whole == "" || len(frac) > 2 {
		return 0, errors.New("not a decimal")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseUint(whole, 10, 40)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseUint(frac, 10, 8)
	if err != nil {
		return 0, err
	}
	return int64(w)*100 + int64(f), nil
}
