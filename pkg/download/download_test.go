package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/veo4k/veo4k/pkg/media"
)

// payload returns n deterministic pseudo-random bytes.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newTestClient returns a client allowed to fetch from loopback test servers,
// with fast retries.
func newTestClient(t *testing.T, modify func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		AllowedHosts:         []string{"127.0.0.1"},
		AllowPrivateNetworks: true,
		RetryBackoff:         5 * time.Millisecond,
		IdleReadTimeout:      5 * time.Second,
	}
	if modify != nil {
		modify(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// recorder keeps the requests a test server saw.
type recorder struct {
	mu   sync.Mutex
	reqs []http.Header
}

func (r *recorder) add(req *http.Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req.Header.Clone())
	return len(r.reqs)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *recorder) header(i int, name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.reqs) {
		return ""
	}
	return r.reqs[i].Get(name)
}

// serve serves body with an ETag, honouring Range and If-Range.
func serve(w http.ResponseWriter, r *http.Request, etag string, body []byte) {
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "video/mp4")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// dropAfter sends the full-length headers and the first n bytes of body,
// then kills the connection.
func dropAfter(t *testing.T, w http.ResponseWriter, etag string, body []byte, n int) {
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:n])
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

func assertFile(t *testing.T, res Result, dir, name string, want []byte) {
	t.Helper()
	if got, wantPath := res.Path, filepath.Join(dir, name); got != wantPath {
		t.Errorf("Path = %q, want %q", got, wantPath)
	}
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reading final file: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("final file differs from the served body (%d vs %d bytes)", len(got), len(want))
	}
	if got, want := res.SHA256, sum(want); got != want {
		t.Errorf("SHA256 = %s, want %s", got, want)
	}
	if got, want := res.Bytes, int64(len(want)); got != want {
		t.Errorf("Bytes = %d, want %d", got, want)
	}
	assertNoPartial(t, dir)
}

func assertNoPartial(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, partialDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", partialDir, e.Name())
	}
}

func assertNoFinal(t *testing.T, dir, name string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("final file exists after a failed fetch (stat error %v)", err)
	}
}

func TestFetchHappyPath(t *testing.T) {
	t.Parallel()
	body := payload(1, 3<<20+17)
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		serve(w, r, `"v1"`, body)
	}))
	defer srv.Close()

	dir := filepath.Join(t.TempDir(), "videos", "task1")
	var lastDone, lastTotal atomic.Int64
	res, err := newTestClient(t, nil).Fetch(context.Background(), Request{
		URL: srv.URL + "/v/file.mp4", Dir: dir, Name: "video-0.mp4",
		Progress: func(done, total int64) { lastDone.Store(done); lastTotal.Store(total) },
	})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "video-0.mp4", body)
	if got, want := res.ContentType, "video/mp4"; got != want {
		t.Errorf("ContentType = %q, want %q", got, want)
	}
	if res.Resumed {
		t.Error("Resumed = true on a single clean attempt")
	}
	if got, want := lastDone.Load(), int64(len(body)); got != want {
		t.Errorf("last progress done = %d, want %d", got, want)
	}
	if got, want := lastTotal.Load(), int64(len(body)); got != want {
		t.Errorf("last progress total = %d, want %d", got, want)
	}
	if got, want := rec.count(), 1; got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
}

