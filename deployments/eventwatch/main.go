// Command eventwatch is the completion-event check of scripts/compose-check.sh:
// it subscribes to veo4k's events through pkg/events, as another service
// would, and exits 0 once every named entry has exactly one VideoCataloged
// (and no VideoFailed), or 1 with the reasons when the timeout passes first.
//
//	go run ./deployments/eventwatch -nats nats://127.0.0.1:4222 -ready demo-1,demo-2 -timeout 2m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/deployments/internal/watch"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "eventwatch:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("eventwatch", flag.ContinueOnError)
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS URL")
	ready := fs.String("ready", "", "comma-separated task ids (index 0) that must each have exactly one VideoCataloged")
	failed := fs.String("failed", "", "comma-separated task ids (index 0) that must each have exactly one VideoFailed")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wantReady, wantFailed := keys(*ready), keys(*failed)
	if len(wantReady)+len(wantFailed) == 0 {
		return errors.New("nothing to wait for: give -ready and/or -failed")
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	nc, err := nats.Connect(*url, nats.Name("veo4k-eventwatch"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening jetstream: %w", err)
	}
	rec, err := watch.Start(ctx, js, fmt.Sprintf("eventwatch-%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = rec.Stop(sctx)
	}()

	c, werr := rec.Wait(ctx, func(c watch.Counts) bool {
		for _, k := range wantReady {
			if c.Cataloged[k] == 0 {
				return false
			}
		}
		for _, k := range wantFailed {
			if c.Failed[k] == 0 {
				return false
			}
		}
		return true
	})
	// Let every event stored so far arrive, duplicates included, then judge.
	if werr == nil {
		werr = rec.Drain(ctx)
		c = rec.Counts()
	}
	problems := c.Problems(wantReady, wantFailed)
	if werr != nil && len(problems) == 0 {
		problems = append(problems, werr.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("events not as expected:\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Printf("eventwatch: %d VideoCataloged and %d VideoFailed events, exactly one per entry\n", len(wantReady), len(wantFailed))
	return nil
}

func keys(list string) []watch.Key {
	var out []watch.Key
	for _, id := range strings.Split(list, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, watch.Key{TaskID: id})
		}
	}
	return out
}
