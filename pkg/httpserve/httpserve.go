// Package httpserve runs veo4k's HTTP servers: it listens with an error that
// says what to change when the port is taken, and serves until the context
// ends, then shuts down within a bounded time — in-flight requests finish,
// new ones are refused.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Listen opens addr for the service named what; envVar names the setting
// that moves it.
func Listen(addr, what, envVar string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s cannot listen on %s: the port is already in use by another program (set %s to another address): %w", what, addr, envVar, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s cannot listen on %s (set %s): %w", what, addr, envVar, err)
	}
	return ln, nil
}

// New returns a server for h with timeouts that suit small JSON requests and
// long file downloads alike: headers must arrive quickly, and no write
// timeout cuts a multi-GiB response short. Callers may tighten it.
func New(h http.Handler, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}

// Serve serves srv on ln until ctx ends, then gives in-flight requests up to
// grace to finish.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server, grace time.Duration, log *zap.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", zap.String("addr", ln.Addr().String()), zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down %s: %w", ln.Addr(), err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", ln.Addr(), err)
	}
	return nil
}