func TestFetchVerifiesWithMediaProbe(t *testing.T) {
	t.Parallel()
	mp4, err := os.ReadFile(filepath.Join("..", "..", "testdata", "media", "uhd-h264.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile(filepath.Join("..", "..", "testdata", "media", "thumb.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".jpg") {
			serve(w, r, `"j"`, jpg)
			return
		}
		serve(w, r, `"m"`, mp4)
	}))
	defer srv.Close()
	c := newTestClient(t, nil)

	var info media.VideoInfo
	verify := func(f *os.File) error {
		var err error
		info, err = media.ProbeMP4(f)
		return err
	}
	dir := t.TempDir()
	res, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/a.mp4", Dir: dir, Name: "a.mp4", Verify: verify})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "a.mp4", mp4)
	if !info.Is4K {
		t.Errorf("verified info = %+v, want 4K", info)
	}

	// An image served where a video was expected: Verify rejects it,
	// permanently, and nothing is left on disk.
	var rec recorder
	_, err = c.Fetch(context.Background(), Request{URL: srv.URL + "/b.jpg", Dir: dir, Name: "b.mp4", Verify: func(f *os.File) error {
		rec.add(&http.Request{Header: http.Header{}})
		return verify(f)
	}})
	if !IsPermanent(err) || !errors.Is(err, media.ErrNotMP4) {
		t.Fatalf("Fetch of a JPEG with MP4 verification: err = %v, want permanent wrapping ErrNotMP4", err)
	}
	if got, want := rec.count(), 1; got != want {
		t.Errorf("Verify calls = %d, want %d", got, want)
	}
	assertNoFinal(t, dir, "b.mp4")
	assertNoPartial(t, dir)
}

func TestFetchResumes(t *testing.T) {
	t.Parallel()
	v1 := payload(2, 2<<20+5)
	v2 := payload(3, 2<<20+999)
	half := len(v1) / 2
	tests := []struct {
		name string
		// second serves the request after the first one dropped the
		// connection half-way through v1.
		second      func(w http.ResponseWriter, r *http.Request)
		want        []byte
		wantResumed bool
	}{
		{
			name:        "range honoured",
			second:      func(w http.ResponseWriter, r *http.Request) { serve(w, r, `"v1"`, v1) },
			want:        v1,
			wantResumed: true,
		},
		{
			name: "range ignored",
			second: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(v1)))
				_, _ = w.Write(v1)
			},
			want: v1,
		},
		{
			name:   "etag changed",
			second: func(w http.ResponseWriter, r *http.Request) { serve(w, r, `"v2"`, v2) },
			want:   v2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if rec.add(r) == 1 {
					dropAfter(t, w, `"v1"`, v1, half)
					return
				}
				tt.second(w, r)
			}))
			defer srv.Close()
			dir := t.TempDir()
			res, err := newTestClient(t, nil).Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			assertFile(t, res, dir, "f.mp4", tt.want)
			if got, want := res.Resumed, tt.wantResumed; got != want {
				t.Errorf("Resumed = %v, want %v", got, want)
			}
			if got, want := rec.count(), 2; got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
			if got, want := rec.header(1, "Range"), fmt.Sprintf("bytes=%d-", half); got != want {
				t.Errorf("second request Range = %q, want %q", got, want)
			}
			if got, want := rec.header(1, "If-Range"), `"v1"`; got != want {
				t.Errorf("second request If-Range = %q, want %q", got, want)
			}
		})
	}
}

