package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// nonDefault gives every declared setting a valid value other than its default
// (and other than minimal()'s), plus any companions it needs to be valid. A
// setting added to Settings without an entry here fails
// TestEverySettingReachesConfig: declare, load and test it together.
var nonDefault = map[string]struct {
	value string
	with  map[string]string // companions set in both the baseline and the variant
}{
	"DATABASE_URL":                           {value: "postgres://dpp_worker@db.internal:5432/dpp"},
	"DPP_MIGRATIONS_DATABASE_URL":            {value: "postgres://dpp_owner@db.internal:5432/dpp"},
	"TEMPORAL_ADDRESS":                       {value: "temporal.internal:7233"},
	"TEMPORAL_NAMESPACE":                     {value: "dpp-prod"},
	"TEMPORAL_API_KEY":                       {value: "tmprl-api-key"},
	"TEMPORAL_TLS":                           {value: "true"},
	"TEMPORAL_TLS_CLIENT_CERT_PATH":          {value: "/etc/dpp/temporal.pem"},
	"TEMPORAL_TLS_CLIENT_KEY_PATH":           {value: "/etc/dpp/other.key"},
	"TEMPORAL_TLS_CLIENT_CERT_DATA":          {value: "-----BEGIN CERTIFICATE-----"},
	"TEMPORAL_TLS_CLIENT_KEY_DATA":           {value: "-----BEGIN PRIVATE KEY-----"},
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH":       {value: "/etc/dpp/temporal-ca.pem"},
	"TEMPORAL_TLS_SERVER_CA_CERT_DATA":       {value: "-----BEGIN CERTIFICATE-----"},
	"TEMPORAL_TLS_SERVER_NAME":               {value: "temporal.internal"},
	"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": {value: "true"},
	"TEMPORAL_CLIENT_AUTHORITY":              {value: "temporal.internal"},
	"TEMPORAL_PROFILE":                       {value: "cloud", with: map[string]string{"TEMPORAL_CONFIG_FILE": "testdata/temporal.toml"}},
	"TEMPORAL_CONFIG_FILE":                   {value: "testdata/temporal.toml"},
	"DPP_TASK_QUEUE":                         {value: "dpp-eu"},
	"DPP_WORKER_STOP_TIMEOUT":                {value: "25s"},
	"AWS_REGION":                             {value: "eu-west-1"},
	"AWS_ENDPOINT_URL_KMS":                   {value: "http://127.0.0.1:4599"},
	"AWS_ENDPOINT_URL_SQS":                   {value: "http://127.0.0.1:4100"},
	"DPP_ORDER_CHANGE_QUEUE_URL":             {value: "http://127.0.0.1:4100/100010001000/order-change"},
	"DPP_KMS_KEY_ID":                         {value: "alias/dpp-other"},
	"DPP_KEY_CACHE_TTL":                      {value: "45s"},
	"DPP_KEY_EPOCH":                          {value: "12h"},
	"DPP_KEY_EPOCH_LIFETIME":                 {value: "480h"},
	"DPP_KEY_DELETION_WINDOW":                {value: "240h", with: map[string]string{"DPP_KEY_EPOCH_LIFETIME": "480h"}},
	"SPAPI_ENDPOINT":                         {value: "https://sellingpartnerapi-eu.amazon.com"},
	"LWA_TOKEN_URL":                          {value: "https://lwa.example.com/auth/o2/token"},
	"LWA_CLIENT_ID":                          {value: "amzn1.application-oa2-client.x", with: map[string]string{"LWA_CLIENT_SECRET": "s", "LWA_REFRESH_TOKEN": "r"}},
	"LWA_CLIENT_SECRET":                      {value: "amzn1.oa2-cs.v1.secret"},
	"LWA_REFRESH_TOKEN":                      {value: "Atzr|refresh"},
	"DPP_SPAPI_TASK_QUEUE":                   {value: "dpp-amazon"},
	"DPP_SPAPI_SYNC_TASK_QUEUE":              {value: "dpp-amazon-sync"},
	"DPP_SPAPI_SANDBOX_SPEEDUP":              {value: "100"},
	"SPAPI_MARKETPLACE_IDS":                  {value: "A1F83G8C2ARO7P,A1PA6795UKMFR9"},
	"DPP_PII_RETENTION":                      {value: "360h"},
	"DPP_TAX_RETENTION":                      {value: "60000h"},
	"DPP_DELIVERY_FALLBACK":                  {value: "240h"},
	"DPP_SYNC_INTERVAL":                      {value: "10m"},
	"DPP_SYNC_SETTLE":                        {value: "3m"},
	"DPP_SYNC_LOOKBACK":                      {value: "24h"},
	"DPP_SYNC_REJECT_RETRY_FOR":              {value: "48h"},
	"DPP_TAX_SWEEP_INTERVAL":                 {value: "12h"},
	"DPP_HTTP_ADDR":                          {value: "127.0.0.1:9088"},
	"DPP_CODEC_KMS_KEY_ID":                   {value: "alias/dpp-codec-2027"},
	"DPP_CODEC_TOKEN":                        {value: "0123456789abcdef0123"},
	"DPP_CODEC_CORS_ORIGIN":                  {value: "https://temporal.example.com"},
	"DPP_CODEC_MAX_BODY":                     {value: "512KiB"},
	"DPP_CODEC_ENCODE":                       {value: "false"},
	"DPP_UPLOAD_INVOICES":                    {value: "true"},
	"DPP_CODEC_PREVIOUS_KMS_KEY_IDS":         {value: "alias/dpp-2025,alias/dpp-2024"},
	"DPP_CODEC_MAX_DECODED":                  {value: "32MiB"},
	"DPP_METRICS_REFRESH":                    {value: "45s"},
	"DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN":       {value: "true"},
	"DPP_LOG_FORMAT":                         {value: "console"},
	"DPP_LOG_LEVEL":                          {value: "warn"},
	"SLACK_BOT_TOKEN":                        {value: "xoxb-test", with: map[string]string{"SLACK_SIGNING_SECRET": "signing-secret-other"}},
	"DPP_PUBLIC_ADDR":                        {value: "0.0.0.0:9089"},
	"DPP_INGEST_TOKEN":                       {value: "ingest-token-0123456789"},
	"SLACK_SIGNING_SECRET":                   {value: "signing-secret"},
	"SLACK_API_URL":                          {value: "http://127.0.0.1:9999/api/"},
	"SMTP_URL":                               {value: "smtp://mail.internal:587"},
	"DPP_AMAZON_SECURITY_EMAIL":              {value: "security-test@example.com"},
	"DPP_MAIL_FROM":                          {value: "dpp@plusranger.example"},
	"DPP_INCIDENT_CHANNEL":                   {value: "C0INCIDENTS"},
	"DPP_DPO_CHANNEL":                        {value: "C0DPO"},
	"DPP_DUTY_WINDOW":                        {value: "72h"},
	"DPP_DUTY_REMINDERS":                     {value: "1h,2h"},
	"DPP_DUTY_OVERDUE_EVERY":                 {value: "12h"},
	"DPP_LWA_SECRET_ISSUED_AT":               {value: "2026-06-04"},
	"DPP_LWA_ROTATE_BEFORE":                  {value: "240h"},
	"DPP_ALERT_INTERVAL":                     {value: "2m"},
	"DPP_ALERT_SYNC_LAG":                     {value: "1h"},
	"DPP_ALERT_DEADLINE_WARNING":             {value: "12h"},
	"DPP_AMAZON_DATA_RETENTION":              {value: "9000h"},
	"DPP_INCIDENT_APPROVERS":                 {value: "U0DPO,dpo"},
	"DPP_INCIDENT_STAGES":                    {value: "triage,contain,notify,close"},
	"DPP_INCIDENT_AMAZON_DEADLINE":           {value: "23h"},
	"DPP_INCIDENT_ICO_DEADLINE":              {value: "48h"},
	"DPP_INCIDENT_REMINDERS":                 {value: "2h,6h"},
	"DPP_INCIDENT_AUTO_SEND":                 {value: "21h"},
	"DPP_INCIDENT_TEXT_RETENTION":            {value: "8766h"},
	"DPP_SELLER_NAME":                        {value: "Other Seller Ltd"},
	"DPP_SELLER_ADDRESS":                     {value: "2 Low Road|Leeds|LS1 1AA"},
	"DPP_SELLER_VAT_NUMBER":                  {value: "GB987654321"},
	"DPP_EVIDENCE_KEYS":                      {value: "/etc/dpp/evidence-keys.json"},
	"DPP_OPERATORS":                          {value: "dpo,legal"},
	"DPP_DPO_CONTACT":                        {value: "dpo@plusranger.example"},
	"DPP_INVOICE_SERIES":                     {value: "PR-26"},
	"DPP_CREDIT_NOTE_SERIES":                 {value: "PR-CN-26"},
	"DPP_VAT_RATES":                          {value: "PR-BOOK-01=0"},
	"DPP_DEFAULT_VAT_RATE":                   {value: "17.5"},
	"DPP_SIMPLIFIED_INVOICE_LIMIT":           {value: "100.00"},
	"DPP_ALWAYS_FULL_INVOICE":                {value: "true"},
	"DPP_BACKUP_LOCATION":                    {value: "s3://backups/dpp"},
	"DPP_DPO_PERSON_ID":                      {value: "p-dpo"},
	"DPP_ACCESS_POSTGRES_URL":                {value: "postgres://dpp_access@db.internal:5432/dpp"},
	"DPP_REVIEW_REMINDERS":                   {value: "24h"},
	"DPP_REVIEW_ESCALATION":                  {value: "150h"},
	"DPP_REVIEW_DEADLINE":                    {value: "200h"},
	"DPP_OFFBOARDING_SLA":                    {value: "48h"},
	"DPP_OFFBOARDING_ESCALATIONS":            {value: "6h"},
	"DPP_OFFBOARDING_REQUESTERS":             {value: "p-hr,p-dpo"},
	"DPP_LOCKOUT_THRESHOLD":                  {value: "5"},
}

