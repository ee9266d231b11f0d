// Package providersim is a stand-in for the kie.ai Veo provider (PROVIDER.md):
// it serves generated, valid MP4 files and JPEG thumbnails (any size, never
// held in memory), posts the 4K callbacks (signed or not, retried like the
// provider), answers the 4K request and record-info API, and injects faults
// per task (duplicate callbacks, slow or dropped downloads, ignored Range,
// expiry, 5xx bursts, non-MP4 bodies, non-4K/portrait/HEVC videos).
//
// Use it in-process on a loopback test server:
//
//	sim := providersim.New(providersim.Config{CallbackBaseURL: receiver.URL + "/v1/callbacks/4k"})
//	srv := httptest.NewServer(sim)
//	sim.SetPublicURL(srv.URL)
//	task, _ := sim.AddTask(providersim.TaskSpec{TaskID: "t1"})
//	res, err := sim.SendCallback(ctx, "t1", 0)
//
// or as the providersim service, scripted over its /sim HTTP control API.
//
// Endpoints (all on one handler):
//
//	POST  /api/v1/veo/get-4k-video          provider API: Bearer key; {taskId,index,callBackUrl}
//	GET   /api/v1/veo/record-info?taskId=   provider API: Bearer key; optional &index=
//	GET   /files/{taskId}/{index}/{name}    the files (video_N.mp4, thumb_N.jpg); Range, ETag, If-Range
//	POST  /sim/tasks                        JSON TaskSpec → 201 Task; sends the callback(s) in the background
//	GET   /sim/tasks/{taskId}?index=        the Task
//	PATCH /sim/tasks/{taskId}?index=        JSON Faults, only the fields present change → the Task
//	POST  /sim/tasks/{taskId}/callback?index=  sends again, waits → CallbackResult (502 if given up)
//	GET   /sim/stats                        Stats: requests per path and per file, callbacks sent
//	GET   /healthz
//
// Video files are valid MP4s (ftyp, moov, one video track, mdat) of an exact
// requested size, generated on the fly from a seed: AVC ones decode (a grey
// picture), HEVC ones carry only filler data. Nothing is held in memory but
// the header, so multi-GiB files cost nothing until read.
package providersim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults applied to zero Config and TaskSpec fields.
const (
	DefaultVideoBytes         = 5 << 20
	DefaultCompleteAfter      = 5 * time.Second
	DefaultCallbackTimeout    = 15 * time.Second
	DefaultCallbackRetryDelay = 2 * time.Second
	DefaultDurationMs         = 8000
	// MaxCallbackAttempts is how many deliveries of one callback the provider
	// tries before giving up (PROVIDER.md §1).
	MaxCallbackAttempts = 3
	// hashEagerLimit bounds the files whose SHA-256 AddTask computes at once;
	// larger ones are hashed on demand by FileSHA256.
	hashEagerLimit = 256 << 20
)

// Callback kinds of a TaskSpec.
const (
	CallbackSuccess     = "success"
	CallbackUnavailable = "unavailable"
	CallbackNone        = "none"
)

// Signature modes of a TaskSpec.
const (
	SignatureDefault = ""      // signed when Config.HMACKey is set
	SignatureNone    = "none"  // no signature headers
	SignatureBad     = "bad"   // a signature made with the wrong key
	SignatureStale   = "stale" // a correct signature of a timestamp an hour old
)

// Task states, as Task.State reports them.
const (
	StateProcessing  = "processing"
	StateSuccess     = "success"
	StateUnavailable = "unavailable"
)

// Config configures a Sim.
type Config struct {
	// PublicURL is the base URL the files are served under, as the fetcher
	// reaches them (e.g. an httptest server's URL); SetPublicURL may set it later.
	PublicURL string
	// CallbackBaseURL receives callbacks at <CallbackBaseURL>/<taskId>?index=<n>.
	CallbackBaseURL string
	// HMACKey signs callbacks (PROVIDER.md §2); empty sends them unsigned.
	HMACKey string
	// APIKey is the bearer key the provider API requires; empty accepts any bearer key.
	APIKey string
	// CompleteAfter is how long a 4K request takes before its callback.
	CompleteAfter time.Duration
	// DefaultVideoBytes is the video size of tasks that do not give one.
	DefaultVideoBytes int64
	// CallbackTimeout bounds one delivery attempt (the provider waits 15 s).
	CallbackTimeout time.Duration
	// CallbackRetryDelay separates delivery attempts of one callback.
	CallbackRetryDelay time.Duration
	// Log receives the simulator's logs; nil discards them.
	Log *zap.Logger
	// HTTPClient sends callbacks; nil uses a plain client.
	HTTPClient *http.Client
}

