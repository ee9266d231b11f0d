package providersim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRangeAndValidators(t *testing.T) {
	t.Parallel()
	sim, _ := startSim(t, Config{})
	task, err := sim.AddTask(TaskSpec{TaskID: "range", VideoBytes: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	u := task.VideoURLs[0]
	resp, full, err := get(t, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha(full), task.Files[0].SHA256; got != want {
		t.Fatalf("full download sha256 %s, advertised %s", got, want)
	}
	if sum, size, err := sim.FileSHA256("range", 0, "video_0.mp4"); err != nil || sum != task.Files[0].SHA256 || size != 300_000 {
		t.Errorf("FileSHA256 = %s, %d, %v", sum, size, err)
	}
	if got, want := resp.Header.Get("Accept-Ranges"), "bytes"; got != want {
		t.Errorf("Accept-Ranges %q, want %q", got, want)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("ETag %q, Last-Modified %q: want both", etag, resp.Header.Get("Last-Modified"))
	}
	ranges := []struct {
		spec     string
		from, to int
	}{
		{"bytes=0-99", 0, 100},
		{"bytes=1000-70000", 1000, 70001},
		{"bytes=65530-65545", 65530, 65546},
		{"bytes=299000-", 299000, 300000},
		{"bytes=-10", 299990, 300000},
	}
	for _, rg := range ranges {
		t.Run(rg.spec, func(t *testing.T) {
			resp, part, err := get(t, u, map[string]string{"Range": rg.spec})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.StatusCode, http.StatusPartialContent; got != want {
				t.Fatalf("status %d, want %d", got, want)
			}
			if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/300000", rg.from, rg.to-1); got != want {
				t.Errorf("Content-Range %q, want %q", got, want)
			}
			if !bytes.Equal(part, full[rg.from:rg.to]) {
				t.Error("range bytes differ from the full download's")
			}
		})
	}
	validators := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"if-range matching etag", map[string]string{"Range": "bytes=10-19", "If-Range": etag}, http.StatusPartialContent},
		{"if-range stale etag", map[string]string{"Range": "bytes=10-19", "If-Range": `"other"`}, http.StatusOK},
		{"if-none-match", map[string]string{"If-None-Match": etag}, http.StatusNotModified},
		{"unsatisfiable", map[string]string{"Range": "bytes=400000-"}, http.StatusRequestedRangeNotSatisfiable},
	}
	for _, v := range validators {
		t.Run(v.name, func(t *testing.T) {
			resp, _, err := get(t, u, v.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.StatusCode, v.status; got != want {
				t.Errorf("status %d, want %d", got, want)
			}
		})
	}
}

func TestThumbnail(t *testing.T) {
	t.Parallel()
	sim, _ := startSim(t, Config{})
	task, err := sim.AddTask(TaskSpec{TaskID: "thumb", VideoBytes: 100_000, Videos: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(task.ImageURLs), 2; got != want {
		t.Fatalf("%d image URLs, want %d", got, want)
	}
	resp, body, err := get(t, task.ImageURLs[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Header.Get("Content-Type"), "image/jpeg"; got != want {
		t.Errorf("Content-Type %q, want %q", got, want)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("decoding jpeg: %v", err)
	}
	if cfg.Width != thumbWidth || cfg.Height != thumbHeight {
		t.Errorf("thumbnail %dx%d, want %dx%d", cfg.Width, cfg.Height, thumbWidth, thumbHeight)
	}
	if got, want := sha(body), task.Files[3].SHA256; got != want {
		t.Errorf("sha256 %s, advertised %s", got, want)
	}
	none, err := sim.AddTask(TaskSpec{TaskID: "nothumb", VideoBytes: 100_000, NoImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(none.ImageURLs); got != 0 {
		t.Errorf("%d image URLs with NoImages", got)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	sim, _ := startSim(t, Config{DefaultVideoBytes: 200_000})

	t.Run("drop after N bytes, first request only", func(t *testing.T) {
		t.Parallel()
		task := mustAdd(t, sim, TaskSpec{TaskID: "drop-once", Faults: Faults{DropAfterBytes: 5000, DropTimes: 1}})
		resp, body, err := get(t, task.VideoURLs[0], nil)
		if err == nil {
			t.Fatal("no error reading a dropped body")
		}
		if got, want := resp.ContentLength, int64(200_000); got != want {
			t.Errorf("Content-Length %d, want %d", got, want)
		}
		if got, want := len(body), 5000; got != want {
			t.Errorf("got %d bytes before the drop, want %d", got, want)
		}
		_, body, err = get(t, task.VideoURLs[0], map[string]string{"Range": "bytes=5000-"})
		if err != nil {
			t.Fatalf("resumed request: %v", err)
		}
		if got, want := len(body), 195_000; got != want {
			t.Errorf("resumed %d bytes, want %d", got, want)
		}
		st := sim.FileStats(task.VideoURLs[0])
		if st.Drops != 1 || st.Requests != 2 || st.Partial != 1 {
			t.Errorf("stats %+v: want 1 drop, 2 requests, 1 partial", st)
		}
	})
	t.Run("drop every time", func(t *testing.T) {
		t.Parallel()
		task := mustAdd(t, sim, TaskSpec{TaskID: "drop-always", Faults: Faults{DropAfterBytes: 100}})
		for i := range 3 {
			_, body, err := get(t, task.VideoURLs[0], nil)
			if err == nil || len(body) != 100 {
				t.Errorf("request %d: %d bytes, err %v; want 100 bytes and an error", i, len(body), err)
			}
		}
		if got, want := sim.FileStats(task.VideoURLs[0]).Drops, int64(3); got != want {
			t.Errorf("drops %d, want %d", got, want)
		}
	})
	t.Run("range ignored", func(t *testing.T) {
		t.Parallel()
		task := mustAdd(t, sim, TaskSpec{TaskID: "norange", Faults: Faults{IgnoreRange: true}})
		resp, body, err := get(t, task.VideoURLs[0], map[string]string{"Range": "bytes=100-199"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := resp.StatusCode, http.StatusOK; got != want {
			t.Errorf("status %d, want %d", got, want)
		}
		if got, want := len(body), 200_000; got != want {
			t.Errorf("body %d bytes, want %d", got, want)
		}
		if got := resp.Header.Get("Accept-Ranges"); got != "" {
			t.Errorf("Accept-Ranges %q advertised while ignoring ranges", got)
		}
		if got, want := sha(body), task.Files[0].SHA256; got != want {
			t.Errorf("sha256 %s, want %s", got, want)
		}
	})
	t.Run("expired then served again", func(t *testing.T) {
		t.Parallel()
		task := mustAdd(t, sim, TaskSpec{TaskID: "expired", Faults: Faults{Expired: true}})
		for _, u := range append(task.VideoURLs, task.ImageURLs...) {
			resp, _, _ := get(t, u, nil)
			if got, want := resp.StatusCode, http.StatusNotFound; got != want {
				t.Errorf("%s: status %d, want %d", u, got, want)
			}
		}
		if err := sim.SetFaults("expired", 0, Faults{Expired: true, ExpiredStatus: 410}); err != nil {
			t.Fatal(err)
		}
		if resp, _, _ := get(t, task.VideoURLs[0], nil); resp.StatusCode != http.StatusGone {
			t.Errorf("status %d, want 410", resp.StatusCode)
		}
		if err := sim.SetFaults("expired", 0, Faults{}); err != nil {
			t.Fatal(err)
		}
		resp, body, err := get(t, task.VideoURLs[0], nil)
		if err != nil || resp.StatusCode != http.StatusOK || sha(body) != task.Files[0].SHA256 {
			t.Errorf("after clearing expiry: status %d, %d bytes, err %v", resp.StatusCode, len(body), err)
		}
		if got, want := sim.FileStats(task.VideoURLs[0]).Expired, int64(2); got != want {
			t.Errorf("expired answers %d, want %d", got, want)
		}
	})
	t.Run("burst of 5xx before success", func(t *testing.T) {
		t.Parallel()
		task := mustAdd(t, sim, TaskSpec{TaskID: "burst", Faults: Faults{ServerErrors: 3, ServerErrorStatus: 502}})
		var statuses []int
		for range 4 {
			resp, _, _ := get(t, task.VideoURLs[0], nil)
			statuses = append(statuses, resp.StatusCode)
		}
		if got, want := fmt.Sprint(statuses), "[502 502 502 200]"; got != want {
			t.Errorf("statuses %s, want %s", got, want)
		}
		if got, want := sim.FileStats(task.VideoURLs[0]).ServerErrors, int64(3); got != want {
			t.Errorf("server errors %d, want %d", got, want)
		}
	})
	t.Run("not an mp4", func(t *testing.T) {
		t.Parallel()
		task := mustAdd(t, sim, TaskSpec{TaskID: "html", NotMP4: true})
		resp, body, err := get(t, task.VideoURLs[0], nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, err %v", resp.StatusCode, err)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("<html>")) {
			t.Errorf("got %q %q, want an HTML page", resp.Header.Get("Content-Type"), body)
		}
		if got, want := sha(body), task.Files[0].SHA256; got != want {
			t.Errorf("sha256 %s, advertised %s", got, want)
		}
	})
	t.Run("slow download", func(t *testing.T) {
		t.Parallel()
		const rate = 40_000
		task := mustAdd(t, sim, TaskSpec{TaskID: "slow", Faults: Faults{RateBytesPerSec: rate}})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, task.VideoURLs[0], nil)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		elapsed := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read %d bytes, err %v: want the deadline to cut a throttled body", n, err)
		}
		// The server paces bytes by the clock, so it cannot have sent more
		// than rate×elapsed plus one chunk.
		if limit := int64(float64(rate)*elapsed.Seconds()) + rate/20; n > limit || n == 0 {
			t.Errorf("read %d bytes in %s, want between 1 and %d", n, elapsed, limit)
		}
	})
}

func mustAdd(t *testing.T, sim *Sim, spec TaskSpec) Task {
	t.Helper()
	task, err := sim.AddTask(spec)
	if err != nil {
		t.Fatalf("adding task %s: %v", spec.TaskID, err)
	}
	return task
}

func TestAddTaskErrors(t *testing.T) {
	t.Parallel()
	sim := New(Config{DefaultVideoBytes: 100_000})
	defer sim.Close()
	mustAdd(t, sim, TaskSpec{TaskID: "dup"})
	tests := []struct {
		name string
		spec TaskSpec
		want error
	}{
		{"duplicate", TaskSpec{TaskID: "dup"}, ErrExists},
		{"no id", TaskSpec{}, ErrInvalid},
		{"slash", TaskSpec{TaskID: "a/b"}, ErrInvalid},
		{"callback kind", TaskSpec{TaskID: "k", Callback: "maybe"}, ErrInvalid},
		{"signature", TaskSpec{TaskID: "s", Signature: "weird"}, ErrInvalid},
		{"too small", TaskSpec{TaskID: "small", VideoBytes: 10}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := sim.AddTask(tc.spec); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := sim.Task("missing", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Task(missing): %v", err)
	}
}
