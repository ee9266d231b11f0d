// Command healthcheck is the probe baked into veo4k's scratch images (which
// have no shell or curl): "healthcheck URL" exits 0 when URL answers 2xx
// within two seconds, else 1. Compose and Kubernetes exec probes run it as
// ["/usr/local/bin/healthcheck", "http://127.0.0.1:8080/healthz"].
package main

import (
	"fmt"
	"os"

	"github.com/veo4k/veo4k/pkg/healthcheck"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		os.Exit(2)
	}
	os.Exit(healthcheck.Run(os.Args[1]))
}
