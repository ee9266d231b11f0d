package fetcher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/catalogapi"
	"github.com/veo4k/veo4k/pkg/stream"
)

// Headers of a dead-lettered callback.
const (
	headerReason   = "Veo4k-Reason"
	headerAttempts = "Veo4k-Attempts"
	headerFailedAt = "Veo4k-Failed-At"
)

// deadLetter keeps the raw callback of a failed entry in VEO4K_DEADLETTERS
// (one per entry, the latest wins) with why and when it failed.
func deadLetter(ctx context.Context, js jetstream.JetStream, k catalog.Key, raw []byte, reason string, attempts int, now time.Time) error {
	msg := &nats.Msg{Subject: stream.DeadLetterSubject(k.TaskID, k.Index), Data: raw, Header: nats.Header{}}
	msg.Header.Set(headerReason, reason)
	msg.Header.Set(headerAttempts, strconv.Itoa(attempts))
	msg.Header.Set(headerFailedAt, now.UTC().Format(time.RFC3339Nano))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("dead-lettering %s/%d: %w", k.TaskID, k.Index, err)
	}
	return nil
}

// DeadLetters lists and replays dead-lettered callbacks; it backs the
// fetcher API's /v1/deadletters endpoints.
type DeadLetters struct {
	js  jetstream.JetStream
	cat catalog.Catalog
}

// NewDeadLetters returns the dead-letter view over js and cat.
func NewDeadLetters(js jetstream.JetStream, cat catalog.Catalog) *DeadLetters {
	return &DeadLetters{js: js, cat: cat}
}

var _ catalogapi.DeadLetters = (*DeadLetters)(nil)

// List returns every dead-lettered entry.
func (d *DeadLetters) List(ctx context.Context) ([]catalogapi.DeadLetter, error) {
	s, err := d.js.Stream(ctx, stream.DeadLetters)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", stream.DeadLetters, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(stream.DeadLettersFilter))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", stream.DeadLetters, err)
	}
	out := make([]catalogapi.DeadLetter, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", subject, err)
		}
		out = append(out, describe(m))
	}
	return out, nil
}

func describe(m *jetstream.RawStreamMsg) catalogapi.DeadLetter {
	dl := catalogapi.DeadLetter{Reason: m.Header.Get(headerReason)}
	// veo4k.deadletters.<taskId>.<index>
	if parts := strings.Split(m.Subject, "."); len(parts) == 4 {
		dl.TaskID = parts[2]
		dl.Index, _ = strconv.Atoi(parts[3])
	}
	dl.Attempts, _ = strconv.Atoi(m.Header.Get(headerAttempts))
	dl.FailedAt, _ = time.Parse(time.RFC3339Nano, m.Header.Get(headerFailedAt))
	return dl
}

// Replay publishes the entry's dead-lettered callback again for the fetchers,
// sets the entry back to pending and removes the dead letter.
func (d *DeadLetters) Replay(ctx context.Context, k catalog.Key) error {
	s, err := d.js.Stream(ctx, stream.DeadLetters)
	if err != nil {
		return fmt.Errorf("opening %s: %w", stream.DeadLetters, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, stream.DeadLetterSubject(k.TaskID, k.Index))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("no dead letter for %s/%d: %w", k.TaskID, k.Index, catalog.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading dead letter: %w", err)
	}
	if _, err := d.cat.Update(ctx, k, func(e *catalog.Entry) error {
		e.To(catalog.Pending, "replayed from the dead letters")
		e.Attempts = 0
		return nil
	}); err != nil {
		return fmt.Errorf("resetting entry: %w", err)
	}
	// The dead letter's sequence makes the replay subject unique, and the
	// Msg-Id makes a retried replay of the same dead letter a no-op.
	msg := &nats.Msg{Subject: stream.ReplaySubject(k.TaskID, k.Index, m.Sequence), Data: m.Data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "replay."+strconv.FormatUint(m.Sequence, 10))
	if _, err := d.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("republishing: %w", err)
	}
	if err := s.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("removing dead letter: %w", err)
	}
	return nil
}
