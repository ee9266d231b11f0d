// Package app wires the ingress service: configuration, the NATS connection,
// the VEO4K_CALLBACKS stream, the HTTP server, and an orderly shutdown (stop
// accepting, let in-flight callbacks finish, then drain NATS so every
// acknowledged publish is on the wire).
package app

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/httpserve"
	"github.com/veo4k/veo4k/pkg/ingress"
	"github.com/veo4k/veo4k/pkg/natsconn"
	"github.com/veo4k/veo4k/pkg/stream"
)

// shutdownGrace is how long in-flight requests get to finish after SIGTERM.
const shutdownGrace = 10 * time.Second

// Run loads the configuration from environ and serves until ctx ends.
func Run(ctx context.Context, log *zap.Logger, environ []string) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log.Info("starting ingress", cfg.Fields()...)
	ln, err := httpserve.Listen(cfg.IngressAddr, "ingress", "VEO4K_INGRESS_ADDR")
	if err != nil {
		return err
	}
	return serve(ctx, log, cfg, ln)
}

// serve runs the ingress on ln until ctx ends; it closes ln.
func serve(ctx context.Context, log *zap.Logger, cfg config.Config, ln net.Listener) error {
	defer ln.Close()

	nc, js, err := natsconn.Connect(cfg.NATSURL, "veo4k-ingress", log)
	if err != nil {
		return err
	}
	defer natsconn.Drain(nc, log)

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
		err := natsconn.EnsureStreams(ensureCtx, js, log, stream.CallbacksConfig(stream.Options{Replicas: cfg.StreamReplicas}))
		if err != nil {
			return // ctx ended
		}
		if max := nc.MaxPayload(); max > 0 && cfg.MaxBodyBytes > max-4096 {
			log.Warn("VEO4K_MAX_BODY_BYTES is close to or above the NATS max payload: bodies near the limit will be refused with 413",
				zap.Int64("max_body_bytes", cfg.MaxBodyBytes), zap.Int64("nats_max_payload", max))
		}
	}()
	defer func() { stopEnsure(); <-ensured }()

	srv := httpserve.New(ing, log)
	srv.ReadTimeout = 15 * time.Second
	srv.WriteTimeout = cfg.PublishTimeout + 15*time.Second
	return httpserve.Serve(ctx, ln, srv, shutdownGrace, log)
}
