// Command demo is the one-shot "demo" service of docker-compose.yml: it asks
// the provider simulator for a few 4K tasks (the simulator then posts their
// callbacks to the ingress), waits until the fetchers' catalog shows them
// ready, and prints what landed. It exits 0 when every task is ready.
//
//	demo -sim http://providersim:9090 -catalog http://fetcher:8081 -tasks 3
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type entry struct {
	TaskID  string `json:"taskId"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Files   []struct {
		Kind   string `json:"kind"`
		Name   string `json:"name"`
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	} `json:"files"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	sim := fs.String("sim", "http://providersim:9090", "provider simulator base URL")
	catalog := fs.String("catalog", "http://fetcher:8081", "fetcher catalog API base URL")
	tasks := fs.Int("tasks", 3, "how many tasks to simulate")
	size := fs.Int64("video-bytes", 2<<20, "size of each simulated 4K video")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for the videos")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	hc := &http.Client{Timeout: 30 * time.Second}

	run := time.Now().UTC().Format("20060102-150405")
	var ids []string
	for i := 1; i <= *tasks; i++ {
		id := fmt.Sprintf("demo-%s-%d", run, i)
		body, _ := json.Marshal(map[string]any{"taskId": id, "videoBytes": *size})
		resp, err := hc.Post(*sim+"/sim/tasks", "application/json", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("creating task %s: %w", id, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("creating task %s: simulator answered %d", id, resp.StatusCode)
		}
		fmt.Printf("asked the provider simulator for task %s; it calls back the ingress\n", id)
		ids = append(ids, id)
	}

	for _, id := range ids {
		e, err := waitReady(ctx, hc, *catalog+"/v1/videos/"+id)
		if err != nil {
			return fmt.Errorf("task %s: %w", id, err)
		}
		for _, f := range e.Files {
			fmt.Printf("%s: %s %s %dx%d %d bytes sha256 %s\n", id, f.Kind, f.Name, f.Width, f.Height, f.Bytes, f.SHA256)
		}
	}
	fmt.Printf("all %d videos downloaded, verified and catalogued; see %s/v1/videos\n", len(ids), *catalog)
	return nil
}

func waitReady(ctx context.Context, hc *http.Client, url string) (entry, error) {
	var last entry
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return last, err
		}
		if resp, err := hc.Do(req); err == nil {
			if resp.StatusCode == http.StatusOK {
				_ = json.NewDecoder(resp.Body).Decode(&last)
			}
			resp.Body.Close()
		}
		switch last.Status {
		case "ready":
			return last, nil
		case "failed", "unavailable":
			return last, fmt.Errorf("%s: %s", last.Status, last.Message)
		}
		select {
		case <-ctx.Done():
			return last, errors.Join(fmt.Errorf("not ready (status %q)", last.Status), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