// TestEverySettingReachesConfig is the guard against a setting that is declared,
// documented and validated but never read (DPP_SYNC_SETTLE and DPP_KEY_CACHE_TTL
// both were): each declared variable, set alone to a valid non-default value,
// must change the loaded Config, and every field of Config must be changed by
// some variable.
func TestEverySettingReachesConfig(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	reached := map[string]bool{}
	for _, s := range Settings {
		tc, ok := nonDefault[s.Name]
		if !ok {
			t.Errorf("%s: no non-default test value in nonDefault", s.Name)
			continue
		}
		if tc.value == s.Default || tc.value == minimal()[s.Name] {
			t.Errorf("%s: the test value %q is the default", s.Name, tc.value)
			continue
		}
		base := minimal()
		for k, v := range tc.with {
			base[k] = v
		}
		want, err := Load(env(base))
		if err != nil {
			t.Fatalf("%s: baseline: %v", s.Name, err)
		}
		variant := maps(base)
		variant[s.Name] = tc.value
		got, err := Load(env(variant))
		if err != nil {
			t.Errorf("%s=%s is valid, yet: %v", s.Name, tc.value, err)
			continue
		}
		var changed []string
		gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
		for i := range typ.NumField() {
			if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
				changed = append(changed, typ.Field(i).Name)
				reached[typ.Field(i).Name] = true
			}
		}
		if len(changed) == 0 {
			t.Errorf("%s is declared but never reaches Config: setting it to %q changed nothing", s.Name, tc.value)
		}
	}
	for i := range typ.NumField() {
		if f := typ.Field(i); !reached[f.Name] {
			t.Errorf("Config.%s is not set by any declared variable", f.Name)
		}
	}
	for name := range nonDefault {
		if _, ok := byName(name); !ok {
			t.Errorf("nonDefault names %s, which is not declared in Settings", name)
		}
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func byName(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// TestSettingsAreDeclaredOnce: one entry per variable.
func TestSettingsAreDeclaredOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings {
		if seen[s.Name] {
			t.Errorf("%s is declared twice", s.Name)
		}
		seen[s.Name] = true
		if s.Name != strings.ToUpper(s.Name) || strings.ContainsAny(s.Name, " =") {
			t.Errorf("odd variable name %q", s.Name)
		}
	}
}

// A bad value of each validated setting is reported under its name.
func TestBadSyncSettleIsNamed(t *testing.T) {
	for _, v := range []string{"-1m", "soon"} {
		kv := minimal()
		kv["DPP_SYNC_SETTLE"] = v
		_, err := Load(env(kv))
		if err == nil || !strings.Contains(err.Error(), "DPP_SYNC_SETTLE") {
			t.Errorf("DPP_SYNC_SETTLE=%s: want an error naming it, got %v", v, err)
		}
	}
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.SyncSettle); got != "2m0s" {
		t.Errorf("default SyncSettle %s, want 2m (Amazon's two-minute rule)", got)
	}
}
