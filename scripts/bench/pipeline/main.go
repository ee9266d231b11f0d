// Command pipeline drives callbacks through a running veo4k and measures the
// whole pipeline: it creates tasks at providersim (video and thumbnail files,
// optionally with a per-connection bandwidth cap), posts each task's signed
// success callback to the ingress, and waits for every VideoCataloged event
// on VEO4K_VIDEOS (pkg/events). It prints one JSON line.
//
// Two modes:
//
//   - stream (default): callbacks are sent while the fetcher runs; reports
//     the time from the first callback to the last event, entries/s, and the
//     latency from each callback's 200 to its VideoCataloged.
//   - backlog (-then "command"): all callbacks are accepted first, then the
//     command (e.g. one or two fetcher processes) is started in its own
//     process group; reports the time from that start to the last event, and
//     stops the command with SIGTERM at the end.
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
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/signature"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// Result is one pipeline run's figures.
type Result struct {
	Mode      string  `json:"mode"`
	Count     int     `json:"count"`
	Cataloged int     `json:"cataloged"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"`
	PerSec    float64 `json:"entries_per_s"`
	P50ms     float64 `json:"p50_ms,omitempty"`
	P99ms     float64 `json:"p99_ms,omitempty"`
	// SendSeconds is how long posting every callback took (all 200).
	SendSeconds float64 `json:"send_seconds"`
	Non200      int64   `json:"non200"`
}

