// Package config defines every environment variable the worker and starter read:
// each is declared once with its name, default and meaning, validated at start,
// and printed by `worker -help`.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Setting is one environment variable.
type Setting struct {
	Name     string
	Default  string
	Required bool
	Doc      string
	// Secret values are never printed.
	Secret bool
}

// Settings lists every variable in the order `worker -help` prints them.
var Settings = []Setting{
	{Name: "DATABASE_URL", Default: "postgres://postgres@127.0.0.1:5432/dpp?sslmode=disable", Doc: "PostgreSQL connection string (pgx form) the worker and starter use; in production as the least-privileged role dpp_worker (auditor commands: dpp_auditor)"},
	{Name: "DPP_MIGRATIONS_DATABASE_URL", Doc: "PostgreSQL connection string of the role that owns the schema, used only by `starter migrate` (the migrations create the roles dpp_worker and dpp_auditor when missing); empty means DATABASE_URL. The worker never migrates: it refuses to start on a schema that is not current"},
	{Name: "DPP_EVIDENCE_KEYS", Doc: "file of the pinned public signing keys (`starter evidence keys > FILE`, kept outside the database) that `starter evidence verify` and `starter certificate` trust; required by them, not used by the worker"},
	{Name: "TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", Doc: "Temporal frontend host:port"},
	{Name: "TEMPORAL_NAMESPACE", Default: "default", Doc: "Temporal namespace"},
	{Name: "DPP_TASK_QUEUE", Default: "dpp", Doc: "Temporal task queue the worker polls"},
	{Name: "AWS_REGION", Default: "eu-west-2", Doc: "AWS region of the KMS key"},
	{Name: "AWS_ENDPOINT_URL_KMS", Doc: "KMS endpoint override (local-kms in dev); empty means AWS"},
	{Name: "DPP_KMS_KEY_ID", Required: true, Doc: "KMS key id, ARN or alias that wraps every data key"},
	{Name: "DPP_KEY_CACHE_TTL", Default: "2m", Doc: "how long a data key stays in worker memory after use, so an order's next step needs no KMS call (0 disables)"},
	{Name: "SPAPI_ENDPOINT", Default: "http://127.0.0.1:8099", Doc: "SP-API base URL; the sandbox when no LWA credentials are set (EU: https://sellingpartnerapi-eu.amazon.com)"},
	{Name: "LWA_TOKEN_URL", Default: "https://api.amazon.com/auth/o2/token", Doc: "Login with Amazon token endpoint"},
	{Name: "LWA_CLIENT_ID", Doc: "LWA client id; empty means the sandbox (no auth)"},
	{Name: "LWA_CLIENT_SECRET", Secret: true, Doc: "LWA client secret (rotate every 180 days)"},
	{Name: "LWA_REFRESH_TOKEN", Secret: true, Doc: "LWA refresh token of the seller authorisation"},
	{Name: "SPAPI_MARKETPLACE_IDS", Default: "A1F83G8C2ARO7P", Doc: "comma-separated marketplace ids OrderSync searches (default: UK)"},
	{Name: "DPP_PII_RETENTION", Default: "720h", Doc: "how long buyer PII is kept after delivery before purge (Go duration; policy: 30 days)"},
	{Name: "DPP_TAX_RETENTION", Default: "52596h", Doc: "how long VAT invoices are kept (Go duration; HMRC: 6 years)"},
	{Name: "DPP_DELIVERY_FALLBACK", Default: "720h", Doc: "when an order has no latest delivery date, treat it as delivered this long after purchase"},
	{Name: "DPP_SYNC_INTERVAL", Default: "5m", Doc: "how often the OrderSync schedule runs"},
	{Name: "DPP_SYNC_SETTLE", Default: "2m", Doc: "OrderSync searches up to this long before now (Amazon wants lastUpdatedBefore at least 2 minutes back); 0 searches up to the server's now"},
	{Name: "DPP_SYNC_LOOKBACK", Default: "168h", Doc: "how far back the first OrderSync searches when it has no watermark"},
	{Name: "DPP_TAX_SWEEP_INTERVAL", Default: "24h", Doc: "how often the TaxRecordSweep schedule runs"},
	{Name: "DPP_HTTP_ADDR", Default: "127.0.0.1:8088", Doc: "worker HTTP address: /healthz, /metrics, /codec/encode, /codec/decode"},
	{Name: "DPP_CODEC_KMS_KEY_ID", Doc: "KMS key id, ARN or alias the payload codec encrypts new Temporal payloads under; change it to rotate (each payload names its key, so older ones keep decoding); empty means DPP_KMS_KEY_ID"},
	{Name: "DPP_CODEC_TOKEN", Secret: true, Doc: "bearer token /codec/encode and /codec/decode require (temporal --codec-auth 'Bearer <token>'); at least 16 characters; empty refuses every request"},
	{Name: "DPP_CODEC_CORS_ORIGIN", Default: "http://127.0.0.1:8233", Doc: "the Temporal Web UI origin (scheme://host[:port]) allowed to call the codec endpoints from a browser; no other origin gets a CORS grant"},
	{Name: "DPP_CODEC_MAX_BODY", Default: "4MiB", Doc: "largest codec request body, in bytes or with a KiB/MiB suffix; larger requests get 413"},
	{Name: "DPP_CODEC_ENCODE", Default: "true", Doc: "serve /codec/encode (the temporal CLI's --codec-endpoint encodes --input through it); false leaves only /codec/decode"},
	{Name: "DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN", Default: "false", Doc: "development only: accept codec requests that carry no Authorization header when they come from DPP_CODEC_CORS_ORIGIN (the dev Web UI cannot send a token); requires a loopback DPP_CODEC_CORS_ORIGIN and DPP_HTTP_ADDR"},
	{Name: "DPP_LOG_FORMAT", Default: "json", Doc: "log encoding: json (production) or console (dev)"},
	{Name: "DPP_LOG_LEVEL", Default: "info", Doc: "log level: debug, info, warn, error"},
	{Name: "SLACK_BOT_TOKEN", Secret: true, Doc: "Slack bot token (approvals; later issues)"},
	{Name: "SLACK_SIGNING_SECRET", Secret: true, Doc: "Slack signing secret (approvals; later issues)"},
	{Name: "SLACK_API_URL", Doc: "Slack API base URL override (tests)"},
	{Name: "SMTP_URL", Default: "smtp://127.0.0.1:1025", Doc: "SMTP server for notifications (Mailpit in dev)"},
	{Name: "DPP_AMAZON_SECURITY_EMAIL", Default: "security@amazon.com", Doc: "where security incidents are reported"},
	{Name: "DPP_SELLER_NAME", Required: true, Doc: "seller's legal name, printed on invoices and certificates"},
	{Name: "DPP_SELLER_ADDRESS", Required: true, Doc: "seller's address, lines separated by '|' or newlines"},
	{Name: "DPP_SELLER_VAT_NUMBER", Required: true, Doc: "seller's UK VAT registration number (GB + 9 or 12 digits)"},
	{Name: "DPP_DPO_CONTACT", Default: "dpo@example.invalid", Doc: "contact of the Data Protection Officer, printed on certificates"},
	{Name: "DPP_INVOICE_SERIES", Default: "INV", Doc: "prefix of the gap-free invoice number series"},
	{Name: "DPP_VAT_RATES", Doc: "per-SKU VAT rates, e.g. 'PR-BOOK-01=0,PR-SEAT-02=5' (percent)"},
	{Name: "DPP_DEFAULT_VAT_RATE", Default: "20", Doc: "VAT rate in percent for SKUs not in DPP_VAT_RATES (UK standard rate)"},
	{Name: "DPP_SIMPLIFIED_INVOICE_LIMIT", Default: "250.00", Doc: "consumer orders up to this total (GBP incl. VAT) get a simplified invoice without buyer name or address"},
	{Name: "DPP_ALWAYS_FULL_INVOICE", Default: "false", Doc: "issue full invoices (with buyer name and address) for every order"},
	{Name: "DPP_BACKUP_LOCATION", Default: "none", Doc: "where database backups go, recorded on certificates of sanitization"},
}

