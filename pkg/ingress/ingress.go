// Package ingress is veo4k's callback receiver: an Echo server that checks
// the provider's 4K callbacks (size, content type, shape, signature, the rest)
// and stores each accepted one durably in JetStream before answering 200.
//
// It implements DESIGN.md's "Ingress HTTP contract". The one invariant that
// everything here serves: never 200 without a stored message. A callback
// that JetStream already holds (the Nats-Msg-Id window or the permanent
// per-subject guard of VEO4K_CALLBACKS refused it) is answered 200 with
// "duplicate": true, since the provider must stop retrying it.
package ingress

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/signature"
	"github.com/veo4k/veo4k/pkg/stream"
)

// Default limits, used when the Config leaves them zero.
const (
	DefaultMaxBodyBytes       = 1 << 20
	DefaultPublishTimeout     = 3 * time.Second
	DefaultSignatureTolerance = 5 * time.Minute
)

// readyCacheTTL bounds how often /readyz asks JetStream whether the stream exists.
const readyCacheTTL = time.Second

// Routes of the ingress.
const (
	CallbackPath       = "/v1/callbacks/4k"
	CallbackPathWithID = "/v1/callbacks/4k/:taskId"
)

// Config holds the ingress settings (see pkg/config for their variables).
type Config struct {
	// HMACKeys are the provider signing keys, several during rotation; none
	// means unsigned callbacks are accepted.
	HMACKeys []string
	// SignatureTolerance is the accepted clock skew of X-Webhook-Timestamp, both ways.
	SignatureTolerance time.Duration
	// PublishTimeout bounds the wait for JetStream's PubAck before answering 503.
	PublishTimeout time.Duration
	// MaxBodyBytes is the largest body read; larger ones are answered 413.
	MaxBodyBytes int64
	// Stream is the stream the callbacks must land in; stream.Callbacks when empty.
	Stream string
}

// Server is the ingress HTTP handler.
type Server struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *zap.Logger
	verifier *signature.Verifier
	echo     *echo.Echo
	metrics  *metrics
	now      func() time.Time

	readyMu      sync.Mutex
	readyChecked time.Time
	streamOK     bool
}

// New builds the ingress. reg receives the ingress's metrics and must also be
// a prometheus.Gatherer (as *prometheus.Registry is), which /metrics serves;
// nil gives the server a registry of its own.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, log *zap.Logger, reg prometheus.Registerer) (*Server, error) {
	if nc == nil || js == nil {
		return nil, errors.New("ingress needs a nats connection and a jetstream context")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.SignatureTolerance <= 0 {
		cfg.SignatureTolerance = DefaultSignatureTolerance
	}
	if cfg.Stream == "" {
		cfg.Stream = stream.Callbacks
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	gatherer, ok := reg.(prometheus.Gatherer)
	if !ok {
		return nil, errors.New("ingress metrics registry must also be a prometheus.Gatherer")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		nc:       nc,
		js:       js,
		log:      log,
		verifier: signature.NewVerifier(cfg.HMACKeys, cfg.SignatureTolerance),
		metrics:  m,
		now:      time.Now,
	}
	if !s.verifier.Enabled() {
		log.Warn("no webhook signing key configured: unsigned callbacks accepted (set VEO4K_WEBHOOK_HMAC_KEY)")
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler
	e.POST(CallbackPath, s.handleCallback)
	e.POST(CallbackPathWithID, s.handleCallback)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", s.handleReady)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	s.echo = e
	return s, nil
}

// ServeHTTP serves the ingress's routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// errorHandler answers Echo's own errors (404, 405, ...) in the ingress's
// JSON error shape.
func errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		switch code {
		case http.StatusMethodNotAllowed:
			msg = "method not allowed: use POST for callbacks, GET for /healthz, /readyz and /metrics"
		case http.StatusNotFound:
			msg = "not found: callbacks go to POST " + CallbackPath + "/{taskId}"
		default:
			msg = fmt.Sprint(he.Message)
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, errorBody{Error: msg})
}

func (s *Server) handleReady(c echo.Context) error {
	if st := s.nc.Status(); st != nats.CONNECTED {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unready", "reason": "nats " + st.String()})
	}
	if !s.streamReady(c.Request().Context()) {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unready", "reason": "stream " + s.cfg.Stream + " not found"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// streamReady reports whether the stream exists, asking JetStream at most
// once per readyCacheTTL; concurrent probes wait for the one in flight.
func (s *Server) streamReady(ctx context.Context) bool {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if now := s.now(); now.Sub(s.readyChecked) < readyCacheTTL {
		return s.streamOK
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := s.js.Stream(ctx, s.cfg.Stream)
	s.streamOK = err == nil
	s.readyChecked = s.now()
	return s.streamOK
}
