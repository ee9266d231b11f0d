// Package fetcher turns stored callbacks into catalogued files: it consumes
// VEO4K_CALLBACKS with the shared durable consumer "fetcher", downloads and
// verifies each entry's files, records the outcome in the catalog and
// publishes the completion event.
//
// Processing is idempotent and the catalog decides: a message for an entry
// that is already ready downloads nothing, and each event is published with a
// deterministic Nats-Msg-Id before the message is acknowledged, so a crash at
// any point neither loses an event nor duplicates one.
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/download"
	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/storage"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// DefaultBackoff spreads the redeliveries of a callback whose files could not
// be fetched over about a day: the provider keeps its files for 14 days.
var DefaultBackoff = []time.Duration{
	30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
}

// Config tunes the fetcher.
type Config struct {
	// Concurrency is how many entries one process works on at once.
	Concurrency int
	// MaxDeliver is how many times a callback is tried before its entry is
	// failed and the callback dead-lettered.
	MaxDeliver int
	// Backoff[i] is the delay before delivery i+2; the last value repeats.
	Backoff []time.Duration
	// AckWait is how long JetStream waits for an ack or a heartbeat before it
	// gives the message to another worker, e.g. after a crash (default 30s).
	AckWait time.Duration
	// Heartbeat is how often a running download tells JetStream it is still
	// working (default AckWait/4).
	Heartbeat time.Duration
}

func (c *Config) defaults() {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.MaxDeliver < 1 {
		c.MaxDeliver = 10
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Heartbeat <= 0 || c.Heartbeat >= c.AckWait {
		c.Heartbeat = c.AckWait / 4
	}
}

// Downloader fetches one file; *download.Client is the implementation.
type Downloader interface {
	Fetch(ctx context.Context, req download.Request) (download.Result, error)
}

// Fetcher consumes callbacks and catalogues their files.
type Fetcher struct {
	cfg     Config
	js      jetstream.JetStream
	cat     catalog.Catalog
	store   *storage.Local
	dl      Downloader
	pub     *events.Publisher
	log     *zap.Logger
	metrics *Metrics
	now     func() time.Time
}

// New returns a fetcher. metrics may be nil.
func New(cfg Config, js jetstream.JetStream, cat catalog.Catalog, store *storage.Local, dl Downloader, log *zap.Logger, metrics *Metrics) *Fetcher {
	cfg.defaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Fetcher{
		cfg: cfg, js: js, cat: cat, store: store, dl: dl,
		pub: events.NewPublisher(js), log: log, metrics: metrics, now: time.Now,
	}
}

// consumerConfig is the shared durable consumer's configuration. MaxDeliver
// is unlimited on the server: the fetcher itself dead-letters a callback once
// it has been delivered Config.MaxDeliver times, so even a callback whose
// worker crashed on its last delivery comes back once more to be recorded as
// failed instead of vanishing.
func (f *Fetcher) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       stream.Fetcher,
		Description:   "veo4k fetchers: download, verify and catalogue each callback",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       f.cfg.AckWait,
		MaxDeliver:    -1,
		FilterSubject: stream.CallbacksFilter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 10000,
	}
}

// Run consumes callbacks with Config.Concurrency workers until ctx ends. Each
// worker asks JetStream for one message only when it is free, so no message
// waits in a local buffer while its ack timer runs. When ctx ends, running
// work is abandoned resumably: its message is redelivered (to this or another
// process) and the download resumes from the bytes already on disk.
func (f *Fetcher) Run(ctx context.Context) error {
	cons, err := f.js.CreateOrUpdateConsumer(ctx, stream.Callbacks, f.consumerConfig())
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", stream.Fetcher, err)
	}
	var wg sync.WaitGroup
	for range f.cfg.Concurrency {
		wg.Go(func() { f.work(ctx, cons) })
	}
	wg.Wait()
	return nil
}