// Config is the validated configuration.
type Config struct {
	DatabaseURL       string
	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string

	// MigrationsDatabaseURL is the schema owner's connection string (DatabaseURL
	// when DPP_MIGRATIONS_DATABASE_URL is unset), used only by `starter migrate`.
	MigrationsDatabaseURL string
	// EvidenceKeysFile is the pinned public signing keys file (DPP_EVIDENCE_KEYS).
	EvidenceKeysFile string

	AWSRegion       string
	KMSEndpoint     string
	KMSKeyID        string
	KeyCacheTTL     time.Duration
	SPAPIEndpoint   string
	LWATokenURL     string
	LWAClientID     string
	LWAClientSecret string
	LWARefreshToken string
	MarketplaceIDs  []string

	PIIRetention     time.Duration
	TaxRetention     time.Duration
	DeliveryFallback time.Duration
	SyncInterval     time.Duration
	SyncLookback     time.Duration
	SyncSettle       time.Duration
	TaxSweepInterval time.Duration

	HTTPAddr  string
	LogFormat string
	LogLevel  string

	// Payload codec and its HTTP endpoints (internal/codec).
	CodecKMSKeyID            string // DPP_CODEC_KMS_KEY_ID, or KMSKeyID when unset
	CodecToken               string
	CodecCORSOrigin          string
	CodecMaxBody             int64
	CodecEncode              bool
	CodecAllowUIWithoutToken bool

	SlackBotToken       string
	SlackSigningSecret  string
	SlackAPIURL         string
	SMTPURL             string
	AmazonSecurityEmail string

	SellerName      string
	SellerAddress   []string
	SellerVATNumber string
	DPOContact      string
	BackupLocation  string

	InvoiceSeries          string
	VATRates               map[string]int64 // SKU -> basis points
	DefaultVATRate         int64            // basis points
	SimplifiedInvoiceLimit int64            // pence incl. VAT
	AlwaysFullInvoice      bool
}