type options struct {
	sim, ingress, natsURL, key, prefix, then string
	count, senders, creators                 int
	videoBytes, rate                         int64
	timeout                                  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.sim, "sim", "http://127.0.0.1:18092", "providersim base URL")
	flag.StringVar(&o.ingress, "ingress", "http://127.0.0.1:18080/v1/callbacks/4k", "callback base URL; /{taskId} is appended")
	flag.StringVar(&o.natsURL, "nats", "nats://127.0.0.1:14222", "NATS URL of the veo4k under test")
	flag.StringVar(&o.key, "key", "", "HMAC signing key (empty: unsigned)")
	flag.StringVar(&o.prefix, "prefix", "pipe", "task id prefix, unique per run")
	flag.StringVar(&o.then, "then", "", "backlog mode: command (sh -c) started after every callback is accepted")
	flag.IntVar(&o.count, "count", 10000, "callbacks (entries)")
	flag.IntVar(&o.senders, "senders", 16, "concurrent callback senders")
	flag.IntVar(&o.creators, "creators", 8, "concurrent task creations at providersim")
	flag.Int64Var(&o.videoBytes, "video-bytes", 1<<20, "size of each video")
	flag.Int64Var(&o.rate, "rate", 0, "per-connection bandwidth cap of the provider, bytes/s (0: none)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

// task is one simulated task and what happened to it.
type task struct {
	id               string
	video, image     []string
	accepted, landed atomic.Int64 // unix nanoseconds
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: max(o.senders, o.creators)}, Timeout: 30 * time.Second}

	tasks := make([]*task, o.count)
	byID := make(map[string]*task, o.count)
	for i := range tasks {
		tasks[i] = &task{id: o.prefix + "_" + strconv.Itoa(i)}
		byID[tasks[i].id] = tasks[i]
	}
	if err := parallel(ctx, tasks, o.creators, func(t *task) error { return create(ctx, client, o, t) }); err != nil {
		return err
	}

	nc, err := nats.Connect(o.natsURL, nats.Name("veo4k-bench-pipeline"))
	if err != nil {
		return fmt.Errorf("connecting to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening jetstream: %w", err)
	}
	if err := stream.Ensure(ctx, js, stream.VideosConfig(stream.Options{})); err != nil {
		return err
	}
	var cataloged, failed atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	settle := func() {
		if int(cataloged.Load()+failed.Load()) >= o.count {
			once.Do(func() { close(done) })
		}
	}
	sub, err := events.Subscribe(ctx, js, "bench-"+o.prefix, events.Handlers{
		Cataloged: func(_ context.Context, ev *veo4kv1.VideoCataloged) error {
			if t := byID[ev.GetTaskId()]; t != nil && t.landed.CompareAndSwap(0, time.Now().UnixNano()) {
				cataloged.Add(1)
				settle()
			}
			return nil
		},
		Failed: func(_ context.Context, ev *veo4kv1.VideoFailed) error {
			if t := byID[ev.GetTaskId()]; t != nil && t.landed.CompareAndSwap(0, -1) {
				failed.Add(1)
				fmt.Fprintf(os.Stderr, "pipeline: %s failed: %s\n", ev.GetTaskId(), ev.GetReason())
				settle()
			}
			return nil
		},
	}, events.Options{})
	if err != nil {
		return err
	}
	defer sub.Stop()

	var non200 atomic.Int64
	start := time.Now()
	ts := strconv.FormatInt(start.Unix(), 10)
	if err := parallel(ctx, tasks, o.senders, func(t *task) error { return send(ctx, client, o, t, ts, &non200) }); err != nil {
		return err
	}
	sent := time.Since(start)

	mode := "stream"
	if o.then != "" {
		mode = "backlog"
		cmd := exec.Command("sh", "-c", o.then)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		start = time.Now()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %q: %w", o.then, err)
		}
		defer func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			_ = cmd.Wait()
		}()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("timed out: %d cataloged, %d failed of %d", cataloged.Load(), failed.Load(), o.count)
	}
	var last int64
	var lat []time.Duration
	for _, t := range tasks {
		l := t.landed.Load()
		if l <= 0 {
			continue
		}
		last = max(last, l)
		if mode == "stream" {
			lat = append(lat, time.Duration(l-t.accepted.Load()))
		}
	}
	secs := time.Unix(0, last).Sub(start).Seconds()
	res := Result{
		Mode: mode, Count: o.count, Cataloged: int(cataloged.Load()), Failed: int(failed.Load()),
		Seconds: secs, PerSec: float64(cataloged.Load()) / secs, SendSeconds: sent.Seconds(), Non200: non200.Load(),
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50ms = quantileMS(lat, 0.50)
		res.P99ms = quantileMS(lat, 0.99)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func quantileMS(sorted []time.Duration, q float64) float64 {
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

// parallel runs fn on every task with n goroutines, stopping at the first error.
func parallel(ctx context.Context, tasks []*task, n int, fn func(*task) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(tasks) {
					return
				}
				if err := fn(tasks[i]); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// create registers the task at providersim; its callback is sent by us.
func create(ctx context.Context, c *http.Client, o options, t *task) error {
	spec := map[string]any{"taskId": t.id, "videoBytes": o.videoBytes, "callback": "none"}
	if o.rate > 0 {
		spec["faults"] = map[string]any{"rateBytesPerSec": o.rate}
	}
	body, _ := json.Marshal(spec)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.sim+"/sim/tasks", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("creating task %s: %w", t.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("creating task %s: %s: %s", t.id, resp.Status, b)
	}
	var got struct {
		VideoURLs []string `json:"videoUrls"`
		ImageURLs []string `json:"imageUrls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return fmt.Errorf("reading task %s: %w", t.id, err)
	}
	t.video, t.image = got.VideoURLs, got.ImageURLs
	return nil
}

// send posts the task's signed success callback until it is answered 200.
func send(ctx context.Context, c *http.Client, o options, t *task, ts string, non200 *atomic.Int64) error {
	body, _ := json.Marshal(map[string]any{
		"code": 200, "msg": "4K Video generated successfully.",
		"data": map[string]any{"taskId": t.id, "info": map[string]any{"resultUrls": t.video, "imageUrls": t.image}},
	})
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.ingress+"/"+t.id, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if o.key != "" {
			req.Header.Set("X-Webhook-Timestamp", ts)
			req.Header.Set("X-Webhook-Signature", signature.Sign([]byte(o.key), t.id, ts))
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("posting callback %s: %w", t.id, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.accepted.Store(time.Now().UnixNano())
			return nil
		}
		non200.Add(1)
		if resp.StatusCode != http.StatusServiceUnavailable || attempt >= 5 {
			return errors.New("callback " + t.id + ": " + resp.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
