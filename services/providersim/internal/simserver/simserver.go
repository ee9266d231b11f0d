// Package simserver wires the providersim service: configuration from the
// environment, logging, the HTTP server and graceful shutdown.
package simserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/logging"
	"github.com/veo4k/veo4k/pkg/providersim"
)

// Config is the service's configuration.
type Config struct {
	Addr string `env:"PROVIDERSIM_ADDR" envDefault:":9090"`
	// PublicURL is the base of the file URLs in callbacks; empty derives
	// http://<listen host or 127.0.0.1>:<port> from the listener.
	PublicURL   string `env:"PROVIDERSIM_PUBLIC_URL"`
	CallbackURL string `env:"PROVIDERSIM_CALLBACK_URL" envDefault:"http://127.0.0.1:8080/v1/callbacks/4k"`
	// HMACKeys are the ingress's keys; the first signs callbacks.
	HMACKeys           []string      `env:"VEO4K_WEBHOOK_HMAC_KEY" envSeparator:","`
	APIKey             string        `env:"PROVIDERSIM_API_KEY"`
	CompleteAfter      time.Duration `env:"PROVIDERSIM_COMPLETE_AFTER" envDefault:"5s"`
	VideoBytes         int64         `env:"PROVIDERSIM_VIDEO_BYTES" envDefault:"5242880"`
	CallbackRetryDelay time.Duration `env:"PROVIDERSIM_CALLBACK_RETRY_DELAY" envDefault:"2s"`
	LogLevel           string        `env:"VEO4K_LOG_LEVEL" envDefault:"info"`
}

// LoadConfig reads the configuration from environ (as os.Environ returns it).
func LoadConfig(environ []string) (Config, error) {
	var c Config
	if err := config.Parse(environ, &c); err != nil {
		return Config{}, err
	}
	keys := c.HMACKeys[:0]
	for _, k := range c.HMACKeys {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	c.HMACKeys = keys
	var errs []error
	if c.CompleteAfter <= 0 {
		errs = append(errs, errors.New("PROVIDERSIM_COMPLETE_AFTER must be positive"))
	}
	if c.VideoBytes <= 0 {
		errs = append(errs, errors.New("PROVIDERSIM_VIDEO_BYTES must be positive"))
	}
	if c.CallbackRetryDelay <= 0 {
		errs = append(errs, errors.New("PROVIDERSIM_CALLBACK_RETRY_DELAY must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Fields describes the configuration for the start-up log; keys are never
// logged, only whether they are set.
func (c Config) Fields() []zap.Field {
	return []zap.Field{
		zap.String("addr", c.Addr),
		zap.String("callback_url", c.CallbackURL),
		zap.Bool("signing", len(c.HMACKeys) > 0),
		zap.Bool("api_key_set", c.APIKey != ""),
		zap.Duration("complete_after", c.CompleteAfter),
		zap.Int64("video_bytes", c.VideoBytes),
		zap.Duration("callback_retry_delay", c.CallbackRetryDelay),
	}
}

// Main loads the configuration, builds the logger and runs until ctx ends.
func Main(ctx context.Context, environ []string) error {
	cfg, err := LoadConfig(environ)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, "providersim")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	return Serve(ctx, ln, cfg, log)
}

// Serve runs the simulator on ln until ctx ends, then shuts down within 10 s.
// It closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg Config, log *zap.Logger) error {
	public := strings.TrimRight(cfg.PublicURL, "/")
	if public == "" {
		public = derivePublicURL(ln.Addr())
	}
	key := ""
	if len(cfg.HMACKeys) > 0 {
		key = cfg.HMACKeys[0]
	}
	sim := providersim.New(providersim.Config{
		PublicURL:          public,
		CallbackBaseURL:    strings.TrimRight(cfg.CallbackURL, "/"),
		HMACKey:            key,
		APIKey:             cfg.APIKey,
		CompleteAfter:      cfg.CompleteAfter,
		DefaultVideoBytes:  cfg.VideoBytes,
		CallbackRetryDelay: cfg.CallbackRetryDelay,
		Log:                log,
	})
	defer func() { _ = sim.Close() }()
	if key == "" {
		log.Warn("no VEO4K_WEBHOOK_HMAC_KEY: callbacks are sent unsigned")
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	log.Info("providersim listening", append(cfg.Fields(), zap.String("listen", ln.Addr().String()), zap.String("public_url", public))...)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	log.Info("providersim shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutting down http: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving http: %w", err)
	}
	return nil
}

// derivePublicURL turns a listen address into a URL others can reach:
// an unspecified host (":9090", "0.0.0.0") becomes 127.0.0.1.
func derivePublicURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