// Sandbox reports whether SP-API calls go to a sandbox (no LWA credentials).
func (c *Config) Sandbox() bool { return c.LWAClientID == "" }

// Load reads and validates every setting through getenv (os.Getenv in production).
// All problems are reported together, each naming its variable.
func Load(getenv func(string) string) (*Config, error) {
	l := loader{getenv: getenv}
	c := &Config{
		DatabaseURL:            l.str("DATABASE_URL"),
		MigrationsDatabaseURL:  l.str("DPP_MIGRATIONS_DATABASE_URL"),
		EvidenceKeysFile:       l.str("DPP_EVIDENCE_KEYS"),
		TemporalAddress:        l.str("TEMPORAL_ADDRESS"),
		TemporalNamespace:      l.str("TEMPORAL_NAMESPACE"),
		TaskQueue:              l.str("DPP_TASK_QUEUE"),
		AWSRegion:              l.str("AWS_REGION"),
		KMSEndpoint:            l.url("AWS_ENDPOINT_URL_KMS"),
		KMSKeyID:               l.str("DPP_KMS_KEY_ID"),
		KeyCacheTTL:            l.duration("DPP_KEY_CACHE_TTL"),
		SPAPIEndpoint:          l.url("SPAPI_ENDPOINT"),
		LWATokenURL:            l.url("LWA_TOKEN_URL"),
		LWAClientID:            l.str("LWA_CLIENT_ID"),
		LWAClientSecret:        l.str("LWA_CLIENT_SECRET"),
		LWARefreshToken:        l.str("LWA_REFRESH_TOKEN"),
		MarketplaceIDs:         l.list("SPAPI_MARKETPLACE_IDS"),
		PIIRetention:           l.duration("DPP_PII_RETENTION"),
		TaxRetention:           l.duration("DPP_TAX_RETENTION"),
		DeliveryFallback:       l.duration("DPP_DELIVERY_FALLBACK"),
		SyncInterval:           l.duration("DPP_SYNC_INTERVAL"),
		SyncLookback:           l.duration("DPP_SYNC_LOOKBACK"),
		TaxSweepInterval:       l.duration("DPP_TAX_SWEEP_INTERVAL"),
		HTTPAddr:               l.str("DPP_HTTP_ADDR"),
		CodecKMSKeyID:          l.str("DPP_CODEC_KMS_KEY_ID"),
		CodecToken:             l.str("DPP_CODEC_TOKEN"),
		CodecCORSOrigin:        l.origin("DPP_CODEC_CORS_ORIGIN"),
		CodecMaxBody:           l.size("DPP_CODEC_MAX_BODY"),
		CodecEncode:            l.boolean("DPP_CODEC_ENCODE"),
		LogFormat:              l.oneOf("DPP_LOG_FORMAT", "json", "console"),
		LogLevel:               l.oneOf("DPP_LOG_LEVEL", "debug", "info", "warn", "error"),
		SlackBotToken:          l.str("SLACK_BOT_TOKEN"),
		SlackSigningSecret:     l.str("SLACK_SIGNING_SECRET"),
		SlackAPIURL:            l.url("SLACK_API_URL"),
		SMTPURL:                l.url("SMTP_URL"),
		AmazonSecurityEmail:    l.email("DPP_AMAZON_SECURITY_EMAIL"),
		SellerName:             l.str("DPP_SELLER_NAME"),
		SellerAddress:          l.lines("DPP_SELLER_ADDRESS"),
		SellerVATNumber:        l.vatNumber("DPP_SELLER_VAT_NUMBER"),
		DPOContact:             l.str("DPP_DPO_CONTACT"),
		BackupLocation:         l.str("DPP_BACKUP_LOCATION"),
		InvoiceSeries:          l.series("DPP_INVOICE_SERIES"),
		VATRates:               l.vatRates("DPP_VAT_RATES"),
		DefaultVATRate:         l.percent("DPP_DEFAULT_VAT_RATE"),
		SimplifiedInvoiceLimit: l.pounds("DPP_SIMPLIFIED_INVOICE_LIMIT"),
		AlwaysFullInvoice:      l.boolean("DPP_ALWAYS_FULL_INVOICE"),
	}
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
	for _, name := range []string{"DPP_SYNC_INTERVAL", "DPP_TAX_SWEEP_INTERVAL", "DPP_DELIVERY_FALLBACK", "DPP_SYNC_LOOKBACK"} {
		if d, err := time.ParseDuration(l.str(name)); err == nil && d <= 0 {
			l.fail(name, "must be positive")
		}
	}
	if c.KeyCacheTTL < 0 {
		l.fail("DPP_KEY_CACHE_TTL", "must not be negative")
	}
	if c.SyncSettle < 0 {
		l.fail("DPP_SYNC_SETTLE", "must not be negative")
	}
	c.CodecAllowUIWithoutToken = l.boolean("DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN")
	l.checkCodec(c)
	if len(c.MarketplaceIDs) == 0 {
		l.fail("SPAPI_MARKETPLACE_IDS", "must name at least one marketplace")
	}
	if err := errors.Join(l.errs...); err != nil {
		return nil, fmt.Errorf("invalid configuration (see `worker -help`):\n%w", err)
	}
	return c, nil
}

// MigrationsURL is all `starter migrate` reads: the schema owner's connection
// string from DPP_MIGRATIONS_DATABASE_URL, else DATABASE_URL (else its default),
// and the name of the variable it came from.
func MigrationsURL(getenv func(string) string) (dsn, variable string) {
	l := loader{getenv: getenv}
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
	l := loader{getenv: getenv}
	a := &Auditor{DatabaseURL: l.str("DATABASE_URL"), EvidenceKeysFile: l.str("DPP_EVIDENCE_KEYS")}
	if requireKeys && a.EvidenceKeysFile == "" {
		l.fail("DPP_EVIDENCE_KEYS", "is required: "+lookup("DPP_EVIDENCE_KEYS").Doc)
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

func lookup(name string) Setting {
	for _, s := range Settings {
		if s.Name == name {
			return s
		}
	}
	panic("config: setting " + name + " is not declared in Settings")
}

type loader struct {
	getenv func(string) string
	errs   []error
}

func (l *loader) fail(name, problem string) {
	l.errs = append(l.errs, fmt.Errorf("  %s %s", name, problem))
}

func (l *loader) str(name string) string {
	s := lookup(name)
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
