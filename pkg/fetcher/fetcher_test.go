package fetcher_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/download"
	"github.com/veo4k/veo4k/pkg/events"
	"github.com/veo4k/veo4k/pkg/fetcher"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/providersim"
	"github.com/veo4k/veo4k/pkg/storage"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// env is one test's world: a real JetStream, a real provider simulator on
// loopback, a real SQLite catalog and real files, and a subscriber that
// records every completion event through pkg/events.
type env struct {
	t       *testing.T
	js      jetstream.JetStream
	sim     *providersim.Sim
	simURL  string
	cat     catalog.Catalog
	store   *storage.Local
	dataDir string
	log     *zap.Logger

	mu        sync.Mutex
	cataloged []*veo4kv1.VideoCataloged
	failed    []*veo4kv1.VideoFailed
}

// world is what every fetcher test and benchmark runs against: JetStream
// with veo4k's streams, the provider simulator on loopback (1 MiB videos by
// default), local storage and a SQLite catalog, all removed at the end.
type world struct {
	js      jetstream.JetStream
	sim     *providersim.Sim
	simURL  string
	cat     catalog.Catalog
	store   *storage.Local
	dataDir string
}

func newWorld(tb testing.TB, opts stream.Options) world {
	tb.Helper()
	_, js := natstest.Connect(tb, natstest.Start(tb, ""))
	ctx := tb.Context()
	if err := stream.Ensure(ctx, js, stream.CallbacksConfig(opts), stream.VideosConfig(opts), stream.DeadLettersConfig(opts)); err != nil {
		tb.Fatal(err)
	}
	sim := providersim.New(providersim.Config{DefaultVideoBytes: 1 << 20})
	hs := httptest.NewServer(sim)
	tb.Cleanup(func() { hs.Close(); _ = sim.Close() })
	sim.SetPublicURL(hs.URL)

	dataDir := tb.TempDir()
	store, err := storage.OpenLocal(dataDir)
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := catalog.OpenSQLite(ctx, filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cat.Close() })
	return world{js: js, sim: sim, simURL: hs.URL, cat: cat, store: store, dataDir: dataDir}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	w := newWorld(t, stream.Options{Memory: true})
	ctx := t.Context()
	js := w.js
	e := &env{t: t, js: js, sim: w.sim, simURL: w.simURL, cat: w.cat, store: w.store, dataDir: w.dataDir,
		log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}

	sub, err := events.Subscribe(ctx, js, "test-subscriber", events.Handlers{
		Cataloged: func(_ context.Context, ev *veo4kv1.VideoCataloged) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.cataloged = append(e.cataloged, ev)
			return nil
		},
		Failed: func(_ context.Context, ev *veo4kv1.VideoFailed) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.failed = append(e.failed, ev)
			return nil
		},
	}, events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return e
}

func (e *env) downloader() *download.Client {
	dl, err := download.New(download.Config{
		AllowedHosts:         []string{"127.0.0.1"},
		AllowPrivateNetworks: true,
		MaxBytes:             64 << 20,
		IdleReadTimeout:      2 * time.Second,
		Attempts:             3,
		RetryBackoff:         10 * time.Millisecond,
		MaxBackoff:           50 * time.Millisecond,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return dl
}

// start runs a fetcher until the returned cancel is called (or the test ends).
func (e *env) start(cfg fetcher.Config) (cancel func()) {
	e.t.Helper()
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 2
	}
	if cfg.Backoff == nil {
		cfg.Backoff = []time.Duration{50 * time.Millisecond}
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 2 * time.Second
	}
	f := fetcher.New(cfg, e.js, e.cat, e.store, e.downloader(), e.log, nil)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil {
			e.t.Errorf("fetcher.Run: %v", err)
		}
	}()
	var once sync.Once
	cancel = func() { once.Do(func() { stop(); <-done }) }
	e.t.Cleanup(cancel)
	return cancel
}

