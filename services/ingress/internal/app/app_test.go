package app

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/natsconn"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/stream"
)

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func status(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startService runs serve on a loopback port against srv and returns its
// base URL and a function that stops it and returns serve's error.
func startService(t *testing.T, natsURL string) (string, func() error) {
	t.Helper()
	cfg, err := config.Load([]string{"VEO4K_NATS_URL=" + natsURL})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, zap.NewNop(), cfg, ln) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(shutdownGrace + natsconn.DrainTimeout + 5*time.Second):
			t.Fatal("serve did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return "http://" + ln.Addr().String(), stop
}

func TestServeStoresAndStops(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, "")
	_, js := natstest.Connect(t, srv)
	base, stop := startService(t, srv.ClientURL())

	waitFor(t, "readyz", 10*time.Second, func() bool { return status(t, http.MethodGet, base+"/readyz", "") == http.StatusOK })
	body := `{"code":200,"msg":"ok","data":{"taskId":"svc1","info":{"resultUrls":["https://file.aiquickdraw.com/v/svc1.mp4"]}}}`
	if got, want := status(t, http.MethodPost, base+"/v1/callbacks/4k/svc1", body), http.StatusOK; got != want {
		t.Fatalf("callback status = %d, want %d", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.Callbacks)
	if err != nil {
		t.Fatalf("the service did not create the stream: %v", err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, stream.CallbackSubject("svc1", 0, stream.Success)); err != nil {
		t.Errorf("callback not stored: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("serve returned %v after cancel, want nil", err)
	}
	if got := status(t, http.MethodGet, base+"/healthz", ""); got != 0 {
		t.Errorf("healthz after stop = %d, want no answer", got)
	}
}

func TestStartsBeforeNATS(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, "")
	url := srv.ClientURL()
	srv.Shutdown()
	srv.WaitForShutdown()

	base, stop := startService(t, url)
	waitFor(t, "healthz", 10*time.Second, func() bool { return status(t, http.MethodGet, base+"/healthz", "") == http.StatusOK })
	if got, want := status(t, http.MethodGet, base+"/readyz", ""), http.StatusServiceUnavailable; got != want {
		t.Errorf("readyz without NATS = %d, want %d", got, want)
	}
	srv.Restart(t)
	waitFor(t, "readyz once NATS is up", 20*time.Second, func() bool { return status(t, http.MethodGet, base+"/readyz", "") == http.StatusOK })
	body := `{"code":500,"msg":"unavailable","data":null}`
	if got, want := status(t, http.MethodPost, base+"/v1/callbacks/4k/late-nats", body), http.StatusOK; got != want {
		t.Errorf("callback status = %d, want %d", got, want)
	}
	if err := stop(); err != nil {
		t.Errorf("serve returned %v after cancel, want nil", err)
	}
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), zap.NewNop(), []string{"VEO4K_INGRESS_ADDR=" + ln.Addr().String(), "VEO4K_NATS_URL=nats://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Run = %v, want a port-in-use error", err)
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), zap.NewNop(), []string{"VEO4K_PUBLISH_TIMEOUT=-1s"})
	if err == nil || !strings.Contains(err.Error(), "VEO4K_PUBLISH_TIMEOUT") {
		t.Fatalf("Run = %v, want a configuration error", err)
	}
}
