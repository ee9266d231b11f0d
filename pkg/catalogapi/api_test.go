package catalogapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/catalogapi"
	"github.com/veo4k/veo4k/pkg/storage"
)

// env is a real SQLite catalog and real storage under one temporary data dir.
type env struct {
	dir   string
	cat   *catalog.SQLite
	store *storage.Local
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := storage.OpenLocal(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.OpenSQLite(t.Context(), filepath.Join(dir, "data", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	return &env{dir: dir, cat: cat, store: store}
}

// put stores content as file name of entry k and returns its catalog record.
func (e *env) put(t *testing.T, k catalog.Key, kind catalog.Kind, name, contentType string, content []byte) catalog.File {
	t.Helper()
	dir, err := e.store.EntryDir(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
		t.Fatal(err)
	}
	loc, err := e.store.Location(k, name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	return catalog.File{
		Kind: kind, Name: name, Bytes: int64(len(content)), SHA256: hex.EncodeToString(sum[:]),
		ContentType: contentType, SourceURL: "https://file.aiquickdraw.com/v/" + name, Location: loc,
	}
}

func (e *env) entry(t *testing.T, k catalog.Key, s catalog.Status, msg string, files ...catalog.File) {
	t.Helper()
	if _, err := e.cat.Update(t.Context(), k, func(en *catalog.Entry) error {
		en.To(s, msg)
		en.Files = files
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) api(cfg catalogapi.Config) *catalogapi.API {
	cfg.Catalog, cfg.Storage = e.cat, e.store
	return catalogapi.New(cfg)
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	return v
}

// wantError checks a JSON error answer.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status = %d, want %d (body %q)", rec.Code, code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	body := decode[map[string]string](t, rec)
	if body["error"] == "" {
		t.Errorf("error body %q has no error message", rec.Body.String())
	}
}

type page struct {
	Items []struct {
		TaskID string `json:"taskId"`
		Index  int    `json:"index"`
		Status string `json:"status"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

func TestListVideos(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	statuses := []catalog.Status{catalog.Ready, catalog.Failed, catalog.Ready, catalog.Pending, catalog.Ready}
	var all, ready []string
	for i, s := range statuses {
		k := catalog.Key{TaskID: fmt.Sprintf("task_%d", i), Index: 0}
		e.entry(t, k, s, "")
		all = append([]string{k.TaskID}, all...) // newest first
		if s == catalog.Ready {
			ready = append([]string{k.TaskID}, ready...)
		}
	}
	h := e.api(catalogapi.Config{})

	for _, tt := range []struct {
		name  string
		query string
		want  []string
	}{
		{"all", "", all},
		{"ready", "&status=ready", ready},
		{"failed", "&status=failed", []string{"task_1"}},
		{"downloading", "&status=downloading", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				rec := do(t, h, http.MethodGet, "/v1/videos?limit=2&cursor="+cursor+tt.query, nil)
				if rec.Code != http.StatusOK {
					t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
				}
				// The page always has items (possibly empty) and nextCursor.
				raw := decode[map[string]json.RawMessage](t, rec)
				if got, want := slices.Sorted(maps.Keys(raw)), []string{"items", "nextCursor"}; !slices.Equal(got, want) {
					t.Fatalf("page fields = %v, want %v", got, want)
				}
				if string(raw["items"]) == "null" {
					t.Error("items is null, want []")
				}
				p := decode[page](t, rec)
				if len(p.Items) > 2 {
					t.Fatalf("page of %d items, limit 2", len(p.Items))
				}
				for _, it := range p.Items {
					got = append(got, it.TaskID)
				}
				if p.NextCursor == "" {
					break
				}
				cursor = p.NextCursor
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("listed %v, want %v", got, tt.want)
			}
		})
	}

	for _, target := range []string{
		"/v1/videos?status=done",
		"/v1/videos?limit=x",
		"/v1/videos?limit=-1",
		"/v1/videos?limit=0",
		"/v1/videos?cursor=garbage!",
		"/v1/videos?cursor=e30",
	} {
		t.Run("bad "+target, func(t *testing.T) {
			t.Parallel()
			wantError(t, do(t, h, http.MethodGet, target, nil), http.StatusBadRequest)
		})
	}

	t.Run("limit above max is capped", func(t *testing.T) {
		t.Parallel()
		rec := do(t, h, http.MethodGet, "/v1/videos?limit=100000", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
		}
		if got, want := len(decode[page](t, rec).Items), len(all); got != want {
			t.Errorf("items = %d, want %d", got, want)
		}
	})
}

func TestGetVideo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k := catalog.Key{TaskID: "veo_task_shape", Index: 1}
	video := e.put(t, k, catalog.Video, "video.mp4", "video/mp4", []byte("fake mp4 bytes"))
	video.Width, video.Height, video.DurationMS, video.Codec = 2160, 3840, 8000, "avc1"
	image := e.put(t, k, catalog.Image, "image.jpg", "image/jpeg", []byte("fake jpeg"))
	image.Width, image.Height = 640, 360
	e.entry(t, k, catalog.Ready, "", video, image)
	h := e.api(catalogapi.Config{})

	rec := do(t, h, http.MethodGet, "/v1/videos/veo_task_shape?index=1", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
	}
	got := decode[map[string]any](t, rec)
	wantFields := []string{"files", "index", "message", "receivedAt", "status", "taskId", "updatedAt"}
	if fields := slices.Sorted(maps.Keys(got)); !slices.Equal(fields, wantFields) {
		t.Errorf("entry fields = %v, want %v", fields, wantFields)
	}
	if got["taskId"] != "veo_task_shape" || got["index"] != 1.0 || got["status"] != "ready" || got["message"] != "" {
		t.Errorf("entry = %v", got)
	}
	for _, f := range []string{"receivedAt", "updatedAt"} {
		s, _ := got[f].(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !strings.HasSuffix(s, "Z") || time.Since(ts) > time.Minute {
			t.Errorf("%s = %q (%v), want a recent RFC 3339 UTC time", f, s, err)
		}
	}
	files, _ := got["files"].([]any)
	if len(files) != 2 {
		t.Fatalf("files = %v, want 2", got["files"])
	}
	common := []string{"bytes", "contentType", "durationMs", "height", "kind", "name", "sha256", "sourceUrl", "width"}
	vf, _ := files[0].(map[string]any)
	if fields, want := slices.Sorted(maps.Keys(vf)), slices.Sorted(slices.Values(append(slices.Clone(common), "codec", "is4K"))); !slices.Equal(fields, want) {
		t.Errorf("video fields = %v, want %v", fields, want)
	}
	wantVideo := map[string]any{
		"kind": "video", "name": "video.mp4", "bytes": float64(video.Bytes), "sha256": video.SHA256,
		"contentType": "video/mp4", "sourceUrl": video.SourceURL, "width": 2160.0, "height": 3840.0,
		"durationMs": 8000.0, "codec": "avc1", "is4K": true, // portrait 4K counts
	}
	if !maps.Equal(vf, wantVideo) {
		t.Errorf("video = %v\nwant %v", vf, wantVideo)
	}
	imf, _ := files[1].(map[string]any)
	if fields := slices.Sorted(maps.Keys(imf)); !slices.Equal(fields, common) {
		t.Errorf("image fields = %v, want %v", fields, common)
	}
	if imf["kind"] != "image" || imf["name"] != "image.jpg" {
		t.Errorf("image = %v", imf)
	}

	// Location is internal: it must not leak.
	if strings.Contains(rec.Body.String(), "files/veo_task_shape") {
		t.Errorf("body leaks the storage location: %s", rec.Body.String())
	}

	t.Run("default index 0 absent", func(t *testing.T) {
		t.Parallel()
		wantError(t, do(t, h, http.MethodGet, "/v1/videos/veo_task_shape", nil), http.StatusNotFound)
	})
	t.Run("unknown task", func(t *testing.T) {
		t.Parallel()
		wantError(t, do(t, h, http.MethodGet, "/v1/videos/nobody?index=0", nil), http.StatusNotFound)
	})
	t.Run("empty files is an array", func(t *testing.T) {
		t.Parallel()
		pk := catalog.Key{TaskID: "pending_one", Index: 0}
		e.entry(t, pk, catalog.Pending, "")
		rec := do(t, h, http.MethodGet, "/v1/videos/pending_one", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d", rec.Code)
		}
		if !strings.Contains(rec.Body.String(), `"files":[]`) {
			t.Errorf("body %s, want files: []", rec.Body.String())
		}
	})
	for _, target := range []string{
		"/v1/videos/a.b",
		"/v1/videos/" + strings.Repeat("a", 129),
		"/v1/videos/a%2Fb",
		"/v1/videos/%2e%2e",
		"/v1/videos/veo_task_shape?index=-1",
		"/v1/videos/veo_task_shape?index=100",
		"/v1/videos/veo_task_shape?index=x",
	} {
		t.Run("invalid "+target, func(t *testing.T) {
			t.Parallel()
			wantError(t, do(t, h, http.MethodGet, target, nil), http.StatusBadRequest)
		})
	}
}

func TestGetFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := []byte("0123456789abcdefghij")
	k := catalog.Key{TaskID: "task_ready", Index: 0}
	video := e.put(t, k, catalog.Video, "video.mp4", "video/mp4", content)
	e.entry(t, k, catalog.Ready, "", video)
	// A file on disk that the catalog does not list.
	e.put(t, k, catalog.Video, "unlisted.mp4", "video/mp4", []byte("unlisted"))

	// A downloading entry whose file is on disk: not to be served.
	dk := catalog.Key{TaskID: "task_downloading", Index: 0}
	partial := e.put(t, dk, catalog.Video, "video.mp4", "video/mp4", []byte("partial"))
	e.entry(t, dk, catalog.Downloading, "", partial)

	// A ready entry whose file on disk differs in size from the catalog.
	bk := catalog.Key{TaskID: "task_damaged", Index: 0}
	damaged := e.put(t, bk, catalog.Video, "video.mp4", "video/mp4", []byte("short"))
	damaged.Bytes = 1000
	e.entry(t, bk, catalog.Ready, "", damaged)

	secret := []byte("TOP SECRET outside the data dir")
	if err := os.WriteFile(filepath.Join(e.dir, "secret.txt"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	h := e.api(catalogapi.Config{})
	etag := `"` + video.SHA256 + `"`

	t.Run("full", func(t *testing.T) {
		t.Parallel()
		rec := do(t, h, http.MethodGet, "/v1/videos/task_ready/files/video.mp4?index=0", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
		}
		if got := rec.Body.String(); got != string(content) {
			t.Errorf("body = %q, want %q", got, content)
		}
		for hdr, want := range map[string]string{
			"Content-Type":   "video/mp4",
			"ETag":           etag,
			"Accept-Ranges":  "bytes",
			"Content-Length": fmt.Sprint(len(content)),
		} {
			if got := rec.Header().Get(hdr); got != want {
				t.Errorf("%s = %q, want %q", hdr, got, want)
			}
		}
	})
	t.Run("head", func(t *testing.T) {
		t.Parallel()
		rec := do(t, h, http.MethodHead, "/v1/videos/task_ready/files/video.mp4", nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Length") != fmt.Sprint(len(content)) {
			t.Errorf("HEAD status %d, length %q", rec.Code, rec.Header().Get("Content-Length"))
		}
	})

	ranges := []struct {
		name, rng, ifRange string
		code               int
		body, contentRange string
	}{
		{"range", "bytes=2-5", "", http.StatusPartialContent, "2345", fmt.Sprintf("bytes 2-5/%d", len(content))},
		{"suffix range", "bytes=-3", "", http.StatusPartialContent, "hij", fmt.Sprintf("bytes 17-19/%d", len(content))},
		{"open range", "bytes=18-", "", http.StatusPartialContent, "ij", fmt.Sprintf("bytes 18-19/%d", len(content))},
		{"if-range matches", "bytes=0-0", etag, http.StatusPartialContent, "0", fmt.Sprintf("bytes 0-0/%d", len(content))},
		{"if-range stale", "bytes=0-0", `"other"`, http.StatusOK, string(content), ""},
		{"unsatisfiable", "bytes=100-200", "", http.StatusRequestedRangeNotSatisfiable, "", fmt.Sprintf("bytes */%d", len(content))},
	}
	for _, tt := range ranges {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hdr := map[string]string{"Range": tt.rng}
			if tt.ifRange != "" {
				hdr["If-Range"] = tt.ifRange
			}
			rec := do(t, h, http.MethodGet, "/v1/videos/task_ready/files/video.mp4", hdr)
			if rec.Code != tt.code {
				t.Fatalf("status = %d, want %d", rec.Code, tt.code)
			}
			if tt.code != http.StatusRequestedRangeNotSatisfiable {
				if got := rec.Body.String(); got != tt.body {
					t.Errorf("body = %q, want %q", got, tt.body)
				}
			}
			if got := rec.Header().Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range = %q, want %q", got, tt.contentRange)
			}
		})
	}

	t.Run("if-none-match", func(t *testing.T) {
		t.Parallel()
		rec := do(t, h, http.MethodGet, "/v1/videos/task_ready/files/video.mp4", map[string]string{"If-None-Match": etag})
		if rec.Code != http.StatusNotModified {
			t.Errorf("status = %d, want 304", rec.Code)
		}
	})

	notFound := []string{
		"/v1/videos/task_downloading/files/video.mp4",           // not ready
		"/v1/videos/task_ready/files/unlisted.mp4",              // on disk, not in the catalog
		"/v1/videos/task_ready/files/video.mp4?index=1",         // no such entry
		"/v1/videos/nobody/files/video.mp4",                     // no such entry
		"/v1/videos/task_ready/files/..%2F..%2F..%2Fsecret.txt", // traversal
		"/v1/videos/task_ready/files/%2e%2e",
		"/v1/videos/task_ready/files/..",
		"/v1/videos/task_ready/files/%2Fetc%2Fpasswd",
		"/v1/videos/task_ready/files/..%5C..%5Csecret.txt",
		"/v1/videos/task_ready/files/.hidden",
		"/v1/videos/task_ready/files/../../../secret.txt",
	}
	for _, target := range notFound {
		t.Run("not found "+target, func(t *testing.T) {
			t.Parallel()
			rec := do(t, h, http.MethodGet, target, nil)
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusBadRequest {
				t.Errorf("status = %d, want 404 or 400 (body %q)", rec.Code, rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "SECRET") || strings.Contains(rec.Body.String(), "partial") ||
				strings.Contains(rec.Body.String(), "unlisted") {
				t.Errorf("body leaks a file: %q", rec.Body.String())
			}
		})
	}
	t.Run("invalid task id", func(t *testing.T) {
		t.Parallel()
		wantError(t, do(t, h, http.MethodGet, "/v1/videos/..%2F..%2Fdata/files/secret.txt", nil), http.StatusBadRequest)
	})
	t.Run("damaged file never served", func(t *testing.T) {
		t.Parallel()
		rec := do(t, h, http.MethodGet, "/v1/videos/task_damaged/files/video.mp4", nil)
		wantError(t, rec, http.StatusInternalServerError)
		if strings.Contains(rec.Body.String(), "short") {
			t.Errorf("damaged content served: %q", rec.Body.String())
		}
	})
}

// fakeDeadLetters is an in-memory DeadLetters.
type fakeDeadLetters struct {
	mu       sync.Mutex
	items    []catalogapi.DeadLetter
	replayed []catalog.Key
	err      error
}

func (f *fakeDeadLetters) List(context.Context) ([]catalogapi.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.items), f.err
}

func (f *fakeDeadLetters) Replay(_ context.Context, k catalog.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.items {
		if d.TaskID == k.TaskID && d.Index == k.Index {
			f.items = slices.Delete(f.items, i, i+1)
			f.replayed = append(f.replayed, k)
			return nil
		}
	}
	return fmt.Errorf("replaying %v: %w", k, catalog.ErrNotFound)
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	failedAt := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fake := &fakeDeadLetters{items: []catalogapi.DeadLetter{
		{TaskID: "dead_1", Index: 0, Reason: "retries exhausted", Attempts: 10, FailedAt: failedAt},
		{TaskID: "dead_2", Index: 3, Reason: "timeout", Attempts: 10, FailedAt: failedAt},
	}}
	h := e.api(catalogapi.Config{DeadLetters: fake})

	rec := do(t, h, http.MethodGet, "/v1/deadletters", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("list status = %d", rec.Code)
	}
	list := decode[struct {
		Items []map[string]any `json:"items"`
	}](t, rec)
	if len(list.Items) != 2 {
		t.Fatalf("items = %v", list.Items)
	}
	want := map[string]any{"taskId": "dead_2", "index": 3.0, "reason": "timeout", "attempts": 10.0, "failedAt": "2026-12-01T10:00:00Z"}
	if !maps.Equal(list.Items[1], want) {
		t.Errorf("item = %v, want %v", list.Items[1], want)
	}

	rec = do(t, h, http.MethodPost, "/v1/deadletters/dead_2/replay?index=3", nil)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("replay status = %d: %s", rec.Code, rec.Body.String())
	}
	body := decode[map[string]any](t, rec)
	if body["status"] != "replayed" || body["taskId"] != "dead_2" || body["index"] != 3.0 {
		t.Errorf("replay body = %v", body)
	}
	fake.mu.Lock()
	replayed := slices.Clone(fake.replayed)
	fake.mu.Unlock()
	if want := []catalog.Key{{TaskID: "dead_2", Index: 3}}; !slices.Equal(replayed, want) {
		t.Errorf("replayed %v, want %v", replayed, want)
	}

	wantError(t, do(t, h, http.MethodPost, "/v1/deadletters/dead_2/replay?index=3", nil), http.StatusNotFound)
	wantError(t, do(t, h, http.MethodPost, "/v1/deadletters/dead_1/replay?index=1", nil), http.StatusNotFound)
	wantError(t, do(t, h, http.MethodPost, "/v1/deadletters/bad.id/replay", nil), http.StatusBadRequest)
	wantError(t, do(t, h, http.MethodGet, "/v1/deadletters/dead_1/replay", nil), http.StatusMethodNotAllowed)

	t.Run("list failure", func(t *testing.T) {
		t.Parallel()
		h := e.api(catalogapi.Config{DeadLetters: &fakeDeadLetters{err: errors.New("nats down")}})
		rec := do(t, h, http.MethodGet, "/v1/deadletters", nil)
		wantError(t, rec, http.StatusInternalServerError)
		if strings.Contains(rec.Body.String(), "nats down") {
			t.Errorf("internal error detail leaked: %s", rec.Body.String())
		}
	})
	t.Run("empty list is an array", func(t *testing.T) {
		t.Parallel()
		h := e.api(catalogapi.Config{DeadLetters: &fakeDeadLetters{}})
		rec := do(t, h, http.MethodGet, "/v1/deadletters", nil)
		if got, want := strings.TrimSpace(rec.Body.String()), `{"items":[]}`; got != want {
			t.Errorf("body = %s, want %s", got, want)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		t.Parallel()
		h := e.api(catalogapi.Config{})
		wantError(t, do(t, h, http.MethodGet, "/v1/deadletters", nil), http.StatusNotImplemented)
		wantError(t, do(t, h, http.MethodPost, "/v1/deadletters/dead_1/replay", nil), http.StatusNotImplemented)
	})
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "veo4k_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(7)

	var mu sync.Mutex
	var readyErr error
	h := e.api(catalogapi.Config{
		Gatherer: reg,
		Ready: func(ctx context.Context) error {
			if err := e.cat.Ping(ctx); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return readyErr
		},
	})

	if rec := do(t, h, http.MethodGet, "/healthz", nil); rec.Code != http.StatusOK {
		t.Errorf("healthz = %d", rec.Code)
	}
	if rec := do(t, h, http.MethodGet, "/readyz", nil); rec.Code != http.StatusOK {
		t.Errorf("readyz = %d: %s", rec.Code, rec.Body.String())
	}
	mu.Lock()
	readyErr = errors.New("not connected to NATS")
	mu.Unlock()
	rec := do(t, h, http.MethodGet, "/readyz", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("failing readyz = %d, want 503", rec.Code)
	}
	if got := decode[map[string]string](t, rec); got["reason"] != "not connected to NATS" || got["status"] != "unready" {
		t.Errorf("failing readyz body = %v", got)
	}

	rec = do(t, h, http.MethodGet, "/metrics", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "veo4k_test_total 7") {
		t.Errorf("metrics = %d: %s", rec.Code, rec.Body.String())
	}

	wantError(t, do(t, h, http.MethodGet, "/nothing", nil), http.StatusNotFound)
	wantError(t, do(t, h, http.MethodPost, "/v1/videos", nil), http.StatusMethodNotAllowed)

	// A closed catalog makes readiness fail with the reason.
	if err := e.cat.Close(); err != nil {
		t.Fatal(err)
	}
	if rec := do(t, h, http.MethodGet, "/readyz", nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with closed catalog = %d, want 503", rec.Code)
	}
}
