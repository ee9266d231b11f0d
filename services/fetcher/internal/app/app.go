// Package app wires the fetcher service: configuration, NATS, catalog,
// storage, the consuming workers and the catalog API.
package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/fetcher"
	"github.com/veo4k/veo4k/pkg/httpserve"
	"github.com/veo4k/veo4k/pkg/logging"
	"github.com/veo4k/veo4k/pkg/natsconn"
)

// Main loads the configuration from environ, builds the logger and runs the
// service until ctx ends.
func Main(ctx context.Context, environ []string) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, "fetcher")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return Run(ctx, cfg, log)
}

// Run runs the fetcher until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *zap.Logger) error {
	log.Info("starting", cfg.Fields()...)

	ln, err := httpserve.Listen(cfg.FetcherAddr, "fetcher API", "VEO4K_FETCHER_ADDR")
	if err != nil {
		return err
	}
	defer ln.Close()

	nc, js, err := natsconn.Connect(cfg.NATSURL, "veo4k-fetcher", log)
	if err != nil {
		return err
	}
	defer natsconn.Drain(nc, log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := fetcher.OpenService(ctx, fetcher.ServiceConfigFrom(cfg), nc, js, log, reg)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Close() }()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserve.Serve(ctx, ln, httpserve.New(svc.API, log), 10*time.Second, log) })
	g.Go(func() error {
		if err := natsconn.EnsureStreams(ctx, js, log, svc.StreamConfigs()...); err != nil {
			return err
		}
		return svc.Fetcher.Run(ctx)
	})
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	log.Info("stopped")
	return nil
}
