package app

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/pkg/config"
)

// startNATS runs the embedded NATS server with JetStream storing under
// dataDir/nats. With listen "off" it accepts in-process connections only;
// otherwise it also listens there for local programs (e.g. the nats CLI).
func startNATS(dataDir, listen string) (*server.Server, error) {
	if listen == config.NATSListenOff {
		listen = ""
	}
	opts := &server.Options{
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		NoSigs:     true,
		NoLog:      true,
		DontListen: listen == "",
	}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("VEO4K_NATS_LISTEN %q: %w", listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("VEO4K_NATS_LISTEN %q: bad port", listen)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
		// Fail with a clear message when the port is taken, instead of the
		// server's own retry loop.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cannot listen on %s (another NATS server? set VEO4K_NATS_LISTEN to another address, or to off to keep NATS in-process): %w", listen, err)
		}
		ln.Close()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("creating embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not start within 10s (is %s writable?)", opts.StoreDir)
	}
	return srv, nil
}

// connectNATS connects in-process to the embedded server.
func connectNATS(srv *server.Server, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect("", nats.Name(name), nats.InProcessServer(srv))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to embedded NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening jetstream: %w", err)
	}
	return nc, js, nil
}
