package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestDefaultsAreDesignMD(t *testing.T) {
	t.Parallel()
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"VEO4K_NATS_URL", c.NATSURL, "nats://127.0.0.1:4222"},
		{"VEO4K_INGRESS_ADDR", c.IngressAddr, ":8080"},
		{"VEO4K_FETCHER_ADDR", c.FetcherAddr, ":8081"},
		{"VEO4K_WEBHOOK_HMAC_KEY", len(c.HMACKeys), 0},
		{"VEO4K_SIGNATURE_TOLERANCE", c.SignatureTolerance, 5 * time.Minute},
		{"VEO4K_DATA_DIR", c.DataDir, "./data"},
		{"VEO4K_CATALOG_DSN", c.CatalogDSN, ""},
		{"VEO4K_ALLOWED_HOSTS", strings.Join(c.AllowedHosts, ","), "aiquickdraw.com,*.aiquickdraw.com"},
		{"VEO4K_ALLOW_PRIVATE_NETWORKS", c.AllowPrivateNetworks, false},
		{"VEO4K_FETCH_CONCURRENCY", c.FetchConcurrency, 4},
		{"VEO4K_MAX_FILE_BYTES", c.MaxFileBytes, int64(17179869184)},
		{"VEO4K_MAX_BODY_BYTES", c.MaxBodyBytes, int64(1 << 20)},
		{"VEO4K_LOG_LEVEL", c.LogLevel, "info"},
	}
	for _, tt := range checks {
		if tt.got != tt.want {
			t.Errorf("%s default = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadParsesLists(t *testing.T) {
	t.Parallel()
	c, err := Load([]string{"VEO4K_WEBHOOK_HMAC_KEY= new-key ,old-key,", "VEO4K_ALLOWED_HOSTS=a.example, *.b.example"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.HMACKeys, "|"), "new-key|old-key"; got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
	if got, want := strings.Join(c.AllowedHosts, "|"), "a.example|*.b.example"; got != want {
		t.Errorf("hosts %q, want %q", got, want)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct{ env, want string }{
		{"VEO4K_SIGNATURE_TOLERANCE=soon", "VEO4K_SIGNATURE_TOLERANCE"},
		{"VEO4K_SIGNATURE_TOLERANCE=-1m", "VEO4K_SIGNATURE_TOLERANCE"},
		{"VEO4K_FETCH_CONCURRENCY=0", "VEO4K_FETCH_CONCURRENCY"},
		{"VEO4K_MAX_FILE_BYTES=0", "VEO4K_MAX_FILE_BYTES"},
		{"VEO4K_ALLOW_PRIVATE_NETWORKS=perhaps", "VEO4K_ALLOW_PRIVATE_NETWORKS"},
		{"VEO4K_LOG_LEVEL=loud", "VEO4K_LOG_LEVEL"},
		{"VEO4K_STREAM_REPLICAS=7", "VEO4K_STREAM_REPLICAS"},
		{"VEO4K_ACK_WAIT=10ms", "VEO4K_ACK_WAIT"},
		{"VEO4K_MAX_DELIVER=1", "VEO4K_MAX_DELIVER"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			_, err := Load([]string{tt.env})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load(%s) = %v, want an error naming %s", tt.env, err, tt.want)
			}
		})
	}
}

func TestFieldsNeverLogSecrets(t *testing.T) {
	t.Parallel()
	c, err := Load([]string{"VEO4K_WEBHOOK_HMAC_KEY=s3cret-key-1,s3cret-key-2", "VEO4K_NATS_URL=nats://user:pa55word@nats:4222",
		"VEO4K_CATALOG_DSN=postgres://u:dbpa55@db/veo4k"})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("starting", c.Fields()...)
	line := logs.All()[0].ContextMap()
	for k, v := range line {
		s := fmt.Sprint(v)
		for _, secret := range []string{"s3cret", "pa55word", "dbpa55"} {
			if strings.Contains(s, secret) {
				t.Errorf("field %s = %v leaks a secret", k, v)
			}
		}
	}
	if got := line["hmac_keys"]; got != int64(2) {
		t.Errorf("hmac_keys = %v, want the count 2", got)
	}
	if got := line["nats_url"]; got != "nats://REDACTED@nats:4222" {
		t.Errorf("nats_url = %v", got)
	}
}