// Faults are a task's download faults. Each applies to every file of the
// task, with its counters kept per file. In PATCH /sim/tasks/{taskId} only
// the fields present in the JSON change.
type Faults struct {
	// RateBytesPerSec throttles the body to about this many bytes per second.
	RateBytesPerSec int64 `json:"rateBytesPerSec,omitempty"`
	// DropAfterBytes closes the connection after this many body bytes.
	DropAfterBytes int64 `json:"dropAfterBytes,omitempty"`
	// DropTimes limits dropping to the first DropTimes requests; 0 drops every time.
	DropTimes int `json:"dropTimes,omitempty"`
	// IgnoreRange answers every request 200 with the full body.
	IgnoreRange bool `json:"ignoreRange,omitempty"`
	// Expired answers ExpiredStatus (404, or 410) until cleared.
	Expired       bool `json:"expired,omitempty"`
	ExpiredStatus int  `json:"expiredStatus,omitempty"`
	// ServerErrors answers the first ServerErrors requests with ServerErrorStatus (default 503).
	ServerErrors      int `json:"serverErrors,omitempty"`
	ServerErrorStatus int `json:"serverErrorStatus,omitempty"`
}

// TaskSpec describes a task to simulate; zero fields take defaults.
type TaskSpec struct {
	TaskID string `json:"taskId"`
	Index  int    `json:"index"`
	// Videos and the thumbnails' count: Videos defaults to 1; each video has
	// one thumbnail unless NoImages.
	Videos   int  `json:"videos,omitempty"`
	NoImages bool `json:"noImages,omitempty"`
	// VideoBytes is each video file's exact size (default Config.DefaultVideoBytes).
	VideoBytes int64 `json:"videoBytes,omitempty"`
	// Width×Height default to 3840×2160; 1920×1080 is a non-4K video, 2160×3840 portrait.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Codec is "avc1" (default) or "hvc1".
	Codec      string `json:"codec,omitempty"`
	DurationMs int64  `json:"durationMs,omitempty"`
	// Seed selects the payload bytes; 0 derives one from the task id and index.
	Seed uint64 `json:"seed,omitempty"`
	// NotMP4 serves an HTML error page with status 200 at the video URLs.
	NotMP4 bool `json:"notMp4,omitempty"`

	// Callback is "success" (default), "unavailable" or "none" (a successful
	// task whose callback is only sent on demand).
	Callback string `json:"callback,omitempty"`
	// Duplicates is how many copies of the callback are sent (default 1),
	// one after another or, with Concurrent, all at once.
	Duplicates int  `json:"duplicates,omitempty"`
	Concurrent bool `json:"concurrent,omitempty"`
	// SnakeCase spells the success body task_id/result_urls/image_urls.
	SnakeCase bool `json:"snakeCase,omitempty"`
	// FailureWithData sends data {"taskId": ...} on failure instead of null.
	FailureWithData bool `json:"failureWithData,omitempty"`
	// Signature is "" (signed if a key is set), "none", "bad" or "stale".
	Signature string `json:"signature,omitempty"`
	// CallbackURL, when set, receives the callbacks as is, instead of
	// <CallbackBaseURL>/<taskId>?index=<n>.
	CallbackURL string `json:"callbackUrl,omitempty"`

	Faults Faults `json:"faults"`
}

// File describes one served file.
type File struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	Kind        string `json:"kind"` // "video" or "image"
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the exact bytes served; empty for files
	// over 256 MiB until FileSHA256 computes it.
	SHA256     string `json:"sha256,omitempty"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	Codec      string `json:"codec,omitempty"`
	DurationMs int64  `json:"durationMs,omitempty"`
}

// Task is a simulated task as callers see it.
type Task struct {
	TaskID      string    `json:"taskId"`
	Index       int       `json:"index"`
	State       string    `json:"state"`
	VideoURLs   []string  `json:"videoUrls"`
	ImageURLs   []string  `json:"imageUrls"`
	Files       []File    `json:"files"`
	CreatedAt   time.Time `json:"createdAt"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	Faults      Faults    `json:"faults"`
}

