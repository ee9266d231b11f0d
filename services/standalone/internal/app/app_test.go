package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/providersim"
)

// testConfig is the standalone's default configuration on random loopback
// ports, NATS in-process only, data under dir.
func testConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	cfg, err := config.Load([]string{
		"VEO4K_DATA_DIR=" + dir,
		"VEO4K_INGRESS_ADDR=127.0.0.1:0",
		"VEO4K_FETCHER_ADDR=127.0.0.1:0",
		"VEO4K_NATS_LISTEN=off",
		"VEO4K_ACK_WAIT=3s",
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncBuffer is a bytes.Buffer safe for the demo writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a standalone started by start.
type running struct {
	addrs Addrs
	stop  func() error
}

func start(t *testing.T, cfg config.Config, o Options) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	o.OnReady = func(a Addrs) { ready <- a }
	errc := make(chan error, 1)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() { errc <- Run(ctx, cfg, o, log) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case a := <-ready:
		return running{addrs: a, stop: stop}
	case err := <-errc:
		once.Do(func() { cancel(); runErr = err })
		t.Fatalf("standalone did not start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("standalone did not start within 15s")
	}
	return running{}
}

type entry struct {
	TaskID  string `json:"taskId"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Files   []struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
		Bytes  int64  `json:"bytes"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
		Is4K   *bool  `json:"is4K"`
	} `json:"files"`
}

func getEntry(t *testing.T, fetcherAddr, taskID string) (entry, int) {
	t.Helper()
	resp, err := http.Get("http://" + fetcherAddr + "/v1/videos/" + taskID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e entry
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
	}
	return e, resp.StatusCode
}

func waitStatus(t *testing.T, fetcherAddr, taskID, status string) entry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last entry
	for time.Now().Before(deadline) {
		e, code := getEntry(t, fetcherAddr, taskID)
		if code == http.StatusOK {
			last = e
			if e.Status == status {
				return e
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: status %q (%q), want %q", taskID, last.Status, last.Message, status)
	return last
}

// TestDemo runs the README's -demo: every scenario reaches its expected
// final status through signed callbacks, and the catalog API shows them.
func TestDemo(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	r := start(t, testConfig(t, t.TempDir()), Options{Demo: true, Out: out})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "entries settled") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not settle; it printed:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := out.String()
	if strings.Contains(text, "  ! ") || strings.Contains(text, "not accepted") {
		t.Fatalf("a demo scenario ended unexpectedly:\n%s", text)
	}
	want := map[string]string{"ok": "ready", "dup": "ready", "unavailable": "unavailable", "slow": "ready", "dropped": "ready", "hd": "ready", "expired": "failed"}
	resp, err := http.Get("http://" + r.addrs.Fetcher + "/v1/videos?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Items []entry }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if got, want := len(page.Items), len(want); got != want {
		t.Fatalf("catalog lists %d entries, want %d (the duplicate is one entry)", got, want)
	}
	for _, e := range page.Items {
		suffix := e.TaskID[strings.LastIndex(e.TaskID, "-")+1:]
		if got, want := e.Status, want[suffix]; got != want {
			t.Errorf("%s: status %q, want %q", e.TaskID, got, want)
		}
		if suffix == "hd" && (len(e.Files) == 0 || e.Files[0].Is4K == nil || *e.Files[0].Is4K) {
			t.Errorf("%s: the 1080p video is not flagged as not 4K: %+v", e.TaskID, e.Files)
		}
	}
	if !strings.Contains(text, "downloading") {
		t.Errorf("no progress line for the slow download:\n%s", text)
	}
	if err := r.stop(); err != nil {
		t.Errorf("clean shutdown: %v", err)
	}
	if !strings.Contains(out.String(), "veo4k stopped") {
		t.Errorf("no shutdown line after stop:\n%s", out)
	}
}

// TestRestartMidDownloadResumes stops the standalone in the middle of a slow
// download and starts it again on the same data directory: the download
// resumes from the bytes on disk and the file is byte-identical.
func TestRestartMidDownloadResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.HMACKeys = []string{"restart-test-key"}
	cfg.AllowPrivateNetworks = true
	cfg.AllowedHosts = []string{"127.0.0.1"}

	// The provider outlives the standalone's restart.
	sim := providersim.New(providersim.Config{HMACKey: "restart-test-key"})
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); _ = sim.Close() })
	sim.SetPublicURL(hs.URL)

	first := start(t, cfg, Options{})
	task, err := sim.AddTask(providersim.TaskSpec{TaskID: "restart", VideoBytes: 6 << 20,
		CallbackURL: "http://" + first.addrs.Ingress + "/v1/callbacks/4k/restart?index=0",
		Faults:      providersim.Faults{RateBytesPerSec: 2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.SendCallback(t.Context(), "restart", 0); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(dir, "files", "restart", "0", ".partial", "video-0.mp4")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(partial); err == nil && fi.Size() >= 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the download did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if fi, err := os.Stat(partial); err != nil || fi.Size() == 0 {
		t.Fatalf("the partial download did not survive the shutdown: %v", err)
	}

	if err := sim.SetFaults("restart", 0, providersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	second := start(t, cfg, Options{})
	e := waitStatus(t, second.addrs.Fetcher, "restart", "ready")
	if got, want := e.Files[0].SHA256, task.Files[0].SHA256; got != want {
		t.Errorf("catalogued SHA-256 %s, provider's %s", got, want)
	}
	resp, err := http.Get("http://" + second.addrs.Fetcher + "/v1/videos/restart/files/video-0.mp4")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, _ = io.Copy(h, resp.Body)
	resp.Body.Close()
	if got, want := hex.EncodeToString(h.Sum(nil)), task.Files[0].SHA256; got != want {
		t.Errorf("served file SHA-256 %s, provider's %s", got, want)
	}
	st := sim.Stats().Files[strings.TrimPrefix(task.VideoURLs[0], hs.URL)]
	if st.Partial < 1 {
		t.Errorf("video requests %+v: the restart did not resume with Range", st)
	}
	if st.BytesServed >= 2*task.Files[0].Size {
		t.Errorf("%d bytes served for a %d-byte file: fetched twice", st.BytesServed, task.Files[0].Size)
	}
}

func TestClearStartErrors(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests, unlike defer
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"ingress port taken", func(c *config.Config) { c.IngressAddr = taken.Addr().String() }, "ingress cannot listen on " + taken.Addr().String()},
		{"fetcher port taken", func(c *config.Config) { c.FetcherAddr = taken.Addr().String() }, "fetcher API cannot listen on"},
		{"nats port taken", func(c *config.Config) { c.NATSListen = taken.Addr().String() }, "embedded NATS cannot listen on"},
		{"data dir unusable", func(c *config.Config) { c.DataDir = filepath.Join(notADir, "data") }, "data directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, t.TempDir())
			tt.edit(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := Run(ctx, cfg, Options{}, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