func (f *Fetcher) work(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		// One message per free worker; the context ends the wait at once on
		// shutdown.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			if !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) &&
				!errors.Is(err, context.Canceled) && ctx.Err() == nil {
				f.log.Debug("waiting for callbacks", zap.Error(err))
				select { // NATS unavailable: do not spin
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		f.process(ctx, msg)
	}
}

// process handles one delivered message and settles it: the one place that
// decides ack, nak-with-delay or terminate.
func (f *Fetcher) process(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		f.log.Error("message without metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}
	cb := new(veo4kv1.CallbackReceived)
	if err := proto.Unmarshal(msg.Data(), cb); err != nil || cb.GetTaskId() == "" {
		// Kept in the stream for inspection; redelivering cannot fix it.
		f.log.Error("undecodable callback terminated", zap.String("subject", msg.Subject()),
			zap.Uint64("stream_seq", meta.Sequence.Stream), zap.Error(err))
		_ = msg.TermWithReason("undecodable CallbackReceived")
		return
	}
	delivery := int(meta.NumDelivered)
	log := f.log.With(zap.String("task_id", cb.GetTaskId()), zap.Uint32("index", cb.GetIndex()),
		zap.Int("delivery", delivery))

	stop := f.heartbeat(ctx, msg)
	start := f.now()
	err = f.handle(ctx, cb, delivery, msg.Data())
	stop()

	switch {
	case err == nil:
		if err := msg.DoubleAck(ctx); err != nil && ctx.Err() == nil {
			log.Warn("ack not confirmed; the callback will be redelivered and absorbed", zap.Error(err))
		}
		f.metrics.processed.WithLabelValues("done").Inc()
		f.metrics.duration.Observe(f.now().Sub(start).Seconds())
	case ctx.Err() != nil:
		// Shutting down: hand the message back at once (confirmed, so it is
		// not lost in a closing connection) for another worker or the next
		// start; the partial file stays on disk and that attempt resumes it.
		if _, err := f.js.Conn().Request(msg.Reply(), []byte("-NAK"), 2*time.Second); err != nil {
			log.Warn("handing back unfinished work; it returns after the ack wait", zap.Error(err))
		}
	default:
		delay := f.backoff(delivery, err)
		log.Warn("fetch failed, retrying later", zap.Duration("retry_in", delay), zap.Error(err))
		f.metrics.processed.WithLabelValues("retry").Inc()
		_ = msg.NakWithDelay(delay)
	}
}

func (f *Fetcher) backoff(delivery int, err error) time.Duration {
	i := min(max(delivery-1, 0), len(f.cfg.Backoff)-1)
	d := f.cfg.Backoff[i]
	var de *download.Error
	if errors.As(err, &de) && de.RetryAfter > d {
		d = de.RetryAfter
	}
	return d
}

// heartbeat tells JetStream every Heartbeat that the message is still being
// worked on, so a long download is never redelivered while it runs.
func (f *Fetcher) heartbeat(ctx context.Context, msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(f.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// handle does the work for one callback. A nil error means the message is
// settled for good (ready, unavailable, failed: recorded and announced); an
// error means "try again later".
func (f *Fetcher) handle(ctx context.Context, cb *veo4kv1.CallbackReceived, delivery int, raw []byte) error {
	key := catalog.Key{TaskID: cb.GetTaskId(), Index: int(cb.GetIndex())}
	received := cb.GetReceivedAt().AsTime()

	if cb.GetCode() != 200 {
		e, err := f.cat.Update(ctx, key, func(e *catalog.Entry) error {
			keepEarliest(e, received)
			e.To(catalog.Unavailable, cb.GetMsg())
			return nil
		})
		if err != nil {
			return fmt.Errorf("recording unavailable: %w", err)
		}
		return f.announce(ctx, e, cb)
	}

	// The last allowed delivery has come and gone: record the failure.
	if delivery > f.cfg.MaxDeliver {
		return f.fail(ctx, key, cb, raw, fmt.Sprintf("gave up after %d deliveries", f.cfg.MaxDeliver))
	}

	e, err := f.cat.Update(ctx, key, func(e *catalog.Entry) error {
		keepEarliest(e, received)
		if e.Status != catalog.Ready {
			e.To(catalog.Downloading, "")
			e.Attempts++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording download start: %w", err)
	}
	if e.Status == catalog.Ready {
		// Already done (a duplicate, a redelivery after a crash): make sure
		// its event went out, fetch nothing.
		f.metrics.processed.WithLabelValues("already_ready").Inc()
		return f.announce(ctx, e, cb)
	}

	files, err := f.fetchAll(ctx, key, cb)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if download.IsPermanent(err) {
			return f.fail(ctx, key, cb, raw, err.Error())
		}
		if delivery >= f.cfg.MaxDeliver {
			return f.fail(ctx, key, cb, raw, fmt.Sprintf("retries exhausted after %d deliveries: %v", delivery, err))
		}
		if _, uerr := f.cat.Update(ctx, key, func(e *catalog.Entry) error {
			e.To(catalog.Pending, fmt.Sprintf("attempt %d failed, will retry: %v", delivery, err))
			return nil
		}); uerr != nil {
			f.log.Warn("recording retry", zap.Error(uerr))
		}
		return err
	}

	e, err = f.cat.Update(ctx, key, func(e *catalog.Entry) error {
		if e.Status == catalog.Ready {
			return nil // another worker finished first; keep its record
		}
		e.Status, e.Message, e.Files = catalog.Ready, "", files
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording ready: %w", err)
	}
	return f.announce(ctx, e, cb)
}

// fail records a permanent failure, announces it, and dead-letters the
// callback so it can be inspected and replayed.
func (f *Fetcher) fail(ctx context.Context, key catalog.Key, cb *veo4kv1.CallbackReceived, raw []byte, reason string) error {
	e, err := f.cat.Update(ctx, key, func(e *catalog.Entry) error {
		e.To(catalog.Failed, reason)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording failure: %w", err)
	}
	if e.Status == catalog.Failed {
		if err := deadLetter(ctx, f.js, key, raw, reason, e.Attempts, f.now()); err != nil {
			return err
		}
	}
	return f.announce(ctx, e, cb)
}

func keepEarliest(e *catalog.Entry, received time.Time) {
	if !received.IsZero() && (e.ReceivedAt.IsZero() || received.Before(e.ReceivedAt)) {
		e.ReceivedAt = received
	}
}

// announce publishes the event the entry's status owes, once: the catalog
// remembers what was announced, and the deterministic Nats-Msg-Id absorbs a
// re-publish when a crash came between publishing and remembering.
func (f *Fetcher) announce(ctx context.Context, e catalog.Entry, cb *veo4kv1.CallbackReceived) error {
	if e.IsAnnounced(e.Status) {
		return nil
	}
	var err error
	switch e.Status {
	case catalog.Ready:
		err = f.pub.Cataloged(ctx, catalogedEvent(e, f.now()))
	case catalog.Unavailable, catalog.Failed:
		err = f.pub.Failed(ctx, failedEvent(e, cb.GetCode(), f.now()))
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("announcing %s: %w", e.Status, err)
	}
	status := e.Status
	if _, err := f.cat.Update(ctx, e.Key(), func(e *catalog.Entry) error {
		e.Announce(status)
		return nil
	}); err != nil {
		return fmt.Errorf("recording announcement: %w", err)
	}
	f.metrics.events.WithLabelValues(string(status)).Inc()
	f.log.Info("entry settled", zap.String("task_id", e.TaskID), zap.Int("index", e.Index),
		zap.String("status", string(status)), zap.String("message", e.Message))
	return nil
}

func catalogedEvent(e catalog.Entry, now time.Time) *veo4kv1.VideoCataloged {
	ev := &veo4kv1.VideoCataloged{
		TaskId: e.TaskID, Index: uint32(e.Index), Is4K: true,
		ReceivedAt: timestamp(e.ReceivedAt), CatalogedAt: timestamp(now),
	}
	videos := 0
	for _, file := range e.Files {
		pf := protoFile(file)
		if file.Kind == catalog.Video {
			videos++
			ev.Is4K = ev.Is4K && pf.GetIs4K()
		}
		ev.Files = append(ev.Files, pf)
	}
	if videos == 0 {
		ev.Is4K = false
	}
	return ev
}

func failedEvent(e catalog.Entry, code int32, now time.Time) *veo4kv1.VideoFailed {
	s := veo4kv1.FailureStatus_FAILURE_STATUS_FAILED
	if e.Status == catalog.Unavailable {
		s = veo4kv1.FailureStatus_FAILURE_STATUS_UNAVAILABLE
	}
	return &veo4kv1.VideoFailed{
		TaskId: e.TaskID, Index: uint32(e.Index), Status: s, Reason: e.Message,
		ProviderCode: code, Attempts: uint32(e.Attempts),
		ReceivedAt: timestamp(e.ReceivedAt), FailedAt: timestamp(now),
	}
}

func protoFile(f catalog.File) *veo4kv1.File {
	kind := veo4kv1.FileKind_FILE_KIND_IMAGE
	if f.Kind == catalog.Video {
		kind = veo4kv1.FileKind_FILE_KIND_VIDEO
	}
	return &veo4kv1.File{
		Kind: kind, Name: f.Name, Bytes: f.Bytes, Sha256: f.SHA256, ContentType: f.ContentType,
		SourceUrl: f.SourceURL, Width: uint32(f.Width), Height: uint32(f.Height),
		DurationMs: f.DurationMS, Codec: f.Codec, Is4K: f.Is4K != nil && *f.Is4K,
		Location: f.Location,
	}
}

// fileName is a stored file's name within its entry: video-0.mp4,
// image-0.jpg, ... The extension of an image comes from its URL when it is a
// known image type.
func fileName(kind catalog.Kind, i int, url string) string {
	if kind == catalog.Video {
		return fmt.Sprintf("video-%d.mp4", i)
	}
	ext := ".jpg"
	path := url
	if j := strings.IndexAny(path, "?#"); j >= 0 {
		path = path[:j]
	}
	switch lower := strings.ToLower(path); {
	case strings.HasSuffix(lower, ".png"):
		ext = ".png"
	case strings.HasSuffix(lower, ".webp"):
		ext = ".webp"
	}
	return fmt.Sprintf("image-%d%s", i, ext)
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
