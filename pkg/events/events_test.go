package events_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t, ""))
	if err := stream.Ensure(t.Context(), js, stream.VideosConfig(stream.Options{Memory: true})); err != nil {
		t.Fatal(err)
	}
	return js
}

// recorder collects what handlers receive.
type recorder struct {
	mu        sync.Mutex
	cataloged []string
	failed    []string
	calls     int
}

func (r *recorder) snapshot() (c, f []string, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.cataloged...), append([]string(nil), r.failed...), r.calls
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishSubscribeDeduplicates(t *testing.T) {
	t.Parallel()
	js := setup(t)
	pub := events.NewPublisher(js)
	ctx := t.Context()
	// The same event published twice (a re-publish after a crash) and two
	// failure outcomes of another entry.
	for range 2 {
		if err := pub.Cataloged(ctx, &veo4kv1.VideoCataloged{TaskId: "a", Index: 1, Is4K: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []veo4kv1.FailureStatus{veo4kv1.FailureStatus_FAILURE_STATUS_UNAVAILABLE, veo4kv1.FailureStatus_FAILURE_STATUS_FAILED} {
		if err := pub.Failed(ctx, &veo4kv1.VideoFailed{TaskId: "b", Status: s, Reason: s.String()}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	sub, err := events.Subscribe(ctx, js, "t1", events.Handlers{
		Cataloged: func(_ context.Context, ev *veo4kv1.VideoCataloged) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.cataloged = append(rec.cataloged, fmt.Sprintf("%s/%d", ev.GetTaskId(), ev.GetIndex()))
			return nil
		},
		Failed: func(_ context.Context, ev *veo4kv1.VideoFailed) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.failed = append(rec.failed, ev.GetReason())
			return nil
		},
	}, events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	waitUntil(t, func() bool { c, f, _ := rec.snapshot(); return len(c) == 1 && len(f) == 2 })
	if c, _, _ := rec.snapshot(); c[0] != "a/1" {
		t.Errorf("cataloged %v, want [a/1]", c)
	}
	info, err := js.Stream(ctx, stream.Videos)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != 3 {
		t.Errorf("stream holds %d events, want 3 (the re-publish absorbed)", got)
	}
}

func TestHandlerErrorRedelivers(t *testing.T) {
	t.Parallel()
	js := setup(t)
	if err := events.NewPublisher(js).Cataloged(t.Context(), &veo4kv1.VideoCataloged{TaskId: "retry"}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var reported []error
	sub, err := events.Subscribe(t.Context(), js, "t2", events.Handlers{
		Cataloged: func(context.Context, *veo4kv1.VideoCataloged) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.calls++
			if rec.calls == 1 {
				return errors.New("database down")
			}
			rec.cataloged = append(rec.cataloged, "ok")
			return nil
		},
	}, events.Options{RetryDelay: 50 * time.Millisecond, OnError: func(_ string, err error) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		reported = append(reported, err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	waitUntil(t, func() bool { c, _, _ := rec.snapshot(); return len(c) == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.calls != 2 || len(reported) != 1 {
		t.Errorf("%d calls and %d reported errors, want 2 and 1", rec.calls, len(reported))
	}
}

func TestUndecodableEventIsTerminated(t *testing.T) {
	t.Parallel()
	js := setup(t)
	msg := &nats.Msg{Subject: stream.CatalogedSubject("bad", 0), Data: []byte{0xff, 0xff}, Header: nats.Header{}}
	msg.Header.Set(events.HeaderType, events.TypeCataloged)
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 4)
	sub, err := events.Subscribe(t.Context(), js, "t3", events.Handlers{
		Cataloged: func(context.Context, *veo4kv1.VideoCataloged) error {
			t.Error("handler called for an undecodable event")
			return nil
		},
	}, events.Options{RetryDelay: 10 * time.Millisecond, OnError: func(_ string, err error) { errc <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("nil error reported")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("undecodable event not reported")
	}
	cons, err := js.Consumer(t.Context(), stream.Videos, "t3")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if len(errc) != 0 {
		t.Errorf("the undecodable event was delivered again")
	}
}

func TestSubscribeNeedsAHandler(t *testing.T) {
	t.Parallel()
	if _, err := events.Subscribe(t.Context(), nil, "x", events.Handlers{}, events.Options{}); err == nil {
		t.Fatal("Subscribe without handlers succeeded")
	}
}

// Example shows another service receiving veo4k's completion events with its
// own durable consumer. (A real service connects to the NATS URL veo4k uses;
// here an in-process server stands in.)
func Example() {
	dir, _ := os.MkdirTemp("", "events-example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(5 * time.Second)
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	_ = stream.Ensure(ctx, js, stream.VideosConfig(stream.Options{}))
	// What veo4k's fetcher publishes when an entry becomes ready:
	_ = events.NewPublisher(js).Cataloged(ctx, &veo4kv1.VideoCataloged{TaskId: "veo_task_abc", Is4K: true,
		Files: []*veo4kv1.File{{Name: "video-0.mp4", Width: 3840, Height: 2160}}})

	got := make(chan *veo4kv1.VideoCataloged, 1)
	sub, err := events.Subscribe(ctx, js, "thumbnailer", events.Handlers{
		Cataloged: func(_ context.Context, ev *veo4kv1.VideoCataloged) error {
			got <- ev
			return nil // acknowledged; an error would redeliver it later
		},
	}, events.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Stop()
	ev := <-got
	f := ev.GetFiles()[0]
	fmt.Printf("%s/%d ready: %s %dx%d 4K=%v\n", ev.GetTaskId(), ev.GetIndex(), f.GetName(), f.GetWidth(), f.GetHeight(), ev.GetIs4K())
	// Output: veo_task_abc/0 ready: video-0.mp4 3840x2160 4K=true
}