// Errors callers may branch on.
var (
	ErrNotFound = errors.New("task not found")
	ErrExists   = errors.New("task already exists")
	ErrInvalid  = errors.New("invalid task spec")
	ErrGaveUp   = errors.New("callback not accepted after all attempts")
)

type taskKey struct {
	id    string
	index int
}

// simFile is a served file and its per-file counters (guarded by Sim.mu).
type simFile struct {
	File
	path    string
	etag    string
	content content
	served5 int // 5xx answered so far
	drops   int // connections dropped so far
}

// task is the simulator's state of one task (guarded by Sim.mu).
type task struct {
	spec      TaskSpec
	state     string
	files     []*simFile
	created   time.Time
	completed time.Time
}

// Sim is the provider simulator; it is an http.Handler. Its methods are safe
// for concurrent use.
type Sim struct {
	cfg    Config
	log    *zap.Logger
	client *http.Client
	mux    *http.ServeMux

	ctx    context.Context // cancelled by Close; bounds background callbacks
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	publicURL string
	tasks     map[taskKey]*task
	byPath    map[string]*simFile
	paths     map[string]int64
	fileStats map[string]*FileStats
	callbacks []CallbackResult
}

// New returns a simulator for cfg, with defaults for its zero fields.
func New(cfg Config) *Sim {
	if cfg.CompleteAfter <= 0 {
		cfg.CompleteAfter = DefaultCompleteAfter
	}
	if cfg.DefaultVideoBytes <= 0 {
		cfg.DefaultVideoBytes = DefaultVideoBytes
	}
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = DefaultCallbackTimeout
	}
	if cfg.CallbackRetryDelay <= 0 {
		cfg.CallbackRetryDelay = DefaultCallbackRetryDelay
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		cfg:       cfg,
		log:       cfg.Log,
		client:    cfg.HTTPClient,
		ctx:       ctx,
		cancel:    cancel,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		tasks:     make(map[taskKey]*task),
		byPath:    make(map[string]*simFile),
		paths:     make(map[string]int64),
		fileStats: make(map[string]*FileStats),
	}
	s.mux = s.routes()
	return s
}

// SetPublicURL sets the base URL of file URLs in tasks added from now on.
func (s *Sim) SetPublicURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publicURL = strings.TrimRight(u, "/")
}

// Close stops background work (scheduled completions, asynchronous
// callbacks) and waits for it to end.
func (s *Sim) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// background runs fn in a goroutine that Close waits for; after Close it
// does nothing.
func (s *Sim) background(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Go(fn)
}

// ServeHTTP serves the provider API, the files, and the /sim control API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths[r.URL.Path]++
	s.mu.Unlock()
	s.mux.ServeHTTP(w, r)
}

// AddTask creates a finished task (its state follows spec.Callback) and its
// files. It sends no callback: call SendCallback.
func (s *Sim) AddTask(spec TaskSpec) (Task, error) {
	return s.addTask(spec, false)
}

func (s *Sim) addTask(spec TaskSpec, processing bool) (Task, error) {
	spec, err := s.normalise(spec)
	if err != nil {
		return Task{}, err
	}
	t := &task{spec: spec, created: time.Now().UTC().Truncate(time.Second)}
	switch {
	case processing:
		t.state = StateProcessing
	case spec.Callback == CallbackUnavailable:
		t.state = StateUnavailable
		t.completed = t.created
	default:
		t.state = StateSuccess
		t.completed = t.created
	}
	if t.state != StateUnavailable {
		if err := s.buildFiles(t); err != nil {
			return Task{}, err
		}
	}
	key := taskKey{spec.TaskID, spec.Index}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tasks[key]; ok {
		return Task{}, fmt.Errorf("%w: %s index %d", ErrExists, spec.TaskID, spec.Index)
	}
	s.tasks[key] = t
	for _, f := range t.files {
		s.byPath[f.path] = f
	}
	return s.viewLocked(t), nil
}

