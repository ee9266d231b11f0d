package ingress_test

import (
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/veo4k/veo4k/pkg/callback"
	"github.com/veo4k/veo4k/pkg/signature"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// BenchmarkCheck is the ingress's CPU work per callback before publishing:
// parse, signature check (two keys, as during rotation), validation.
func BenchmarkCheck(b *testing.B) {
	body := []byte(successBody("veo_task_example123"))
	v := signature.NewVerifier([]string{"old-key", "new-key"}, 5*time.Minute)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := sign("new-key", "veo_task_example123", ts)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		c, err := callback.Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Verify(c.TaskID, ts, sig, now); err != nil {
			b.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode is the protobuf encoding of the published message.
func BenchmarkEncode(b *testing.B) {
	body := []byte(successBody("veo_task_example123"))
	c, err := callback.Parse(body)
	if err != nil {
		b.Fatal(err)
	}
	rec := &veo4kv1.CallbackReceived{
		TaskId: c.TaskID, Index: 0, Code: c.Code, Msg: c.Msg,
		VideoUrls: c.VideoURLs, ImageUrls: c.ImageURLs,
		ReceivedAt: timestamppb.Now(), SignatureVerified: true, RawBody: body,
	}
	b.ReportAllocs()
	for b.Loop() {
		data, err := proto.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}
