// Package natsconn opens the NATS connection every veo4k service uses: it
// retries the first connect and reconnects forever, logging each change, so a
// service can start before NATS and survive NATS restarts.
package natsconn

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/stream"
)

// Connect connects to url (comma-separated for a cluster) as name.
func Connect(url, name string, log *zap.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
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

// EnsureStreams creates or updates the streams, retrying until it succeeds
// or ctx ends: NATS may still be starting.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, log *zap.Logger, cfgs ...jetstream.StreamConfig) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := stream.Ensure(actx, js, cfgs...)
		cancel()
		if err == nil {
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("waiting for JetStream", zap.Int("attempt", attempt), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensuring streams: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}
