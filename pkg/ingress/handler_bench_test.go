package ingress_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/veo4k/veo4k/pkg/ingress"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/stream"
)

// benchServer is an ingress with signatures on, logging as in production
// (JSON at info, to a discarding sink), in front of a real in-process NATS
// with the file-backed VEO4K_CALLBACKS stream.
func benchServer(b *testing.B) *ingress.Server {
	b.Helper()
	srv := natstest.Start(b, "")
	nc, js := natstest.Connect(b, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, stream.CallbacksConfig(stream.Options{})); err != nil {
		b.Fatal(err)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	ing, err := ingress.New(ingress.Config{HMACKeys: []string{"bench-key"}}, nc, js, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	return ing
}

// serveOne sends one new, signed success callback through the ingress's
// router; an error unless it is stored (200, not a duplicate).
func serveOne(ing *ingress.Server, id, ts string) error {
	req := httptest.NewRequest(http.MethodPost, ingress.CallbackPath+"/"+id, strings.NewReader(successBody(id)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Timestamp", ts)
	req.Header.Set("X-Webhook-Signature", sign("bench-key", id, ts))
	rec := httptest.NewRecorder()
	ing.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"duplicate":true`) {
		return fmt.Errorf("callback %s: %d %s", id, rec.Code, rec.Body)
	}
	return nil
}

// BenchmarkHandleCallback is one whole callback request: read, checks,
// signature, protobuf encoding, publish to file-backed JetStream and the wait
// for its PubAck, the log line, the answer. Serial: each request waits for
// the previous one's PubAck, so ns/op is the latency of one callback. Its
// allocs/op include the test's request and recorder (about 20).
func BenchmarkHandleCallback(b *testing.B) {
	ing := benchServer(b)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := serveOne(ing, "bench_"+strconv.Itoa(i), ts); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkHandleCallbackParallel is the same with many callbacks in flight
// (GOMAXPROCS×16 goroutines), as under load: ns/op is the inverse of throughput.
func BenchmarkHandleCallbackParallel(b *testing.B) {
	ing := benchServer(b)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := serveOne(ing, "bench_"+strconv.FormatInt(next.Add(1), 10), ts); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
