package stream_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/stream"
)

// TestCallbacksGuard checks the topology's promise on a real server: one
// stored message per entry and outcome for the whole retention, whatever the
// Msg-Id window; a success after a failure is stored; a replay is stored.
func TestCallbacksGuard(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t, ""))
	ctx := t.Context()
	cfg := stream.CallbacksConfig(stream.Options{})
	cfg.Duplicates = 0 // server default; the guard must not depend on it
	if err := stream.Ensure(ctx, js, cfg, stream.VideosConfig(stream.Options{}), stream.DeadLettersConfig(stream.Options{})); err != nil {
		t.Fatal(err)
	}
	// Ensure is idempotent.
	if err := stream.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	pub := func(subject, id string) error {
		msg := &nats.Msg{Subject: subject, Data: []byte("x"), Header: nats.Header{}}
		if id != "" {
			msg.Header.Set(jetstream.MsgIDHeader, id)
		}
		_, err := js.PublishMsg(ctx, msg)
		return err
	}
	steps := []struct {
		name    string
		subject string
		stored  bool
	}{
		{"failure", stream.CallbackSubject("t1", 0, stream.Failure), true},
		{"success after failure", stream.CallbackSubject("t1", 0, stream.Success), true},
		{"repeated success, new Msg-Id", stream.CallbackSubject("t1", 0, stream.Success), false},
		{"repeated failure", stream.CallbackSubject("t1", 0, stream.Failure), false},
		{"other index", stream.CallbackSubject("t1", 1, stream.Success), true},
		{"replay", stream.ReplaySubject("t1", 0, 42), true},
	}
	for i, s := range steps {
		err := pub(s.subject, s.name+string(rune('a'+i)))
		var apiErr *jetstream.APIError
		switch {
		case s.stored && err != nil:
			t.Errorf("%s: refused: %v", s.name, err)
		case !s.stored && (err == nil || !errors.As(err, &apiErr)):
			t.Errorf("%s: stored (err %v), want refused by the per-subject guard", s.name, err)
		}
	}
	st, err := js.Stream(ctx, stream.Callbacks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Msgs, uint64(4); got != want {
		t.Errorf("stream holds %d messages, want %d", got, want)
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{stream.CallbackSubject("veo_task-1", 3, stream.Success), "veo4k.callbacks.4k.veo_task-1.3.success"},
		{stream.CallbackMsgID("veo_task-1", 3, stream.Failure), "veo_task-1.3.failure"},
		{stream.CatalogedSubject("a", 0), "veo4k.videos.cataloged.a.0"},
		{stream.FailedSubject("a", 0), "veo4k.videos.failed.a.0"},
		{stream.DeadLetterSubject("a", 2), "veo4k.deadletters.a.2"},
		{stream.ReplaySubject("a", 0, 9), "veo4k.callbacks.4k.a.0.replay.9"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
