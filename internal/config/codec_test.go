package config

import (
	"strings"
	"testing"
	"time"
)

func TestCodecDefaults(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if c.CodecKMSKeyID != "alias/dpp" || c.CodecToken != "" || c.CodecCORSOrigin != "http://127.0.0.1:8233" ||
		c.CodecMaxBody != 4<<20 || !c.CodecEncode || c.CodecAllowUIWithoutToken {
		t.Fatalf("codec defaults: %q %q %q %d %v %v", c.CodecKMSKeyID, c.CodecToken, c.CodecCORSOrigin, c.CodecMaxBody,
			c.CodecEncode, c.CodecAllowUIWithoutToken)
	}
	if c.CodecMaxDecoded != 16<<20 || len(c.CodecPreviousKMSKeyIDs) != 0 || c.MetricsRefresh != 30*time.Second {
		t.Fatalf("codec limits and metrics defaults: %d %v %v", c.CodecMaxDecoded, c.CodecPreviousKMSKeyIDs, c.MetricsRefresh)
	}
	kv := minimal()
	kv["DPP_CODEC_PREVIOUS_KMS_KEY_IDS"] = " alias/dpp-codec-2025, arn:aws:kms:eu-west-2:111122223333:key/1234 ,"
	kv["DPP_CODEC_MAX_DECODED"] = "64MiB"
	kv["DPP_METRICS_REFRESH"] = "2m"
	kv["DPP_CODEC_KMS_KEY_ID"] = "alias/dpp-codec-2026"
	kv["DPP_CODEC_MAX_BODY"] = "512KiB"
	kv["DPP_CODEC_CORS_ORIGIN"] = "https://temporal.example.com/"
	kv["DPP_CODEC_ENCODE"] = "false"
	kv["DPP_CODEC_TOKEN"] = "0123456789abcdef0123"
	kv["DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN"] = "false"
	if c, err = Load(env(kv)); err != nil {
		t.Fatal(err)
	}
	if c.CodecKMSKeyID != "alias/dpp-codec-2026" || c.KMSKeyID != "alias/dpp" || c.CodecMaxBody != 512<<10 ||
		c.CodecCORSOrigin != "https://temporal.example.com" || c.CodecEncode {
		t.Fatalf("codec settings: %+v", c)
	}
	if len(c.CodecPreviousKMSKeyIDs) != 2 || c.CodecPreviousKMSKeyIDs[0] != "alias/dpp-codec-2025" ||
		c.CodecPreviousKMSKeyIDs[1] != "arn:aws:kms:eu-west-2:111122223333:key/1234" || c.CodecMaxDecoded != 64<<20 ||
		c.MetricsRefresh != 2*time.Minute {
		t.Fatalf("previous keys %q, max decoded %d, metrics refresh %v", c.CodecPreviousKMSKeyIDs, c.CodecMaxDecoded, c.MetricsRefresh)
	}
}

func TestCodecProblemsAreNamed(t *testing.T) {
	for name, tc := range map[string]struct {
		kv   map[string]string
		want string
	}{
		"short token":    {map[string]string{"DPP_CODEC_TOKEN": "secret"}, "DPP_CODEC_TOKEN"},
		"origin w/ path": {map[string]string{"DPP_CODEC_CORS_ORIGIN": "http://127.0.0.1:8233/namespaces"}, "DPP_CODEC_CORS_ORIGIN"},
		"origin scheme":  {map[string]string{"DPP_CODEC_CORS_ORIGIN": "127.0.0.1:8233"}, "DPP_CODEC_CORS_ORIGIN"},
		"body size":      {map[string]string{"DPP_CODEC_MAX_BODY": "4MB"}, "DPP_CODEC_MAX_BODY"},
		"zero body":      {map[string]string{"DPP_CODEC_MAX_BODY": "0"}, "DPP_CODEC_MAX_BODY"},
		"max decoded":    {map[string]string{"DPP_CODEC_MAX_DECODED": "lots"}, "DPP_CODEC_MAX_DECODED"},
		"metrics 0s":     {map[string]string{"DPP_METRICS_REFRESH": "0s"}, "DPP_METRICS_REFRESH"},
		"metrics days":   {map[string]string{"DPP_METRICS_REFRESH": "1 day"}, "DPP_METRICS_REFRESH"},
		"encode flag":    {map[string]string{"DPP_CODEC_ENCODE": "maybe"}, "DPP_CODEC_ENCODE"},
		"UI without token on a public origin": {map[string]string{"DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN": "true",
			"DPP_CODEC_CORS_ORIGIN": "https://temporal.example.com"}, "DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN"},
		"UI without token on a public address": {map[string]string{"DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN": "true",
			"DPP_HTTP_ADDR": "0.0.0.0:8088"}, "DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN"},
	} {
		t.Run(name, func(t *testing.T) {
			kv := minimal()
			for k, v := range tc.kv {
				kv[k] = v
			}
			_, err := Load(env(kv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %s, got %v", tc.want, err)
			}
		})
	}
	kv := minimal()
	kv["DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN"] = "true"
	if _, err := Load(env(kv)); err != nil {
		t.Fatalf("dev setting on loopback refused: %v", err)
	}
}
