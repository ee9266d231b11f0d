// Package app wires the ingress service: configuration, the NATS connection,
// the VEO4K_CALLBACKS stream, the HTTP server, and an orderly shutdown (stop
// accepting, let in-flight callbacks finish, then drain NATS so every
// acknowledged publish is on the wire).
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/ingress"
	"github.com/veo4k/veo4k/pkg/stream"
)

// Shutdown bounds.
const (
	// shutdownGrace is how long in-flight requests get to finish after SIGTERM.
	shutdownGrace = 10 * time.Second
	// drainTimeout bounds the NATS drain that follows.
	drainTimeout = 5 * time.Second
)

// Run loads the configuration from environ and serves until ctx ends.
func Run(ctx context.Context, log *zap.Logger, environ []string) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log.Info("starting ingress", cfg.Fields()...)
	ln, err := listen(cfg.IngressAddr)
	if err != nil {
		return err
	}
	return serve(ctx, log, cfg, ln)
}

// listen opens addr, saying plainly when the port is taken.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listening on %s: the port is already in use by another program (set VEO4K_INGRESS_ADDR to another address): %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// serve runs the ingress on ln until ctx ends; it closes ln.
func serve(ctx context.Context, log *zap.Logger, cfg config.Config, ln net.Listener) error {
	defer ln.Close()

	nc, js, err := connect(cfg.NATSURL, log)
	if err != nil {
		return err
	}
	defer drain(nc, log)

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering runtime metrics: %w", err)
		}
	}
	ing, err := ingress.New(ingress.Config{
		HMACKeys:           cfg.HMACKeys,
		SignatureTolerance: cfg.SignatureTolerance,
		PublishTimeout:     cfg.PublishTimeout,
		MaxBodyBytes:       cfg.MaxBodyBytes,
	}, nc, js, log, reg)
	if err != nil {
		return fmt.Errorf("building ingress: %w", err)
	}

	// The stream is created in the background so the ingress can start
	// before NATS: until it exists /readyz says unready and callbacks get 503.
	ensureCtx, stopEnsure := context.WithCancel(ctx)
	ensured := make(chan struct{})
	go func() {
		defer close(ensured)
		ensureStream(ensureCtx, js, stream.CallbacksConfig(stream.Options{Replicas: cfg.StreamReplicas}), log)
		if max := nc.MaxPayload(); max > 0 && cfg.MaxBodyBytes > max-4096 {
			log.Warn("VEO4K_MAX_BODY_BYTES is close to or above the NATS max payload: bodies near the limit will be refused with 413",
				zap.Int64("max_body_bytes", cfg.MaxBodyBytes), zap.Int64("nats_max_payload", max))
		}
	}()
	defer func() { stopEnsure(); <-ensured }()

	srv := &http.Server{
		Handler:           ing,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.PublishTimeout + 15*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("ingress listening", zap.String("addr", ln.Addr().String()))

	select {
	case err := <-errc:
		return fmt.Errorf("serving http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight callbacks", zap.Duration("grace", shutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down http server: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// connect opens a NATS connection that retries the first connect and
// reconnects forever, so the ingress survives NATS starting late or restarting.
func connect(url string, log *zap.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name("veo4k-ingress"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.DrainTimeout(drainTimeout),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("nats connected", zap.String("server", c.ConnectedUrlRedacted()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", zap.Error(err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", zap.String("server", c.ConnectedUrlRedacted()))
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening jetstream: %w", err)
	}
	return nc, js, nil
}

// ensureStream creates or updates the callbacks stream, retrying with a
// growing pause until it succeeds or ctx ends.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *zap.Logger) {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := stream.Ensure(actx, js, cfg)
		cancel()
		if err == nil {
			log.Info("stream ready", zap.String("stream", cfg.Name))
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("waiting for JetStream", zap.Int("attempt", attempt), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// drain flushes what the connection still holds and closes it, within drainTimeout.
func drain(nc *nats.Conn, log *zap.Logger) {
	if nc.IsClosed() {
		return
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		log.Warn("draining nats", zap.Error(err))
		nc.Close()
	}
	select {
	case <-closed:
	case <-time.After(drainTimeout + time.Second):
		log.Warn("nats drain did not finish in time; closing")
		nc.Close()
	}
}