func TestFetchResumesPartialFromEarlierProcess(t *testing.T) {
	t.Parallel()
	body := payload(4, 1<<20+3)
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		serve(w, r, `"v1"`, body)
	}))
	defer srv.Close()
	url := srv.URL + "/f"

	// What a killed process leaves: a prefix and its sidecar.
	dir := t.TempDir()
	const have = 300_000
	if err := os.MkdirAll(filepath.Join(dir, partialDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, partialDir, "f.mp4"), body[:have], 0o644); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"url":%q,"etag":"\"v1\"","total":%d}`, url, len(body))
	if err := os.WriteFile(filepath.Join(dir, partialDir, "f.mp4.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}

	res, err := newTestClient(t, nil).Fetch(context.Background(), Request{URL: url, Dir: dir, Name: "f.mp4"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "f.mp4", body)
	if !res.Resumed {
		t.Error("Resumed = false, want true")
	}
	if got, want := rec.header(0, "Range"), fmt.Sprintf("bytes=%d-", have); got != want {
		t.Errorf("Range = %q, want %q", got, want)
	}
}

func TestFetchCompletePartialIsFinishedWithoutDownload(t *testing.T) {
	t.Parallel()
	body := payload(12, 70_000)
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		serve(w, r, `"v1"`, body)
	}))
	defer srv.Close()
	url := srv.URL + "/f"
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, partialDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, partialDir, "f.mp4"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"url":%q,"etag":"\"v1\"","contentType":"video/mp4","total":%d}`, url, len(body))
	if err := os.WriteFile(filepath.Join(dir, partialDir, "f.mp4.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := newTestClient(t, nil).Fetch(context.Background(), Request{URL: url, Dir: dir, Name: "f.mp4"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "f.mp4", body)
	if got, want := res.ContentType, "video/mp4"; got != want {
		t.Errorf("ContentType = %q, want %q", got, want)
	}
	if got, want := rec.count(), 0; got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
}

func TestFetchBadContentRangeRestarts(t *testing.T) {
	t.Parallel()
	body := payload(13, 400_000)
	half := len(body) / 2
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch rec.add(r) {
		case 1:
			dropAfter(t, w, `"v1"`, body, half)
		case 2:
			// A broken server: 206 starting at the wrong offset.
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(body)
		default:
			serve(w, r, `"v1"`, body)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	res, err := newTestClient(t, nil).Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "f.mp4", body)
	if got, want := rec.count(), 3; got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
	if got := rec.header(2, "Range"); got != "" {
		t.Errorf("request after a bad Content-Range asked Range %q, want a clean restart", got)
	}
	if res.Resumed {
		t.Error("Resumed = true after a clean restart")
	}
}

func TestFetchPartialWithoutSidecarRestarts(t *testing.T) {
	t.Parallel()
	body := payload(5, 100_000)
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		serve(w, r, `"v1"`, body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, partialDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Junk of unknown origin must not be stitched to the real bytes.
	if err := os.WriteFile(filepath.Join(dir, partialDir, "f.mp4"), []byte("junk junk junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := newTestClient(t, nil).Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "f.mp4", body)
	if got := rec.header(0, "Range"); got != "" {
		t.Errorf("Range = %q, want none", got)
	}
}

func TestFetchIdleTimeoutResumes(t *testing.T) {
	t.Parallel()
	body := payload(6, 1<<20)
	half := len(body) / 2
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec.add(r) == 1 {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body[:half])
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done() // stall until the client gives up
			return
		}
		serve(w, r, `"v1"`, body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	start := time.Now()
	res, err := newTestClient(t, func(c *Config) { c.IdleReadTimeout = 300 * time.Millisecond }).
		Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	assertFile(t, res, dir, "f.mp4", body)
	if !res.Resumed {
		t.Error("Resumed = false, want true")
	}
	if got, want := rec.header(1, "Range"), fmt.Sprintf("bytes=%d-", half); got != want {
		t.Errorf("Range after idle timeout = %q, want %q", got, want)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("finished in %v, before the idle timeout could fire", elapsed)
	}
}

func TestFetchPermanentStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusNotFound, http.StatusGone, http.StatusForbidden, http.StatusBadRequest, http.StatusUnauthorized} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.add(r)
				http.Error(w, "no", code)
			}))
			defer srv.Close()
			dir := t.TempDir()
			_, err := newTestClient(t, nil).Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
			if !IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(code)) {
				t.Errorf("error %q does not name the status", err)
			}
			if got, want := rec.count(), 1; got != want {
				t.Errorf("requests = %d, want %d (no retries)", got, want)
			}
			assertNoFinal(t, dir, "f.mp4")
			assertNoPartial(t, dir)
		})
	}
}

func TestFetchTransientStatus(t *testing.T) {
	t.Parallel()
	body := payload(7, 50_000)
	tests := []struct {
		name         string
		failures     int
		status       int
		retryAfter   string
		attempts     int
		wantErr      bool
		wantRequests int
		wantRetry    time.Duration
		minElapsed   time.Duration
	}{
		{name: "503 twice then 200", failures: 2, status: 503, attempts: 4, wantRequests: 3},
		{name: "429 honours Retry-After", failures: 1, status: 429, retryAfter: "1", attempts: 4, wantRequests: 2, minElapsed: time.Second},
		{name: "long Retry-After goes back to the caller", failures: 5, status: 429, retryAfter: "120", attempts: 4, wantErr: true, wantRequests: 1, wantRetry: 120 * time.Second},
		{name: "attempts exhausted", failures: 10, status: 502, attempts: 3, wantErr: true, wantRequests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if rec.add(r) <= tt.failures {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					http.Error(w, "busy", tt.status)
					return
				}
				serve(w, r, `"v1"`, body)
			}))
			defer srv.Close()
			dir := t.TempDir()
			start := time.Now()
			res, err := newTestClient(t, func(c *Config) { c.Attempts = tt.attempts }).
				Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
			if got, want := rec.count(), tt.wantRequests; got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
			if elapsed := time.Since(start); elapsed < tt.minElapsed {
				t.Errorf("elapsed %v, want at least %v", elapsed, tt.minElapsed)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				assertFile(t, res, dir, "f.mp4", body)
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Permanent {
				t.Fatalf("err = %v, want transient *Error", err)
			}
			if got, want := e.RetryAfter, tt.wantRetry; got != want {
				t.Errorf("RetryAfter = %v, want %v", got, want)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			assertNoFinal(t, dir, "f.mp4")
		})
	}
}

