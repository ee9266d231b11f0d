// Command standalone runs all of veo4k in one process: an embedded NATS
// server with JetStream, the ingress on :8080 and the fetcher with its catalog
// API on :8081, with SQLite and files under ./data. It is the default for a
// new user; with -demo it also starts the provider simulator and sends it a
// few callbacks so the user sees 4K videos land.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/veo4k/veo4k/services/standalone/internal/app"
)

func main() {
	demo := flag.Bool("demo", false, "also start the provider simulator and send it a few callbacks")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Main(ctx, os.Environ(), app.Options{Demo: *demo, Out: os.Stdout}); err != nil {
		fmt.Fprintln(os.Stderr, "veo4k:", err)
		os.Exit(1)
	}
}
