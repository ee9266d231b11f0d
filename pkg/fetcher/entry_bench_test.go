package fetcher_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/veo4k/veo4k/pkg/download"
	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/fetcher"
	"github.com/veo4k/veo4k/pkg/providersim"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// BenchmarkEntry is the fetcher end to end, per entry: b.N callbacks (a
// 1 MiB MP4 and its thumbnail each, from an in-process providersim on
// loopback) are stored in file-backed JetStream, then a fetcher with 4
// workers downloads, verifies, catalogues (SQLite file) and announces them;
// the clock stops when the last VideoCataloged has been received.
func BenchmarkEntry(b *testing.B) {
	w := newWorld(b, stream.Options{})
	js, sim, cat, store, ctx := w.js, w.sim, w.cat, w.store, b.Context()
	dl, err := download.New(download.Config{AllowedHosts: []string{"127.0.0.1"}, AllowPrivateNetworks: true})
	if err != nil {
		b.Fatal(err)
	}

	// The backlog, outside the clock.
	for i := range b.N {
		task, err := sim.AddTask(providersim.TaskSpec{TaskID: "bench_" + strconv.Itoa(i), Callback: providersim.CallbackNone})
		if err != nil {
			b.Fatal(err)
		}
		data, err := proto.Marshal(&veo4kv1.CallbackReceived{TaskId: task.TaskID, Code: 200, Msg: "ok",
			VideoUrls: task.VideoURLs, ImageUrls: task.ImageURLs, ReceivedAt: timestamppb.Now()})
		if err != nil {
			b.Fatal(err)
		}
		msg := &nats.Msg{Subject: stream.CallbackSubject(task.TaskID, 0, stream.Success), Data: data}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	var landed atomic.Int64
	done := make(chan struct{})
	sub, err := events.Subscribe(ctx, js, "bench", events.Handlers{
		Cataloged: func(context.Context, *veo4kv1.VideoCataloged) error {
			if landed.Add(1) == int64(b.N) {
				close(done)
			}
			return nil
		},
		Failed: func(_ context.Context, ev *veo4kv1.VideoFailed) error {
			b.Errorf("entry %s failed: %s", ev.GetTaskId(), ev.GetReason())
			return nil
		},
	}, events.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sub.Stop)

	f := fetcher.New(fetcher.Config{Concurrency: 4}, js, cat, store, dl, zap.NewNop(), nil)
	b.ReportAllocs()
	b.ResetTimer()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- f.Run(runCtx) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d entries catalogued in 5 minutes", landed.Load(), b.N)
	}
	b.StopTimer()
	stop()
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
