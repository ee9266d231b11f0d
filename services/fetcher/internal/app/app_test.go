package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/providersim"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// TestServiceEndToEnd runs the fetcher service as its main does, against a
// real NATS server started before it, and checks that a stored callback
// becomes a ready entry served by its API.
func TestServiceEndToEnd(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, "")
	sim := providersim.New(providersim.Config{DefaultVideoBytes: 256 << 10})
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); _ = sim.Close() })
	sim.SetPublicURL(hs.URL)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := config.Load([]string{
		"VEO4K_NATS_URL=" + ns.ClientURL(),
		"VEO4K_FETCHER_ADDR=" + addr,
		"VEO4K_DATA_DIR=" + t.TempDir(),
		"VEO4K_ALLOWED_HOSTS=127.0.0.1",
		"VEO4K_ALLOW_PRIVATE_NETWORKS=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))) }()

	// Ready once connected and the streams exist.
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	task, err := sim.AddTask(providersim.TaskSpec{TaskID: "svc-task"})
	if err != nil {
		t.Fatal(err)
	}
	_, js := natstest.Connect(t, ns)
	data, _ := proto.Marshal(&veo4kv1.CallbackReceived{TaskId: task.TaskID, Code: 200,
		VideoUrls: task.VideoURLs, ImageUrls: task.ImageURLs, ReceivedAt: timestamppb.Now()})
	waitFor(t, func() bool { // the fetcher creates the streams in the background
		_, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: stream.CallbackSubject(task.TaskID, 0, stream.Success), Data: data})
		return err == nil
	})

	var entry struct {
		Status string `json:"status"`
		Files  []struct {
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + addr + "/v1/videos/svc-task")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&entry) == nil && entry.Status == "ready"
	})
	if got, want := entry.Files[0].SHA256, task.Files[0].SHA256; got != want {
		t.Errorf("SHA-256 %s, want %s", got, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Main(t.Context(), []string{"VEO4K_FETCHER_ADDR=" + ln.Addr().String(), "VEO4K_DATA_DIR=" + t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "VEO4K_FETCHER_ADDR") {
		t.Fatalf("Main = %v, want a port-in-use error naming VEO4K_FETCHER_ADDR", err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(25 * time.Millisecond)
	}
}