func (s *Sim) normalise(spec TaskSpec) (TaskSpec, error) {
	if spec.TaskID == "" || len(spec.TaskID) > 128 || strings.ContainsAny(spec.TaskID, "/?#") {
		return spec, fmt.Errorf("%w: task id %q", ErrInvalid, spec.TaskID)
	}
	if spec.Index < 0 {
		return spec, fmt.Errorf("%w: negative index", ErrInvalid)
	}
	if spec.Videos <= 0 {
		spec.Videos = 1
	}
	if spec.VideoBytes <= 0 {
		spec.VideoBytes = s.cfg.DefaultVideoBytes
	}
	if spec.Width <= 0 || spec.Height <= 0 {
		spec.Width, spec.Height = 3840, 2160
	}
	if spec.Codec == "" {
		spec.Codec = CodecAVC
	}
	if spec.DurationMs <= 0 {
		spec.DurationMs = DefaultDurationMs
	}
	if spec.Seed == 0 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%d", spec.TaskID, spec.Index)
		spec.Seed = h.Sum64()
	}
	switch spec.Callback {
	case "":
		spec.Callback = CallbackSuccess
	case CallbackSuccess, CallbackUnavailable, CallbackNone:
	default:
		return spec, fmt.Errorf("%w: callback %q", ErrInvalid, spec.Callback)
	}
	switch spec.Signature {
	case SignatureDefault, SignatureNone, SignatureBad, SignatureStale:
	default:
		return spec, fmt.Errorf("%w: signature %q", ErrInvalid, spec.Signature)
	}
	if spec.Duplicates <= 0 {
		spec.Duplicates = 1
	}
	return spec, nil
}

// buildFiles creates the task's videos and thumbnails and hashes the small ones.
func (s *Sim) buildFiles(t *task) error {
	spec := t.spec
	s.mu.Lock()
	base := s.publicURL
	s.mu.Unlock()
	dir := "/files/" + url.PathEscape(spec.TaskID) + "/" + strconv.Itoa(spec.Index) + "/"
	for i := range spec.Videos {
		name := fmt.Sprintf("video_%d.mp4", i)
		p := VideoParams{Size: spec.VideoBytes, Width: spec.Width, Height: spec.Height,
			Codec: spec.Codec, DurationMs: spec.DurationMs, Seed: spec.Seed + uint64(i)}
		f := &simFile{File: File{Name: name, Kind: "video"}}
		if spec.NotMP4 {
			f.content = content{prefix: []byte(htmlErrorPage)}
			f.ContentType = "text/html; charset=utf-8"
		} else {
			c, err := videoContent(p)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			f.content = c
			f.ContentType = "video/mp4"
			f.Width, f.Height, f.Codec, f.DurationMs = p.Width, p.Height, p.Codec, p.DurationMs
		}
		t.files = append(t.files, f)
	}
	if !spec.NoImages {
		for i := range spec.Videos {
			img, err := thumbnail(spec.Seed+uint64(i), thumbWidth, thumbHeight)
			if err != nil {
				return err
			}
			t.files = append(t.files, &simFile{
				File:    File{Name: fmt.Sprintf("thumb_%d.jpg", i), Kind: "image", ContentType: "image/jpeg", Width: thumbWidth, Height: thumbHeight},
				content: content{prefix: img},
			})
		}
	}
	for _, f := range t.files {
		f.path = dir + f.Name
		f.URL = base + f.path
		f.Size = f.content.size()
		tag := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s\x00%d\x00%d", spec.TaskID, spec.Index, f.Name, f.Size, spec.Seed)))
		f.etag = `"` + hex.EncodeToString(tag[:12]) + `"`
		if f.Size <= hashEagerLimit {
			sum, err := hashContent(f.content)
			if err != nil {
				return err
			}
			f.SHA256 = sum
		}
	}
	return nil
}

const htmlErrorPage = `<!DOCTYPE html>
<html><head><title>Service temporarily unavailable</title></head>
<body><h1>Something went wrong</h1><p>The file you requested could not be delivered. Please try again later.</p></body></html>
`

