package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func minimal() map[string]string {
	return map[string]string{
		"DPP_KMS_KEY_ID":        "alias/dpp",
		"DPP_SELLER_NAME":       "Plusranger Ltd",
		"DPP_SELLER_ADDRESS":    "1 High Street|London|SW1A 1AA",
		"DPP_SELLER_VAT_NUMBER": "GB123456789",
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if c.PIIRetention != 720*time.Hour || c.TaskQueue != "dpp" || c.TemporalNamespace != "default" || c.KeyCacheTTL != 2*time.Minute {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.DefaultVATRate != 2000 || c.SimplifiedInvoiceLimit != 25000 || !c.Sandbox() {
		t.Fatalf("invoice defaults wrong: %d %d", c.DefaultVATRate, c.SimplifiedInvoiceLimit)
	}
	if len(c.SellerAddress) != 3 || c.AmazonSecurityEmail != "security@amazon.com" {
		t.Fatalf("got %v %q", c.SellerAddress, c.AmazonSecurityEmail)
	}
}

func TestEveryProblemIsNamed(t *testing.T) {
	kv := minimal()
	delete(kv, "DPP_KMS_KEY_ID")
	kv["DPP_PII_RETENTION"] = "30 days"
	kv["DPP_SELLER_VAT_NUMBER"] = "123"
	kv["DPP_VAT_RATES"] = "PR-BOOK=0,PR-X=abc,broken"
	kv["LWA_CLIENT_ID"] = "amzn1.application-oa2-client.x"
	kv["SPAPI_ENDPOINT"] = "not a url"
	kv["DPP_LOG_FORMAT"] = "xml"
	_, err := Load(env(kv))
	if err == nil {
		t.Fatal("want error")
	}
	for _, name := range []string{"DPP_KMS_KEY_ID", "DPP_PII_RETENTION", "DPP_SELLER_VAT_NUMBER", "SKU PR-X", `"broken"`, "LWA_CLIENT_SECRET", "SPAPI_ENDPOINT", "DPP_LOG_FORMAT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestVATRates(t *testing.T) {
	kv := minimal()
	kv["DPP_VAT_RATES"] = "PR-BOOK-01=0, PR-SEAT-02=5,PR-X=17.5"
	c, err := Load(env(kv))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"PR-BOOK-01": 0, "PR-SEAT-02": 500, "PR-X": 1750}
	for k, v := range want {
		if c.VATRates[k] != v {
			t.Errorf("%s: got %d want %d", k, c.VATRates[k], v)
		}
	}
}

func TestHelpListsEverySettingAndHidesNoDefaults(t *testing.T) {
	var b bytes.Buffer
	PrintHelp(&b)
	for _, s := range Settings {
		if !strings.Contains(b.String(), s.Name) {
			t.Errorf("help lacks %s", s.Name)
		}
		if s.Doc == "" {
			t.Errorf("%s has no doc", s.Name)
		}
	}
}
