// Package events publishes and receives veo4k's completion events on the
// JetStream stream VEO4K_VIDEOS: VideoCataloged when an entry is ready,
// VideoFailed when it is unavailable or failed.
//
// Another Go service subscribes with its own durable consumer:
//
//	sub, err := events.Subscribe(ctx, js, "thumbnailer", events.Handlers{
//		Cataloged: func(ctx context.Context, ev *veo4kv1.VideoCataloged) error {
//			return process(ctx, ev.GetTaskId(), ev.GetFiles())
//		},
//	})
//
// A handler's error makes JetStream deliver the event again later; a nil
// return acknowledges it. Delivery is at least once: handlers should be
// idempotent (the task id and index identify the entry).
package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// HeaderType names the event's message type, so a consumer can decode
// without looking at the subject.
const HeaderType = "Veo4k-Event"

// The values of HeaderType.
const (
	TypeCataloged = "veo4k.v1.VideoCataloged"
	TypeFailed    = "veo4k.v1.VideoFailed"
)

// CatalogedMsgID and FailedMsgID are the deterministic Nats-Msg-Ids of the
// events: a re-publish after a crash is absorbed by the stream.
func CatalogedMsgID(taskID string, index int) string {
	return "cataloged." + taskID + "." + strconv.Itoa(index)
}

// FailedMsgID is the Nats-Msg-Id of the VideoFailed event of one failure outcome.
func FailedMsgID(taskID string, index int, s veo4kv1.FailureStatus) string {
	return "failed." + taskID + "." + strconv.Itoa(index) + "." + s.String()
}

// Publisher publishes completion events.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Cataloged publishes ev and waits for JetStream to store it.
func (p *Publisher) Cataloged(ctx context.Context, ev *veo4kv1.VideoCataloged) error {
	idx := int(ev.GetIndex())
	return p.publish(ctx, stream.CatalogedSubject(ev.GetTaskId(), idx), TypeCataloged,
		CatalogedMsgID(ev.GetTaskId(), idx), ev)
}

// Failed publishes ev and waits for JetStream to store it.
func (p *Publisher) Failed(ctx context.Context, ev *veo4kv1.VideoFailed) error {
	idx := int(ev.GetIndex())
	return p.publish(ctx, stream.FailedSubject(ev.GetTaskId(), idx), TypeFailed,
		FailedMsgID(ev.GetTaskId(), idx, ev.GetStatus()), ev)
}

func (p *Publisher) publish(ctx context.Context, subject, typ, id string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", typ, err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderType, typ)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publishing %s to %s: %w", typ, subject, err)
	}
	return nil
}

// Handlers receive decoded events; a nil handler's events are not delivered.
type Handlers struct {
	Cataloged func(ctx context.Context, ev *veo4kv1.VideoCataloged) error
	Failed    func(ctx context.Context, ev *veo4kv1.VideoFailed) error
}

// Options tune a subscription; the zero value suits most services.
type Options struct {
	// RetryDelay is how long a failed event waits before redelivery (default 5s).
	RetryDelay time.Duration
	// DeliverNew starts a new consumer at new events instead of the stream's
	// beginning (the default replays the retained history).
	DeliverNew bool
	// OnError is told of events that could not be decoded (they are
	// terminated, not redelivered) and of handler errors.
	OnError func(subject string, err error)
}

// Subscription is an attached durable consumer; Stop ends it.
type Subscription struct {
	cc jetstream.ConsumeContext
}

// Stop stops delivering events. The durable consumer stays on the server, so
// a later Subscribe with the same name continues where this one stopped.
func (s *Subscription) Stop() { s.cc.Stop() }

// Subscribe creates (or updates) the durable consumer named durable on
// VEO4K_VIDEOS and delivers its events to h until Stop or ctx ends. Several
// processes subscribing with the same name share the work.
func Subscribe(ctx context.Context, js jetstream.JetStream, durable string, h Handlers, o Options) (*Subscription, error) {
	if h.Cataloged == nil && h.Failed == nil {
		return nil, errors.New("events: no handler given")
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 5 * time.Second
	}
	var filters []string
	if h.Cataloged != nil {
		filters = append(filters, stream.CatalogedFilter)
	}
	if h.Failed != nil {
		filters = append(filters, stream.FailedFilter)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        durable,
		AckPolicy:      jetstream.AckExplicitPolicy,
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if o.DeliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.Videos, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s on %s: %w", durable, stream.Videos, err)
	}
	report := func(subject string, err error) {
		if o.OnError != nil {
			o.OnError(subject, err)
		}
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		err := dispatch(ctx, msg, h)
		switch {
		case err == nil:
			_ = msg.Ack()
		case errors.Is(err, errUndecodable):
			report(msg.Subject(), err)
			_ = msg.Term()
		default:
			report(msg.Subject(), err)
			_ = msg.NakWithDelay(o.RetryDelay)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("consuming %s: %w", durable, err)
	}
	sub := &Subscription{cc: cc}
	go func() {
		select {
		case <-ctx.Done():
			cc.Stop()
		case <-cc.Closed():
		}
	}()
	return sub, nil
}

var errUndecodable = errors.New("events: undecodable event")

func dispatch(ctx context.Context, msg jetstream.Msg, h Handlers) error {
	switch msg.Headers().Get(HeaderType) {
	case TypeCataloged:
		ev := new(veo4kv1.VideoCataloged)
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			return fmt.Errorf("%w: %w", errUndecodable, err)
		}
		return h.Cataloged(ctx, ev)
	case TypeFailed:
		ev := new(veo4kv1.VideoFailed)
		if err := proto.Unmarshal(msg.Data(), ev); err != nil {
			return fmt.Errorf("%w: %w", errUndecodable, err)
		}
		return h.Failed(ctx, ev)
	default:
		return fmt.Errorf("%w: unknown %s %q", errUndecodable, HeaderType, msg.Headers().Get(HeaderType))
	}
}