// addTask creates the task on the simulator.
func (e *env) addTask(spec providersim.TaskSpec) providersim.Task {
	e.t.Helper()
	task, err := e.sim.AddTask(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return task
}

// publish stores a callback as the ingress would.
func (e *env) publish(cb *veo4kv1.CallbackReceived) {
	e.t.Helper()
	if cb.ReceivedAt == nil {
		cb.ReceivedAt = timestamppb.Now()
	}
	data, err := proto.Marshal(cb)
	if err != nil {
		e.t.Fatal(err)
	}
	outcome := stream.Success
	if cb.GetCode() != 200 {
		outcome = stream.Failure
	}
	msg := &nats.Msg{Subject: stream.CallbackSubject(cb.GetTaskId(), int(cb.GetIndex()), outcome), Data: data}
	if _, err := e.js.PublishMsg(e.t.Context(), msg); err != nil {
		e.t.Fatalf("publishing callback: %v", err)
	}
}

func success(task providersim.Task) *veo4kv1.CallbackReceived {
	return &veo4kv1.CallbackReceived{TaskId: task.TaskID, Index: uint32(task.Index), Code: 200,
		Msg: "4K Video generated successfully.", VideoUrls: task.VideoURLs, ImageUrls: task.ImageURLs}
}

// waitStatus waits until the entry reaches status.
func (e *env) waitStatus(taskID string, status catalog.Status) catalog.Entry {
	e.t.Helper()
	var last catalog.Entry
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := e.cat.Get(e.t.Context(), catalog.Key{TaskID: taskID})
		if err == nil {
			last = got
			if got.Status == status {
				return got
			}
		} else if !errors.Is(err, catalog.ErrNotFound) {
			e.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("entry %s: status %q (message %q), want %q", taskID, last.Status, last.Message, status)
	return last
}

// waitEvents waits until the subscriber holds at least n events of the entry.
func (e *env) waitEvents(taskID string, cataloged, failed int) ([]*veo4kv1.VideoCataloged, []*veo4kv1.VideoFailed) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, f := e.events(taskID)
		if len(c) >= cataloged && len(f) >= failed {
			return c, f
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("entry %s: %d VideoCataloged and %d VideoFailed, want %d and %d", taskID, len(c), len(f), cataloged, failed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) events(taskID string) (c []*veo4kv1.VideoCataloged, f []*veo4kv1.VideoFailed) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.cataloged {
		if ev.GetTaskId() == taskID {
			c = append(c, ev)
		}
	}
	for _, ev := range e.failed {
		if ev.GetTaskId() == taskID {
			f = append(f, ev)
		}
	}
	return c, f
}

// settleQuietly gives stray duplicates a chance to show: it waits until the
// consumer has acknowledged everything, then checks event counts again.
func (e *env) waitConsumerIdle() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := e.js.Consumer(e.t.Context(), stream.Callbacks, stream.Fetcher)
		if err == nil {
			info, err := c.Info(e.t.Context())
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("consumer still has work pending")
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkFiles asserts the stored files are byte-identical to what the
// simulator served, and that no partial file is left.
func (e *env) checkFiles(entry catalog.Entry, task providersim.Task) {
	e.t.Helper()
	if got, want := len(entry.Files), len(task.Files); got != want {
		e.t.Fatalf("%d files catalogued, want %d", got, want)
	}
	for i, f := range entry.Files {
		src := task.Files[i]
		path := filepath.Join(e.dataDir, f.Location)
		if got, want := sha256File(e.t, path), src.SHA256; got != want {
			e.t.Errorf("%s: stored SHA-256 %s, simulator's %s", f.Name, got, want)
		}
		if got, want := f.SHA256, src.SHA256; got != want {
			e.t.Errorf("%s: catalogued SHA-256 %s, simulator's %s", f.Name, got, want)
		}
		if got, want := f.Bytes, src.Size; got != want {
			e.t.Errorf("%s: %d bytes, want %d", f.Name, got, want)
		}
	}
	partials, _ := filepath.Glob(filepath.Join(e.dataDir, "files", entry.TaskID, "*", ".partial", "*.mp4"))
	if len(partials) != 0 {
		e.t.Errorf("partial files left: %v", partials)
	}
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	task := e.addTask(providersim.TaskSpec{TaskID: "happy"})
	e.publish(success(task))

	entry := e.waitStatus("happy", catalog.Ready)
	e.checkFiles(entry, task)
	v := entry.Files[0]
	if v.Kind != catalog.Video || v.Width != 3840 || v.Height != 2160 || v.Is4K == nil || !*v.Is4K || v.DurationMS <= 0 || v.Codec == "" {
		t.Errorf("video described as %+v, want a 3840×2160 4K video with duration and codec", v)
	}
	if img := entry.Files[1]; img.Kind != catalog.Image || img.ContentType != "image/jpeg" || img.Width == 0 {
		t.Errorf("thumbnail described as %+v", img)
	}
	c, f := e.waitEvents("happy", 1, 0)
	if len(c) != 1 || len(f) != 0 {
		t.Fatalf("events: %d cataloged, %d failed; want 1, 0", len(c), len(f))
	}
	if ev := c[0]; !ev.GetIs4K() || len(ev.GetFiles()) != 2 || ev.GetFiles()[0].GetSha256() != task.Files[0].SHA256 {
		t.Errorf("VideoCataloged = %v", ev)
	}
}

func TestResumesAfterDroppedConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	task := e.addTask(providersim.TaskSpec{TaskID: "dropped", VideoBytes: 4 << 20,
		Faults: providersim.Faults{DropAfterBytes: 1 << 20, DropTimes: 1}})
	e.publish(success(task))
	entry := e.waitStatus("dropped", catalog.Ready)
	e.checkFiles(entry, task)
	st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]
	if st.Drops != 1 || st.Partial < 1 {
		t.Errorf("video requests: %+v; want one drop and a resumed (206) request", st)
	}
	if st.BytesServed >= 2*task.Files[0].Size {
		t.Errorf("served %d bytes for a %d-byte file: the download restarted instead of resuming", st.BytesServed, task.Files[0].Size)
	}
}

func TestRestartsWhenRangeIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	task := e.addTask(providersim.TaskSpec{TaskID: "norange", VideoBytes: 3 << 20,
		Faults: providersim.Faults{DropAfterBytes: 1 << 20, DropTimes: 1, IgnoreRange: true}})
	e.publish(success(task))
	entry := e.waitStatus("norange", catalog.Ready)
	e.checkFiles(entry, task)
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.Full < 2 || st.Partial != 0 {
		t.Errorf("video requests: %+v; want two full (200) answers, no 206", st)
	}
}

