// Package natstest runs a real, in-process NATS server with JetStream for
// tests, the way nats.go's own tests do: a random port and a store directory
// of the test's own, so tests run in parallel without sharing state.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a running in-process NATS server.
type Server struct {
	*server.Server
	opts server.Options
}

// Start runs a JetStream-enabled server storing under dir (t.TempDir() when
// dir is empty) and shuts it down when the test ends.
func Start(tb testing.TB, dir string) *Server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	opts := server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
	s := &Server{opts: opts}
	s.start(tb)
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func (s *Server) start(tb testing.TB) {
	tb.Helper()
	srv, err := server.NewServer(&s.opts)
	if err != nil {
		tb.Fatalf("natstest: creating server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("natstest: server not ready within 10s")
	}
	s.Server = srv
	// Keep the port across restarts so clients reconnect to the same URL.
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port
}

// Restart starts the server again on the same port and store directory after
// Shutdown, as a restarted NATS process would come back.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Shutdown()
	s.WaitForShutdown()
	s.start(tb)
}

// Connect opens a client connection that reconnects forever (as the services'
// connections do) and closes it when the test ends.
func Connect(tb testing.TB, s *Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		tb.Fatalf("natstest: connecting: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}
