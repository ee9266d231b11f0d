// Package natsconn opens the NATS connection every veo4k service uses: it
// retries the first connect and reconnects forever, logging each change, so a
// service can start before NATS and survive NATS restarts. It also ensures
// the streams (waiting for JetStream) and drains the connection at the end.
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

// DrainTimeout bounds the drain at shutdown.
const DrainTimeout = 5 * time.Second

// Connect connects to url (comma-separated for a cluster) as name.
func Connect(url, name string, log *zap.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.DrainTimeout(DrainTimeout),
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

// EnsureStreams creates or updates the streams, retrying with a growing pause
// until it succeeds or ctx ends: NATS may still be starting.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, log *zap.Logger, cfgs ...jetstream.StreamConfig) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := stream.Ensure(actx, js, cfgs...)
		cancel()
		if err == nil {
			log.Info("streams ready", zap.Int("streams", len(cfgs)))
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("waiting for JetStream", zap.Int("attempt", attempt), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensuring streams: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Drain flushes what the connection still holds (publishes, acks) and
// closes it, within DrainTimeout.
func Drain(nc *nats.Conn, log *zap.Logger) {
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
	case <-time.After(DrainTimeout + time.Second):
		log.Warn("nats drain did not finish in time; closing")
		nc.Close()
	}
}
