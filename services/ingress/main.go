// Command ingress receives the provider's "4K video ready" callbacks and
// stores each accepted one in NATS JetStream (DESIGN.md, "Ingress HTTP
// contract"). Its settings come from the environment (DESIGN.md,
// "Configuration").
package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/logging"
	"github.com/veo4k/veo4k/services/ingress/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := logging.New(cmp.Or(os.Getenv("VEO4K_LOG_LEVEL"), "info"), "ingress")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingress:", err)
		os.Exit(1)
	}
	if err := app.Run(ctx, log, os.Environ()); err != nil {
		log.Error("ingress stopped", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}
