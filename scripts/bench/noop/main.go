// Command noop is the ingress benchmark's baseline: an Echo server of the
// same Echo version as veo4k's ingress, on the same callback routes, that
// reads the body and answers the same JSON as a stored callback, doing
// nothing else (no checks, no signature, no NATS). scripts/bench.sh runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
)

// answer is the ingress's 200 body, reproduced byte for byte.
type answer struct {
	Status    string `json:"status"`
	TaskID    string `json:"taskId"`
	Duplicate bool   `json:"duplicate"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	handle := func(c echo.Context) error {
		if _, err := io.Copy(io.Discard, io.LimitReader(c.Request().Body, 1<<20+1)); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "reading body"})
		}
		return c.JSON(http.StatusOK, answer{Status: "accepted", TaskID: c.Param("taskId")})
	}
	e.POST("/v1/callbacks/4k", handle)
	e.POST("/v1/callbacks/4k/:taskId", handle)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	// The same server settings as the ingress (services/ingress).
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      18 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}
