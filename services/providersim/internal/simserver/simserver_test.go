package simserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/signature"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9090" || c.CallbackURL != "http://127.0.0.1:8080/v1/callbacks/4k" || c.VideoBytes != 5<<20 || c.CompleteAfter != 5*time.Second {
		t.Errorf("defaults %+v", c)
	}
	c, err = LoadConfig([]string{"VEO4K_WEBHOOK_HMAC_KEY= k1 ,,k2", "PROVIDERSIM_API_KEY=secret", "PROVIDERSIM_VIDEO_BYTES=1000", "PROVIDERSIM_COMPLETE_AFTER=250ms"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.HMACKeys) != 2 || c.HMACKeys[0] != "k1" || c.HMACKeys[1] != "k2" || c.APIKey != "secret" || c.VideoBytes != 1000 || c.CompleteAfter != 250*time.Millisecond {
		t.Errorf("parsed %+v", c)
	}
	for _, field := range c.Fields() {
		if field.String == "k1" || field.String == "secret" {
			t.Errorf("field %s logs a secret", field.Key)
		}
	}
	bad := []string{"PROVIDERSIM_COMPLETE_AFTER=soon", "PROVIDERSIM_COMPLETE_AFTER=0s", "PROVIDERSIM_VIDEO_BYTES=-1", "PROVIDERSIM_VIDEO_BYTES=many"}
	for _, kv := range bad {
		t.Run(kv, func(t *testing.T) {
			if _, err := LoadConfig([]string{kv}); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestDerivePublicURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ addr, want string }{
		{"0.0.0.0:9090", "http://127.0.0.1:9090"},
		{"[::]:9090", "http://127.0.0.1:9090"},
		{"127.0.0.1:1234", "http://127.0.0.1:1234"},
		{"[::1]:1234", "http://[::1]:1234"},
	}
	for _, tc := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := derivePublicURL(addr); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// TestServe runs the service on loopback, scripts a task over the control
// API, receives its signed callback, downloads the file, and shuts down.
func TestServe(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer recv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg, err := LoadConfig([]string{"PROVIDERSIM_CALLBACK_URL=" + recv.URL + "/v1/callbacks/4k/", "VEO4K_WEBHOOK_HMAC_KEY=first,second"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, cfg, zap.NewNop()) }()

	spec, _ := json.Marshal(map[string]any{"taskId": "svc", "videoBytes": 64_000})
	resp, err := http.Post(base+"/sim/tasks", "application/json", bytes.NewReader(spec))
	if err != nil {
		t.Fatal(err)
	}
	var task struct {
		VideoURLs []string `json:"videoUrls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&task); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(task.VideoURLs) != 1 {
		t.Fatalf("POST /sim/tasks: %d %+v", resp.StatusCode, task)
	}
	if got, want := task.VideoURLs[0], base+"/files/svc/0/video_0.mp4"; got != want {
		t.Errorf("video URL %s, want %s", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no callback received")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := got[0]
	if r.URL.Path != "/v1/callbacks/4k/svc" || r.URL.RawQuery != "index=0" {
		t.Errorf("callback to %s?%s", r.URL.Path, r.URL.RawQuery)
	}
	v := signature.NewVerifier([]string{"first"}, time.Minute)
	if err := v.Verify("svc", r.Header.Get(signature.HeaderTimestamp), r.Header.Get(signature.HeaderSignature), time.Now()); err != nil {
		t.Errorf("callback not signed with the first key: %v", err)
	}
	if !bytes.Contains(bodies[0], []byte(task.VideoURLs[0])) {
		t.Errorf("callback body %s lacks the video URL", bodies[0])
	}
	fresp, err := http.Get(task.VideoURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, fresp.Body)
	fresp.Body.Close()
	if n != 64_000 {
		t.Errorf("downloaded %d bytes, want 64000", n)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
