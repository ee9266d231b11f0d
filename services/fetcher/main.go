// Command fetcher consumes veo4k's stored callbacks, downloads and verifies
// the 4K videos and thumbnails, catalogues them, publishes completion events
// and serves the catalog API (DESIGN.md, "Fetcher HTTP contract").
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/veo4k/veo4k/services/fetcher/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Main(ctx, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "fetcher:", err)
		os.Exit(1)
	}
}
