// Package app wires the standalone veo4k: embedded NATS, ingress, fetcher
// and catalog API in one process, and the optional demo.
package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/fetcher"
	"github.com/veo4k/veo4k/pkg/httpserve"
	"github.com/veo4k/veo4k/pkg/ingress"
	"github.com/veo4k/veo4k/pkg/logging"
	"github.com/veo4k/veo4k/pkg/natsconn"
	"github.com/veo4k/veo4k/pkg/stream"
)

// Options are the standalone's command-line choices.
type Options struct {
	// Demo starts the provider simulator and sends it a few callbacks.
	Demo bool
	// Out is where the demo prints what happens (stdout).
	Out io.Writer
	// OnReady, when set, is told the listening addresses once serving (tests).
	OnReady func(Addrs)
}

// Addrs are the addresses the standalone listens on.
type Addrs struct {
	Ingress, Fetcher, NATS string
}

// Main loads the configuration from environ and runs until ctx ends.
func Main(ctx context.Context, environ []string, o Options) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	if o.Demo && !hasVar(environ, "VEO4K_LOG_LEVEL") {
		// The demo prints what happens in plain words; logs would drown it.
		cfg.LogLevel = "warn"
	}
	log, err := logging.New(cfg.LogLevel, "standalone")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return Run(ctx, cfg, o, log)
}

func hasVar(environ []string, name string) bool {
	for _, kv := range environ {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}

// Run runs the standalone until ctx ends.
func Run(ctx context.Context, cfg config.Config, o Options, log *zap.Logger) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data directory %s is not usable (set VEO4K_DATA_DIR): %w", cfg.DataDir, err)
	}
	ingressLn, err := httpserve.Listen(cfg.IngressAddr, "ingress", "VEO4K_INGRESS_ADDR")
	if err != nil {
		return err
	}
	defer ingressLn.Close()
	fetcherLn, err := httpserve.Listen(cfg.FetcherAddr, "fetcher API", "VEO4K_FETCHER_ADDR")
	if err != nil {
		return err
	}
	defer fetcherLn.Close()

	var demo *demo
	if o.Demo {
		if demo, err = newDemo(&cfg, "http://"+hostPort(ingressLn.Addr().String())+"/v1/callbacks/4k", log); err != nil {
			return err
		}
		defer demo.Close()
	}
	log.Info("starting", cfg.Fields()...)

	ns, err := startNATS(cfg.DataDir, cfg.NATSListen)
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, js, err := connectNATS(ns, "veo4k-standalone")
	if err != nil {
		return err
	}
	defer func() {
		// Flush what the workers said last (their naks on shutdown) so the
		// next start redelivers at once instead of after the ack wait.
		_ = nc.FlushTimeout(2 * time.Second)
		nc.Close()
	}()

	streams := stream.Options{Replicas: 1}
	if err := natsconn.EnsureStreams(ctx, js, log,
		stream.CallbacksConfig(streams), stream.VideosConfig(streams), stream.DeadLettersConfig(streams)); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	in, err := ingress.New(ingress.Config{
		HMACKeys:           cfg.HMACKeys,
		SignatureTolerance: cfg.SignatureTolerance,
		PublishTimeout:     cfg.PublishTimeout,
		MaxBodyBytes:       cfg.MaxBodyBytes,
	}, nc, js, log.Named("ingress"), reg)
	if err != nil {
		return fmt.Errorf("building ingress: %w", err)
	}
	svc, err := fetcher.OpenService(ctx, fetcher.ServiceConfigFrom(cfg), nc, js, log.Named("fetcher"), reg)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Close() }()

	addrs := Addrs{Ingress: ingressLn.Addr().String(), Fetcher: fetcherLn.Addr().String()}
	if cfg.NATSListen != config.NATSListenOff {
		addrs.NATS = ns.ClientURL()
	}
	printBanner(o.Out, addrs, cfg)

	// Workers stop first (their context ends), then the HTTP servers drain,
	// then NATS: in-flight downloads are left resumable on disk.
	g, gctx := errgroup.WithContext(ctx)
	ingressSrv := httpserve.New(in, log)
	ingressSrv.WriteTimeout = cfg.PublishTimeout + 15*time.Second
	g.Go(func() error { return httpserve.Serve(gctx, ingressLn, ingressSrv, 10*time.Second, log) })
	g.Go(func() error {
		return httpserve.Serve(gctx, fetcherLn, httpserve.New(svc.API, log), 10*time.Second, log)
	})
	g.Go(func() error { return svc.Fetcher.Run(gctx) })
	if demo != nil {
		g.Go(func() error { return demo.Run(gctx, o.Out, addrs, svc.Catalog) })
	}
	if o.OnReady != nil {
		o.OnReady(addrs)
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	log.Info("stopped")
	fmt.Fprintln(o.Out, "veo4k stopped; unfinished downloads resume at the next start")
	return nil
}

func printBanner(w io.Writer, a Addrs, cfg config.Config) {
	fmt.Fprintf(w, "veo4k standalone\n")
	fmt.Fprintf(w, "  callbacks: POST http://%s/v1/callbacks/4k/{taskId}\n", hostPort(a.Ingress))
	fmt.Fprintf(w, "  catalog:   GET  http://%s/v1/videos\n", hostPort(a.Fetcher))
	if a.NATS != "" {
		fmt.Fprintf(w, "  events:    %s  (subjects veo4k.videos.>)\n", a.NATS)
	}
	fmt.Fprintf(w, "  data:      %s\n", cfg.DataDir)
	if len(cfg.HMACKeys) == 0 {
		fmt.Fprintf(w, "  warning:   no VEO4K_WEBHOOK_HMAC_KEY set: unsigned callbacks are accepted\n")
	}
}

// hostPort turns a listener address like [::]:8080 into one a user can paste.
func hostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
