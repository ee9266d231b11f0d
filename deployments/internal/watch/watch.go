// Package watch records veo4k's completion events as another service would
// see them: it subscribes through pkg/events with its own durable consumer
// and counts, per entry, every VideoCataloged and VideoFailed delivered. The
// compose check and the system tests assert on these counts.
package watch

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// Key names one catalog entry.
type Key struct {
	TaskID string
	Index  int
}

// Recorder counts the events delivered to its consumer.
type Recorder struct {
	js      jetstream.JetStream
	durable string
	sub     *events.Subscription

	mu        sync.Mutex
	changed   chan struct{}
	cataloged map[Key][]*veo4kv1.VideoCataloged
	failed    map[Key][]*veo4kv1.VideoFailed
	errs      []string
}

// Start subscribes to VEO4K_VIDEOS from its beginning under the durable
// consumer name durable, which should be unique to this recorder.
func Start(ctx context.Context, js jetstream.JetStream, durable string) (*Recorder, error) {
	r := &Recorder{
		js:        js,
		durable:   durable,
		changed:   make(chan struct{}),
		cataloged: make(map[Key][]*veo4kv1.VideoCataloged),
		failed:    make(map[Key][]*veo4kv1.VideoFailed),
	}
	sub, err := events.Subscribe(ctx, js, durable, events.Handlers{
		Cataloged: func(_ context.Context, ev *veo4kv1.VideoCataloged) error {
			k := Key{ev.GetTaskId(), int(ev.GetIndex())}
			r.record(func() { r.cataloged[k] = append(r.cataloged[k], ev) })
			return nil
		},
		Failed: func(_ context.Context, ev *veo4kv1.VideoFailed) error {
			k := Key{ev.GetTaskId(), int(ev.GetIndex())}
			r.record(func() { r.failed[k] = append(r.failed[k], ev) })
			return nil
		},
	}, events.Options{OnError: func(subject string, err error) {
		r.record(func() { r.errs = append(r.errs, subject+": "+err.Error()) })
	}})
	if err != nil {
		return nil, fmt.Errorf("subscribing to events: %w", err)
	}
	r.sub = sub
	return r, nil
}

func (r *Recorder) record(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
}

// Stop ends the subscription and deletes its durable consumer.
func (r *Recorder) Stop(ctx context.Context) error {
	r.sub.Stop()
	if err := r.js.DeleteConsumer(ctx, stream.Videos, r.durable); err != nil {
		return fmt.Errorf("deleting consumer %s: %w", r.durable, err)
	}
	return nil
}

// Drain waits until every event stored so far has been delivered and
// acknowledged (the consumer has nothing pending), so that a snapshot taken
// afterwards also shows any duplicate already in the stream.
func (r *Recorder) Drain(ctx context.Context) error {
	for {
		info, err := r.js.Consumer(ctx, stream.Videos, r.durable)
		if err == nil {
			ci, ierr := info.Info(ctx)
			if ierr == nil && ci.NumPending == 0 && ci.NumAckPending == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("draining events: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Counts is a snapshot of what a Recorder received.
type Counts struct {
	// Cataloged and Failed count the events per entry.
	Cataloged map[Key]int
	Failed    map[Key]int
	// FailedReasons lists each entry's VideoFailed reasons in arrival order.
	FailedReasons map[Key][]string
	// Errors lists undecodable events and handler errors.
	Errors []string
}

// Counts returns a snapshot.
func (r *Recorder) Counts() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Counts{Cataloged: map[Key]int{}, Failed: map[Key]int{}, FailedReasons: map[Key][]string{},
		Errors: append([]string(nil), r.errs...)}
	for k, evs := range r.cataloged {
		c.Cataloged[k] = len(evs)
	}
	for k, evs := range r.failed {
		c.Failed[k] = len(evs)
		for _, ev := range evs {
			c.FailedReasons[k] = append(c.FailedReasons[k], ev.GetReason())
		}
	}
	return c
}

// Cataloged returns the VideoCataloged events received for k.
func (r *Recorder) Cataloged(k Key) []*veo4kv1.VideoCataloged {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*veo4kv1.VideoCataloged(nil), r.cataloged[k]...)
}

// Wait blocks until done reports true for a snapshot or ctx ends, and
// returns the last snapshot.
func (r *Recorder) Wait(ctx context.Context, done func(Counts) bool) (Counts, error) {
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		c := r.Counts()
		if done(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("waiting for events: %w", ctx.Err())
		case <-changed:
		}
	}
}

// Problems lists what is wrong with c for entries that should each have
// exactly one VideoCataloged (wantReady) or exactly one VideoFailed
// (wantFailed), and no event of the other kind; nil when all is well.
func (c Counts) Problems(wantReady, wantFailed []Key) []string {
	var out []string
	for _, k := range wantReady {
		if n := c.Cataloged[k]; n != 1 {
			out = append(out, fmt.Sprintf("%s/%d: %d VideoCataloged, want 1", k.TaskID, k.Index, n))
		}
		if n := c.Failed[k]; n != 0 {
			out = append(out, fmt.Sprintf("%s/%d: %d VideoFailed, want 0 (reasons %q)", k.TaskID, k.Index, n, c.FailedReasons[k]))
		}
	}
	for _, k := range wantFailed {
		if n := c.Failed[k]; n != 1 {
			out = append(out, fmt.Sprintf("%s/%d: %d VideoFailed, want 1", k.TaskID, k.Index, n))
		}
		if n := c.Cataloged[k]; n != 0 {
			out = append(out, fmt.Sprintf("%s/%d: %d VideoCataloged, want 0", k.TaskID, k.Index, n))
		}
	}
	out = append(out, c.Errors...)
	sort.Strings(out)
	return out
}