func TestExpiredFileFailsThenReplays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	task := e.addTask(providersim.TaskSpec{TaskID: "expired", Faults: providersim.Faults{Expired: true, ExpiredStatus: 404}})
	e.publish(success(task))

	entry := e.waitStatus("expired", catalog.Failed)
	if !strings.Contains(entry.Message, "404") {
		t.Errorf("failure message %q does not name the 404", entry.Message)
	}
	_, f := e.waitEvents("expired", 0, 1)
	if got, want := f[0].GetStatus(), veo4kv1.FailureStatus_FAILURE_STATUS_FAILED; got != want {
		t.Errorf("VideoFailed status %v, want %v", got, want)
	}
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.Requests != 1 {
		t.Errorf("%d requests for an expired file, want 1 (a 404 is permanent)", st.Requests)
	}

	dl := fetcher.NewDeadLetters(e.js, e.cat)
	letters, err := dl.List(t.Context())
	if err != nil || len(letters) != 1 || letters[0].TaskID != "expired" || !strings.Contains(letters[0].Reason, "404") {
		t.Fatalf("dead letters = %+v, %v; want one for expired naming the 404", letters, err)
	}

	// The provider serves the file again; a replay makes the entry ready.
	if err := e.sim.SetFaults("expired", 0, providersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Replay(t.Context(), catalog.Key{TaskID: "expired"}); err != nil {
		t.Fatal(err)
	}
	entry = e.waitStatus("expired", catalog.Ready)
	e.checkFiles(entry, task)
	e.waitEvents("expired", 1, 1)
	if letters, err := dl.List(t.Context()); err != nil || len(letters) != 0 {
		t.Errorf("dead letters after replay = %+v, %v; want none", letters, err)
	}
	if err := dl.Replay(t.Context(), catalog.Key{TaskID: "expired"}); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("second replay: %v, want ErrNotFound", err)
	}
	e.waitConsumerIdle()
	if c, f := e.events("expired"); len(c) != 1 || len(f) != 1 {
		t.Errorf("events: %d cataloged, %d failed; want exactly 1 and 1", len(c), len(f))
	}
}

func TestTransientErrorsThenSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	task := e.addTask(providersim.TaskSpec{TaskID: "flaky", Faults: providersim.Faults{ServerErrors: 2, ServerErrorStatus: 503}})
	e.publish(success(task))
	entry := e.waitStatus("flaky", catalog.Ready)
	e.checkFiles(entry, task)
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.ServerErrors != 2 {
		t.Errorf("video requests: %+v; want 2 server errors before success", st)
	}
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{MaxDeliver: 2})
	task := e.addTask(providersim.TaskSpec{TaskID: "down", Faults: providersim.Faults{ServerErrors: 1000, ServerErrorStatus: 503}})
	e.publish(success(task))
	entry := e.waitStatus("down", catalog.Failed)
	if !strings.Contains(entry.Message, "retries exhausted") {
		t.Errorf("message %q, want it to say retries are exhausted", entry.Message)
	}
	// 2 deliveries × 3 in-process attempts.
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.Requests != 6 {
		t.Errorf("%d requests, want 6 (2 deliveries × 3 attempts)", st.Requests)
	}
	e.waitEvents("down", 0, 1)
	letters, err := fetcher.NewDeadLetters(e.js, e.cat).List(t.Context())
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters = %+v, %v; want one", letters, err)
	}
}

func TestFailureThenSuccessThenFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	const msg = "The 4K version of this video is unavailable. Please try a different video."
	e.publish(&veo4kv1.CallbackReceived{TaskId: "flip", Code: 500, Msg: msg})
	entry := e.waitStatus("flip", catalog.Unavailable)
	if entry.Message != msg {
		t.Errorf("message %q, want the provider's verbatim", entry.Message)
	}
	_, f := e.waitEvents("flip", 0, 1)
	if got, want := f[0].GetStatus(), veo4kv1.FailureStatus_FAILURE_STATUS_UNAVAILABLE; got != want {
		t.Errorf("VideoFailed status %v, want %v", got, want)
	}

	task := e.addTask(providersim.TaskSpec{TaskID: "flip"})
	e.publish(success(task))
	e.waitStatus("flip", catalog.Ready)
	e.waitEvents("flip", 1, 1)

	// A late failure never downgrades ready, and announces nothing.
	cb := &veo4kv1.CallbackReceived{TaskId: "flip", Code: 500, Msg: "late"}
	data, _ := proto.Marshal(cb)
	if _, err := e.js.Publish(t.Context(), stream.ReplaySubject("flip", 0, 1), data); err != nil {
		t.Fatal(err)
	}
	e.waitConsumerIdle()
	got, err := e.cat.Get(t.Context(), catalog.Key{TaskID: "flip"})
	if err != nil || got.Status != catalog.Ready {
		t.Fatalf("after a late failure: %+v, %v; want ready", got, err)
	}
	if c, f := e.events("flip"); len(c) != 1 || len(f) != 1 {
		t.Errorf("events: %d cataloged, %d failed; want 1 and 1", len(c), len(f))
	}
}

func TestDuplicateOfReadyEntryFetchesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	task := e.addTask(providersim.TaskSpec{TaskID: "twice"})
	e.publish(success(task))
	e.waitStatus("twice", catalog.Ready)
	e.waitEvents("twice", 1, 0)

	// The same callback again, on a subject the per-subject guard does not
	// cover (as a replay would be).
	data, _ := proto.Marshal(success(task))
	if _, err := e.js.Publish(t.Context(), stream.ReplaySubject("twice", 0, 7), data); err != nil {
		t.Fatal(err)
	}
	e.waitConsumerIdle()
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.Requests != 1 {
		t.Errorf("%d video requests, want 1", st.Requests)
	}
	if c, _ := e.events("twice"); len(c) != 1 {
		t.Errorf("%d VideoCataloged, want 1", len(c))
	}
}

func TestAnnouncesReadyEntryWhoseEventWasLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A crash after the catalog said ready but before the event was
	// published: the entry is ready and not announced.
	if _, err := e.cat.Update(t.Context(), catalog.Key{TaskID: "crashed"}, func(en *catalog.Entry) error {
		en.Status = catalog.Ready
		en.Files = []catalog.File{{Kind: catalog.Video, Name: "video-0.mp4", Bytes: 1, SHA256: "00"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.start(fetcher.Config{})
	e.publish(&veo4kv1.CallbackReceived{TaskId: "crashed", Code: 200, VideoUrls: []string{e.simURL + "/nothing.mp4"}})
	e.waitEvents("crashed", 1, 0)
	e.waitConsumerIdle()
	if got := e.sim.Stats().Paths["/nothing.mp4"]; got != 0 {
		t.Errorf("%d downloads for a ready entry, want 0", got)
	}
	en, _ := e.cat.Get(t.Context(), catalog.Key{TaskID: "crashed"})
	if !en.IsAnnounced(catalog.Ready) {
		t.Error("the catalog does not record the announcement")
	}
}

func TestWorkerStoppedMidDownloadAnotherCompletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stop := e.start(fetcher.Config{Concurrency: 1})
	task := e.addTask(providersim.TaskSpec{TaskID: "handover", VideoBytes: 4 << 20,
		Faults: providersim.Faults{RateBytesPerSec: 2 << 20}})
	e.publish(success(task))

	// Wait until part of the file is on disk, then stop this worker.
	partial := filepath.Join(e.dataDir, "files", "handover", "0", ".partial", "video-0.mp4")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(partial); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no partial download appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	en, err := e.cat.Get(t.Context(), catalog.Key{TaskID: "handover"})
	if err != nil || en.Status == catalog.Ready || len(en.Files) != 0 {
		t.Fatalf("mid-download the catalog shows %+v, %v; want no files and not ready", en, err)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "files", "handover", "0", "video-0.mp4")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a final file exists before the download completed: %v", err)
	}

	// Another worker takes over and resumes.
	if err := e.sim.SetFaults("handover", 0, providersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	e.start(fetcher.Config{Concurrency: 1})
	entry := e.waitStatus("handover", catalog.Ready)
	e.checkFiles(entry, task)
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.Partial < 1 {
		t.Errorf("video requests %+v: the second worker did not resume with Range", st)
	}
	e.waitConsumerIdle()
	if c, _ := e.events("handover"); len(c) != 1 {
		t.Errorf("%d VideoCataloged, want 1", len(c))
	}
}

func TestVerification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		spec   providersim.TaskSpec
		status catalog.Status
		is4K   bool
		reason string
	}{
		{"not an MP4", providersim.TaskSpec{TaskID: "html", NotMP4: true}, catalog.Failed, false, "MP4"},
		{"1080p kept, flagged", providersim.TaskSpec{TaskID: "hd", Width: 1920, Height: 1080}, catalog.Ready, false, ""},
		{"portrait 4K", providersim.TaskSpec{TaskID: "portrait", Width: 2160, Height: 3840}, catalog.Ready, true, ""},
		{"hevc 4K", providersim.TaskSpec{TaskID: "hevc", Codec: "hvc1"}, catalog.Ready, true, ""},
		{"too large", providersim.TaskSpec{TaskID: "huge", VideoBytes: 65 << 20}, catalog.Failed, false, "large"},
	}
	e := newEnv(t)
	e.start(fetcher.Config{Concurrency: 3})
	for _, tt := range tests {
		e.publish(success(e.addTask(tt.spec)))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := e.waitStatus(tt.spec.TaskID, tt.status)
			if tt.status == catalog.Failed {
				if !strings.Contains(strings.ToLower(entry.Message), strings.ToLower(tt.reason)) {
					t.Errorf("message %q does not say %q", entry.Message, tt.reason)
				}
				e.waitEvents(tt.spec.TaskID, 0, 1)
				return
			}
			v := entry.Files[0]
			if v.Is4K == nil || *v.Is4K != tt.is4K || v.Width != tt.spec.Width && tt.spec.Width != 0 {
				t.Errorf("video %+v, want is4K=%v", v, tt.is4K)
			}
			c, _ := e.waitEvents(tt.spec.TaskID, 1, 0)
			if c[0].GetIs4K() != tt.is4K {
				t.Errorf("event is4k=%v, want %v", c[0].GetIs4K(), tt.is4K)
			}
		})
	}
}

func TestRefusedHostFailsWithReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{})
	e.publish(&veo4kv1.CallbackReceived{TaskId: "ssrf", Code: 200, VideoUrls: []string{"http://169.254.169.254/latest/meta-data"}})
	entry := e.waitStatus("ssrf", catalog.Failed)
	if !strings.Contains(entry.Message, "169.254.169.254") {
		t.Errorf("message %q does not name the refused host", entry.Message)
	}
	e.waitEvents("ssrf", 0, 1)
}

func urlPath(u string) string {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return u
	}
	return req.URL.Path
}

// TestLongDownloadIsNotRedelivered runs a download three times longer than
// the ack wait: the worker's InProgress heartbeats keep JetStream from giving
// the message to another worker meanwhile.
func TestLongDownloadIsNotRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(fetcher.Config{Concurrency: 2, AckWait: time.Second, Heartbeat: 200 * time.Millisecond})
	task := e.addTask(providersim.TaskSpec{TaskID: "long", VideoBytes: 3 << 20,
		Faults: providersim.Faults{RateBytesPerSec: 1 << 20}}) // about 3 s
	e.publish(success(task))
	entry := e.waitStatus("long", catalog.Ready)
	e.checkFiles(entry, task)
	if st := e.sim.Stats().Files[urlPath(task.VideoURLs[0])]; st.Requests != 1 {
		t.Errorf("%d requests for the video, want 1: the message was redelivered mid-download", st.Requests)
	}
	c, err := e.js.Consumer(t.Context(), stream.Callbacks, stream.Fetcher)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
		t.Errorf("consumer delivered %d times with %d redelivered, want 1 and 0", info.Delivered.Consumer, info.NumRedelivered)
	}
}

// TestTakesOnlyWhatItCanWorkOn: with one worker busy, the other callbacks
// stay on the server, not in a local buffer where their ack timers would run.
func TestTakesOnlyWhatItCanWorkOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var tasks []providersim.Task
	for _, id := range []string{"q1", "q2", "q3"} {
		task := e.addTask(providersim.TaskSpec{TaskID: id, VideoBytes: 1 << 20, Faults: providersim.Faults{RateBytesPerSec: 1 << 20}})
		tasks = append(tasks, task)
		e.publish(success(task))
	}
	e.start(fetcher.Config{Concurrency: 1})
	// While the first entry downloads, exactly one message is out.
	deadline := time.Now().Add(10 * time.Second)
	for {
		en, err := e.cat.Get(t.Context(), catalog.Key{TaskID: "q1"})
		if err == nil && en.Status == catalog.Downloading {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("q1 did not start downloading")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := e.js.Consumer(t.Context(), stream.Callbacks, stream.Fetcher)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 1 || info.NumPending != 2 {
		t.Errorf("while one worker downloads: %d messages out, %d waiting on the server; want 1 and 2", info.NumAckPending, info.NumPending)
	}
	for _, task := range tasks {
		e.checkFiles(e.waitStatus(task.TaskID, catalog.Ready), task)
	}
}
