package fetcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/catalogapi"
	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/download"
	"github.com/veo4k/veo4k/pkg/storage"
	"github.com/veo4k/veo4k/pkg/stream"
)

// ServiceConfig is what a fetcher process needs: the fetcher service and the
// standalone build theirs from the same environment variables.
type ServiceConfig struct {
	DataDir    string
	CatalogDSN string // empty: SQLite file catalog.db in DataDir
	Download   download.Config
	Fetcher    Config
	Streams    stream.Options
}

// Service is a fetcher with its catalog, storage and HTTP API, ready to run.
type Service struct {
	Fetcher *Fetcher
	Catalog catalog.Catalog
	API     http.Handler
	js      jetstream.JetStream
	streams stream.Options
}

// OpenService opens the catalog and storage and assembles the fetcher and
// its API. The caller runs Start and closes the Service.
func OpenService(ctx context.Context, cfg ServiceConfig, nc *nats.Conn, js jetstream.JetStream, log *zap.Logger, reg *prometheus.Registry) (*Service, error) {
	store, err := storage.OpenLocal(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("opening storage: %w", err)
	}
	dsn := cfg.CatalogDSN
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "catalog.db")
	}
	cat, err := catalog.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening catalog: %w", err)
	}
	dl, err := download.New(cfg.Download)
	if err != nil {
		_ = cat.Close()
		return nil, fmt.Errorf("configuring downloads: %w", err)
	}
	f := New(cfg.Fetcher, js, cat, store, dl, log, NewMetrics(reg))
	api := catalogapi.New(catalogapi.Config{
		Catalog:     cat,
		Storage:     store,
		DeadLetters: NewDeadLetters(js, cat),
		Ready: func(ctx context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected to NATS")
			}
			return cat.Ping(ctx)
		},
		Gatherer: reg,
		Log:      log,
	})
	return &Service{Fetcher: f, Catalog: cat, API: api, js: js, streams: cfg.Streams}, nil
}

// StreamConfigs are the streams the fetcher reads and writes; the caller
// ensures them (natsconn.EnsureStreams) before Run.
func (s *Service) StreamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		stream.CallbacksConfig(s.streams), stream.VideosConfig(s.streams), stream.DeadLettersConfig(s.streams),
	}
}

// ServiceConfigFrom maps the environment's configuration (pkg/config) onto a
// fetcher process's.
func ServiceConfigFrom(c config.Config) ServiceConfig {
	return ServiceConfig{
		DataDir:    c.DataDir,
		CatalogDSN: c.CatalogDSN,
		Download: download.Config{
			AllowedHosts:         c.AllowedHosts,
			AllowPrivateNetworks: c.AllowPrivateNetworks,
			MaxBytes:             c.MaxFileBytes,
		},
		Fetcher: Config{Concurrency: c.FetchConcurrency, MaxDeliver: c.MaxDeliver, AckWait: c.AckWait},
		Streams: stream.Options{Replicas: c.StreamReplicas},
	}
}

// Close closes the catalog.
func (s *Service) Close() error { return s.Catalog.Close() }