func TestFetchTooLarge(t *testing.T) {
	t.Parallel()
	body := payload(8, 200_000)
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"by Content-Length", func(w http.ResponseWriter, r *http.Request) { serve(w, r, `"v1"`, body) }},
		{"by stream (chunked)", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(body); i += 10_000 {
				_, _ = w.Write(body[i : i+10_000])
				_ = http.NewResponseController(w).Flush()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.add(r)
				tt.handler(w, r)
			}))
			defer srv.Close()
			dir := t.TempDir()
			_, err := newTestClient(t, func(c *Config) { c.MaxBytes = 100_000 }).
				Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
			if !IsPermanent(err) || !strings.Contains(err.Error(), "too large") {
				t.Fatalf("err = %v, want permanent too large", err)
			}
			if got, want := rec.count(), 1; got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
			assertNoFinal(t, dir, "f.mp4")
			assertNoPartial(t, dir)
		})
	}
}

func TestFetchShortBodyExhaustsAttempts(t *testing.T) {
	t.Parallel()
	body := payload(9, 100_000)
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		// No validator: nothing can be resumed, every attempt restarts.
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:1000])
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	_, err := newTestClient(t, func(c *Config) { c.Attempts = 2 }).
		Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
	if err == nil || IsPermanent(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if got, want := rec.count(), 2; got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
	if got := rec.header(1, "Range"); got != "" {
		t.Errorf("Range without a validator = %q, want none", got)
	}
	assertNoFinal(t, dir, "f.mp4")
}

func TestFetchConcurrentSameFile(t *testing.T) {
	t.Parallel()
	body := payload(10, 500_000)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:1000])
		_ = http.NewResponseController(w).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		_, _ = w.Write(body[1000:])
	}))
	defer srv.Close()
	c := newTestClient(t, nil)
	dir := t.TempDir()
	req := Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"}

	type outcome struct {
		res Result
		err error
	}
	first := make(chan outcome, 1)
	go func() {
		res, err := c.Fetch(context.Background(), req)
		first <- outcome{res, err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("first fetch never reached the server")
	}

	_, err := c.Fetch(context.Background(), req)
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "in progress elsewhere") {
		t.Errorf("second Fetch err = %v, want transient 'in progress elsewhere'", err)
	}

	// Another process would hold its own open file description; so does
	// a second open here.
	f, err := os.Open(filepath.Join(dir, partialDir, "f.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("flock from another descriptor = %v, want EWOULDBLOCK", err)
	}
	f.Close()

	close(release)
	out := <-first
	if out.err != nil {
		t.Fatalf("first Fetch: %v", out.err)
	}
	assertFile(t, out.res, dir, "f.mp4", body)
}

func TestFetchInvalidRequest(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "../escape.mp4", "a/b.mp4", `a\b.mp4`, "x..y", partialDir, ".hidden", "v.mp4.json", "v.json.tmp"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Fetch(context.Background(), Request{URL: "http://127.0.0.1:1/f", Dir: dir, Name: name})
			if !IsPermanent(err) || !strings.Contains(err.Error(), "invalid file name") {
				t.Errorf("err = %v, want permanent invalid file name", err)
			}
		})
	}
}

