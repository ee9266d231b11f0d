// Command providersim runs the provider simulator (pkg/providersim) as a
// service: generated MP4/JPEG files, signed 4K callbacks, the provider's 4K
// and record-info API, and the /sim control API for scripting faults.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/veo4k/veo4k/services/providersim/internal/simserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := simserver.Main(ctx, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "providersim:", err)
		os.Exit(1)
	}
}
