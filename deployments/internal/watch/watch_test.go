package watch

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// TestRecorderCountsAndProblems: the recorder counts every delivered event
// per entry, duplicates that slipped into the stream included, and Problems
// names exactly what breaks "one VideoCataloged per ready entry, one
// VideoFailed per failed one".
func TestRecorderCountsAndProblems(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t, t.TempDir())
	_, js := natstest.Connect(t, srv)
	if err := stream.Ensure(ctx, js, stream.VideosConfig(stream.Options{})); err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(js)
	for _, id := range []string{"a", "b"} {
		if err := pub.Cataloged(ctx, &veo4kv1.VideoCataloged{TaskId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Failed(ctx, &veo4kv1.VideoFailed{TaskId: "c", Status: veo4kv1.FailureStatus_FAILURE_STATUS_FAILED, Reason: "gone"}); err != nil {
		t.Fatal(err)
	}
	// A duplicate the Nats-Msg-Id did not absorb (another id): a bug the
	// recorder must expose.
	data, err := proto.Marshal(&veo4kv1.VideoCataloged{TaskId: "b"})
	if err != nil {
		t.Fatal(err)
	}
	dup := &nats.Msg{Subject: stream.CatalogedSubject("b", 0), Data: data, Header: nats.Header{}}
	dup.Header.Set(events.HeaderType, events.TypeCataloged)
	if _, err := js.PublishMsg(ctx, dup); err != nil {
		t.Fatal(err)
	}

	rec, err := Start(ctx, js, "watch-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Stop(context.Background()) })
	if _, err := rec.Wait(ctx, func(c Counts) bool { return c.Cataloged[Key{TaskID: "b"}] == 2 }); err != nil {
		t.Fatal(err)
	}
	if err := rec.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c := rec.Counts()

	tests := []struct {
		name              string
		ready, failed     []Key
		wantProblemsAbout []string
	}{
		{"as expected", []Key{{TaskID: "a"}}, []Key{{TaskID: "c"}}, nil},
		{"duplicate event", []Key{{TaskID: "b"}}, nil, []string{"b/0: 2 VideoCataloged, want 1"}},
		{"missing event", []Key{{TaskID: "z"}}, nil, []string{"z/0: 0 VideoCataloged, want 1"}},
		{"failed instead of ready", []Key{{TaskID: "c"}}, nil,
			[]string{"c/0: 0 VideoCataloged, want 1", `c/0: 1 VideoFailed, want 0 (reasons ["gone"])`}},
		{"ready instead of failed", nil, []Key{{TaskID: "a"}},
			[]string{"a/0: 0 VideoFailed, want 1", "a/0: 1 VideoCataloged, want 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Problems(tt.ready, tt.failed)
			want := slices.Clone(tt.wantProblemsAbout)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Problems = %q, want %q", got, want)
			}
		})
	}
}
