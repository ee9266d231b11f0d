// Package config reads veo4k's settings (DESIGN.md, "Configuration") from an
// environment given to it, validates them, and describes them for the start-up
// log with secrets masked. Only main packages call it; lower packages receive
// the typed values they need.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config is every setting of every veo4k service; each service uses its part.
type Config struct {
	NATSURL     string `env:"VEO4K_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	IngressAddr string `env:"VEO4K_INGRESS_ADDR" envDefault:":8080"`
	FetcherAddr string `env:"VEO4K_FETCHER_ADDR" envDefault:":8081"`

	// HMACKeys are the provider signing keys; several at once during rotation.
	HMACKeys           []string      `env:"VEO4K_WEBHOOK_HMAC_KEY" envSeparator:","`
	SignatureTolerance time.Duration `env:"VEO4K_SIGNATURE_TOLERANCE" envDefault:"5m"`
	// MaxBodyBytes is the largest callback body the ingress reads.
	MaxBodyBytes int64 `env:"VEO4K_MAX_BODY_BYTES" envDefault:"1048576"`
	// PublishTimeout bounds the wait for JetStream's PubAck before answering 503.
	PublishTimeout time.Duration `env:"VEO4K_PUBLISH_TIMEOUT" envDefault:"3s"`

	DataDir              string   `env:"VEO4K_DATA_DIR" envDefault:"./data"`
	CatalogDSN           string   `env:"VEO4K_CATALOG_DSN"`
	AllowedHosts         []string `env:"VEO4K_ALLOWED_HOSTS" envDefault:"aiquickdraw.com,*.aiquickdraw.com" envSeparator:","`
	AllowPrivateNetworks bool     `env:"VEO4K_ALLOW_PRIVATE_NETWORKS" envDefault:"false"`
	FetchConcurrency     int      `env:"VEO4K_FETCH_CONCURRENCY" envDefault:"4"`
	MaxFileBytes         int64    `env:"VEO4K_MAX_FILE_BYTES" envDefault:"17179869184"`
	// MaxDeliver bounds JetStream redeliveries of one callback before it is dead-lettered.
	MaxDeliver int `env:"VEO4K_MAX_DELIVER" envDefault:"10"`
	// AckWait is how long a callback whose fetcher went silent (crashed)
	// waits before another fetcher takes it over.
	AckWait time.Duration `env:"VEO4K_ACK_WAIT" envDefault:"30s"`

	// StreamReplicas is the JetStream replica count of veo4k's streams (3 on a cluster).
	StreamReplicas int    `env:"VEO4K_STREAM_REPLICAS" envDefault:"1"`
	LogLevel       string `env:"VEO4K_LOG_LEVEL" envDefault:"info"`

	// NATSListen is where the standalone's embedded NATS server listens for
	// other local programs; NATSListenOff keeps it in-process only.
	NATSListen string `env:"VEO4K_NATS_LISTEN" envDefault:"127.0.0.1:4222"`
}

// NATSListenOff as VEO4K_NATS_LISTEN keeps the standalone's NATS in-process.
const NATSListenOff = "off"

// Load reads the configuration from environ (as os.Environ returns it) and validates it.
func Load(environ []string) (Config, error) {
	var c Config
	if err := Parse(environ, &c); err != nil {
		return Config{}, err
	}
	c.HMACKeys = trimEmpty(c.HMACKeys)
	c.AllowedHosts = trimEmpty(c.AllowedHosts)
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	if c.SignatureTolerance <= 0 {
		errs = append(errs, errors.New("VEO4K_SIGNATURE_TOLERANCE must be positive"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("VEO4K_MAX_BODY_BYTES must be positive"))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, errors.New("VEO4K_PUBLISH_TIMEOUT must be positive"))
	}
	if c.FetchConcurrency < 1 {
		errs = append(errs, errors.New("VEO4K_FETCH_CONCURRENCY must be at least 1"))
	}
	if c.MaxFileBytes < 1 {
		errs = append(errs, errors.New("VEO4K_MAX_FILE_BYTES must be at least 1"))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, errors.New("VEO4K_MAX_DELIVER must be at least 2"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("VEO4K_ACK_WAIT must be at least 1s"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("VEO4K_STREAM_REPLICAS must be between 1 and 5"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("VEO4K_DATA_DIR must not be empty"))
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("VEO4K_LOG_LEVEL: %w", err))
	}
	return errors.Join(errs...)
}

// Fields describes the configuration for the start-up log. Signing keys are
// never logged: only how many there are.
func (c Config) Fields() []zap.Field {
	return []zap.Field{
		zap.String("nats_url", redactURL(c.NATSURL)),
		zap.String("ingress_addr", c.IngressAddr),
		zap.String("fetcher_addr", c.FetcherAddr),
		zap.Int("hmac_keys", len(c.HMACKeys)),
		zap.Duration("signature_tolerance", c.SignatureTolerance),
		zap.String("data_dir", c.DataDir),
		zap.Bool("catalog_dsn_set", c.CatalogDSN != ""),
		zap.Strings("allowed_hosts", c.AllowedHosts),
		zap.Bool("allow_private_networks", c.AllowPrivateNetworks),
		zap.Int("fetch_concurrency", c.FetchConcurrency),
		zap.Int64("max_file_bytes", c.MaxFileBytes),
		zap.Int("max_deliver", c.MaxDeliver),
		zap.Duration("ack_wait", c.AckWait),
		zap.Int("stream_replicas", c.StreamReplicas),
		zap.String("log_level", c.LogLevel),
	}
}

// Parse fills target, a pointer to a struct with `env:"NAME"` and
// `envDefault` tags, from environ (as os.Environ returns it). Its errors name
// the variable to fix. Other programs of the project (the provider
// simulator) read their own settings with it.
func Parse(environ []string, target any) error {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if err := env.ParseWithOptions(target, env.Options{Environment: vars}); err != nil {
		return describe(err, reflect.TypeOf(target).Elem())
	}
	return nil
}

// describe turns the library's parse errors, which name Go fields of typ,
// into ones that name the variable a user must fix.
func describe(err error, typ reflect.Type) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("reading configuration: %w", err)
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := typ.FieldByName(pe.Name); ok {
				errs = append(errs, fmt.Errorf("%s: %w", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		errs = append(errs, e)
	}
	return fmt.Errorf("reading configuration: %w", errors.Join(errs...))
}

// redactURL hides a password in nats://user:pass@host URLs.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	if at < 0 {
		return u
	}
	scheme := ""
	if i := strings.Index(u, "://"); i >= 0 && i < at {
		scheme = u[:i+3]
	}
	return scheme + "REDACTED" + u[at:]
}

func trimEmpty(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
