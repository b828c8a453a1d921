package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// origin parses a browser origin: scheme://host[:port], nothing after it.
func (l *loader) origin(name string) string {
	v := strings.TrimSuffix(l.str(name), "/")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		l.fail(name, fmt.Sprintf("must be an origin like https://temporal.example.com or http://127.0.0.1:8233, got %q", v))
		return ""
	}
	return v
}

// size parses a byte count: "4194304", "512KiB" or "4MiB".
func (l *loader) size(name string) int64 {
	v := l.str(name)
	n, mult := v, int64(1)
	switch {
	case strings.HasSuffix(v, "KiB"):
		n, mult = strings.TrimSuffix(v, "KiB"), 1<<10
	case strings.HasSuffix(v, "MiB"):
		n, mult = strings.TrimSuffix(v, "MiB"), 1<<20
	}
	i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if err != nil || i <= 0 || i > (1<<30)/mult {
		l.fail(name, fmt.Sprintf("must be a size like 4194304, 512KiB or 4MiB (at most 1 GiB), got %q", v))
		return 0
	}
	return i * mult
}

// checkCodec validates the codec and HTTP settings together.
func (l *loader) checkCodec(c *Config) {
	if d, err := time.ParseDuration(l.str("DPP_METRICS_REFRESH")); err == nil && d < time.Second {
		l.fail("DPP_METRICS_REFRESH", "must be at least 1s")
	}
	if c.CodecKMSKeyID == "" {
		c.CodecKMSKeyID = c.KMSKeyID
	}
	if t := c.CodecToken; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		l.fail("DPP_CODEC_TOKEN", "must be at least 16 characters without spaces (e.g. `openssl rand -hex 32`)")
	}
	if c.CodecAllowUIWithoutToken {
		u, err := url.Parse(c.CodecCORSOrigin)
		if c.CodecCORSOrigin == "" || err != nil || !isLoopback(u.Hostname()) {
			l.fail("DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN", "is for development only: it needs DPP_CODEC_CORS_ORIGIN on a loopback address (http://127.0.0.1:8233)")
		}
		if host, _, err := net.SplitHostPort(c.HTTPAddr); err != nil || !isLoopback(host) {
			l.fail("DPP_CODEC_ALLOW_UI_WITHOUT_TOKEN", "is for development only: it needs DPP_HTTP_ADDR on a loopback address (127.0.0.1:8088)")
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