func TestFetchTooManyRedirects(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rec.add(r)
		http.Redirect(w, r, fmt.Sprintf("/hop%d", n), http.StatusFound)
	}))
	defer srv.Close()
	dir := t.TempDir()
	_, err := newTestClient(t, func(c *Config) { c.MaxRedirects = 3 }).
		Fetch(context.Background(), Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"})
	if !IsPermanent(err) || !strings.Contains(err.Error(), "too many redirects") {
		t.Fatalf("err = %v, want permanent too many redirects", err)
	}
	if got, want := rec.count(), 4; got != want {
		t.Errorf("requests = %d, want %d (original + 3 redirects)", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, hosts := range [][]string{nil, {""}, {"*."}, {"a/b"}, {"user@host"}, {"*.*.com"}} {
		if _, err := New(Config{AllowedHosts: hosts}); err == nil {
			t.Errorf("New(AllowedHosts=%q) succeeded, want error", hosts)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// BenchmarkCopy measures a whole Fetch of a 256 MiB file from a loopback
// server: network read, hashing, writing and the final fsync.
func BenchmarkCopy(b *testing.B) {
	const size = 256 << 20
	chunk := payload(11, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, err := New(Config{AllowedHosts: []string{"127.0.0.1"}, AllowPrivateNetworks: true})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		res, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/big", Dir: dir, Name: "big.bin"})
		if err != nil {
			b.Fatal(err)
		}
		if res.Bytes != size {
			b.Fatalf("Bytes = %d, want %d", res.Bytes, size)
		}
		if err := os.Remove(res.Path); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in               string
		start, end, size int64
		wantErr          bool
	}{
		{in: "bytes 100-199/200", start: 100, end: 199, size: 200},
		{in: "bytes 0-0/1", start: 0, end: 0, size: 1},
		{in: "bytes 100-199/*", wantErr: true},
		{in: "bytes 100-199/150", wantErr: true},
		{in: "bytes 200-100/300", wantErr: true},
		{in: "items 0-1/2", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		start, end, size, err := parseContentRange(tt.in)
		if got, want := err != nil, tt.wantErr; got != want {
			t.Errorf("parseContentRange(%q) err = %v, want error %v", tt.in, err, want)
			continue
		}
		if err == nil && (start != tt.start || end != tt.end || size != tt.size) {
			t.Errorf("parseContentRange(%q) = %d-%d/%d, want %d-%d/%d", tt.in, start, end, size, tt.start, tt.end, tt.size)
		}
	}
}

func TestFetchCancelledKeepsPartialForLater(t *testing.T) {
	t.Parallel()
	body := payload(14, 1<<20)
	half := len(body) / 2
	var rec recorder
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec.add(r) == 1 {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body[:half])
			_ = http.NewResponseController(w).Flush()
			close(sent)
			<-r.Context().Done()
			return
		}
		serve(w, r, `"v1"`, body)
	}))
	defer srv.Close()
	c := newTestClient(t, nil)
	dir := t.TempDir()
	req := Request{URL: srv.URL + "/f", Dir: dir, Name: "f.mp4"}
	partialPath := filepath.Join(dir, partialDir, "f.mp4")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sent
		cancel() // the process is going away mid-body
	}()
	_, err := c.Fetch(ctx, req)
	if err == nil || IsPermanent(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Fetch err = %v, want transient wrapping context.Canceled", err)
	}
	assertNoFinal(t, dir, "f.mp4")
	st, err := os.Stat(partialPath)
	if err != nil {
		t.Fatalf("partial file gone after cancellation: %v", err)
	}
	kept := st.Size()
	if kept > int64(half) {
		t.Errorf("partial size = %d, more than the %d bytes sent", kept, half)
	}

	res, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	assertFile(t, res, dir, "f.mp4", body)
	wantRange := ""
	if kept > 0 {
		wantRange = fmt.Sprintf("bytes=%d-", kept)
	}
	if got := rec.header(1, "Range"); got != wantRange {
		t.Errorf("Range = %q, want %q", got, wantRange)
	}
	if got, want := res.Resumed, kept > 0; got != want {
		t.Errorf("Resumed = %v, want %v", got, want)
	}
}