func hashContent(c content) (string, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, c.reader(), make([]byte, payloadBlock)); err != nil {
		return "", fmt.Errorf("hashing file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileSHA256 returns the hex SHA-256 and size of a task's file as served,
// computing (and remembering) the hash of a large file by reading it once.
func (s *Sim) FileSHA256(taskID string, index int, name string) (string, int64, error) {
	s.mu.Lock()
	t, ok := s.tasks[taskKey{taskID, index}]
	var f *simFile
	if ok {
		for _, c := range t.files {
			if c.Name == name {
				f = c
			}
		}
	}
	var sum string
	if f != nil {
		sum = f.SHA256
	}
	s.mu.Unlock()
	if f == nil {
		return "", 0, fmt.Errorf("%w: %s index %d file %s", ErrNotFound, taskID, index, name)
	}
	if sum != "" {
		return sum, f.Size, nil
	}
	sum, err := hashContent(f.content)
	if err != nil {
		return "", 0, err
	}
	s.mu.Lock()
	f.SHA256 = sum
	s.mu.Unlock()
	return sum, f.Size, nil
}

// Task returns the task (taskID, index).
func (s *Sim) Task(taskID string, index int) (Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[taskKey{taskID, index}]
	if !ok {
		return Task{}, fmt.Errorf("%w: %s index %d", ErrNotFound, taskID, index)
	}
	return s.viewLocked(t), nil
}

// SetFaults replaces the task's faults and resets its fault counters (5xx
// answered, connections dropped), e.g. to clear an expiry.
func (s *Sim) SetFaults(taskID string, index int, f Faults) error {
	return s.updateFaults(taskID, index, func(cur *Faults) error { *cur = f; return nil })
}

func (s *Sim) updateFaults(taskID string, index int, change func(*Faults) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[taskKey{taskID, index}]
	if !ok {
		return fmt.Errorf("%w: %s index %d", ErrNotFound, taskID, index)
	}
	f := t.spec.Faults
	if err := change(&f); err != nil {
		return err
	}
	t.spec.Faults = f
	for _, file := range t.files {
		file.served5, file.drops = 0, 0
	}
	return nil
}

func (s *Sim) viewLocked(t *task) Task {
	v := Task{TaskID: t.spec.TaskID, Index: t.spec.Index, State: t.state,
		CreatedAt: t.created, CompletedAt: t.completed, Faults: t.spec.Faults,
		VideoURLs: []string{}, ImageURLs: []string{}, Files: []File{}}
	for _, f := range t.files {
		v.Files = append(v.Files, f.File)
		if f.Kind == "video" {
			v.VideoURLs = append(v.VideoURLs, f.URL)
		} else {
			v.ImageURLs = append(v.ImageURLs, f.URL)
		}
	}
	return v
}

// FileStats counts the requests of one file.
type FileStats struct {
	Requests      int64 `json:"requests"`
	RangeRequests int64 `json:"rangeRequests"`
	Full          int64 `json:"full"`    // answered 200
	Partial       int64 `json:"partial"` // answered 206
	Expired       int64 `json:"expired"` // answered 404/410
	ServerErrors  int64 `json:"serverErrors"`
	Drops         int64 `json:"drops"`
	BytesServed   int64 `json:"bytesServed"`
}

// Stats is a snapshot of the simulator's counters.
type Stats struct {
	// Paths counts requests per URL path, whatever the answer.
	Paths map[string]int64 `json:"paths"`
	// Files counts file requests per URL path.
	Files map[string]FileStats `json:"files"`
	// Callbacks lists every callback sent, oldest first.
	Callbacks []CallbackResult `json:"callbacks"`
}

// Stats returns a snapshot of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Paths: make(map[string]int64, len(s.paths)), Files: make(map[string]FileStats, len(s.fileStats)),
		Callbacks: append([]CallbackResult{}, s.callbacks...)}
	for p, n := range s.paths {
		st.Paths[p] = n
	}
	for p, f := range s.fileStats {
		st.Files[p] = *f
	}
	return st
}

// FileStats returns the counters of a file by its URL or URL path.
func (s *Sim) FileStats(fileURL string) FileStats {
	p := fileURL
	if u, err := url.Parse(fileURL); err == nil {
		p = u.Path
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fileStats[p]; ok {
		return *f
	}
	return FileStats{}
}
