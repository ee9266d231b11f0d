package ingress_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/veo4k/veo4k/pkg/ingress"
	"github.com/veo4k/veo4k/pkg/natstest"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// env is one ingress in front of its own in-process JetStream server.
type env struct {
	t    *testing.T
	srv  *natstest.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	ing  *ingress.Server
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

type envOpts struct {
	keys     []string
	noStream bool
	// streamCfg replaces the production stream configuration when set.
	streamCfg *jetstream.StreamConfig
	timeout   time.Duration
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	srv := natstest.Start(t, "")
	nc, js := natstest.Connect(t, srv)
	if !o.noStream {
		cfg := stream.CallbacksConfig(stream.Options{})
		if o.streamCfg != nil {
			cfg = *o.streamCfg
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stream.Ensure(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	timeout := o.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ing, err := ingress.New(ingress.Config{
		HMACKeys:           o.keys,
		SignatureTolerance: 5 * time.Minute,
		PublishTimeout:     timeout,
		MaxBodyBytes:       1 << 20,
	}, nc, js, zap.New(core), reg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, nc: nc, js: js, ing: ing, reg: reg, logs: logs}
}

// sign computes the provider's signature independently of pkg/signature.
func sign(key, taskID, ts string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(taskID + "." + ts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func signed(key, taskID string, at time.Time) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return map[string]string{"X-Webhook-Timestamp": ts, "X-Webhook-Signature": sign(key, taskID, ts)}
}

type req struct {
	method  string
	path    string
	ctype   string
	body    string
	headers map[string]string
	chunked bool // no Content-Length: the limited reader must catch the size
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(r req) resp {
	e.t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	hr := httptest.NewRequest(method, r.path, strings.NewReader(r.body))
	if r.ctype != "-" {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	if r.chunked {
		hr.ContentLength = -1
		hr.Body = io.NopCloser(strings.NewReader(r.body))
	}
	rec := httptest.NewRecorder()
	e.ing.ServeHTTP(rec, hr)
	out := resp{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &out.body)
	return out
}

func (e *env) get(path string) resp {
	e.t.Helper()
	return e.do(req{method: http.MethodGet, path: path, ctype: "-"})
}

func (e *env) streamMsgs() uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream.Callbacks)
	if err != nil {
		e.t.Fatalf("stream info: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// stored returns the message stored on subject, or nil.
func (e *env) stored(subject string) *veo4kv1.CallbackReceived {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream.Callbacks)
	if err != nil {
		e.t.Fatalf("stream: %v", err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatalf("getting %s: %v", subject, err)
	}
	var cb veo4kv1.CallbackReceived
	if err := proto.Unmarshal(m.Data, &cb); err != nil {
		e.t.Fatalf("decoding %s: %v", subject, err)
	}
	return &cb
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

func successBody(taskID string) string {
	return `{"code":200,"msg":"4K Video generated successfully.","data":{"taskId":"` + taskID +
		`","info":{"resultUrls":["https://file.aiquickdraw.com/v/` + taskID + `.mp4"],"imageUrls":["https://file.aiquickdraw.com/v/` + taskID + `.jpg"]}}}`
}

const failureNullBody = `{"code":500,"msg":"The 4K version of this video is unavailable. Please try a different video.","data":null}`

func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestAcceptsAndStores(t *testing.T) {
	t.Parallel()
	const key = "k-current"
	e := newEnv(t, envOpts{keys: []string{"k-old", key}})
	before := time.Now()

	hdr := signed(key, "task_A-1", time.Now())
	r := e.do(req{path: "/v1/callbacks/4k/task_A-1?index=3", ctype: "application/json; charset=utf-8",
		body: successBody("task_A-1"), headers: hdr})
	if got, want := r.status, http.StatusOK; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.raw)
	}
	if got, want := r.raw, `{"status":"accepted","taskId":"task_A-1","duplicate":false}`+"\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	cb := e.stored(stream.CallbackSubject("task_A-1", 3, stream.Success))
	if cb == nil {
		t.Fatal("nothing stored")
	}
	if got, want := cb.GetTaskId(), "task_A-1"; got != want {
		t.Errorf("task id = %q, want %q", got, want)
	}
	if got, want := cb.GetIndex(), uint32(3); got != want {
		t.Errorf("index = %d, want %d", got, want)
	}
	if got, want := cb.GetCode(), int32(200); got != want {
		t.Errorf("code = %d, want %d", got, want)
	}
	if got, want := cb.GetMsg(), "4K Video generated successfully."; got != want {
		t.Errorf("msg = %q, want %q", got, want)
	}
	if got, want := strings.Join(cb.GetVideoUrls(), ","), "https://file.aiquickdraw.com/v/task_A-1.mp4"; got != want {
		t.Errorf("video urls = %q, want %q", got, want)
	}
	if got, want := strings.Join(cb.GetImageUrls(), ","), "https://file.aiquickdraw.com/v/task_A-1.jpg"; got != want {
		t.Errorf("image urls = %q, want %q", got, want)
	}
	if !cb.GetSignatureVerified() {
		t.Error("signature_verified = false, want true")
	}
	if got, want := string(cb.GetRawBody()), successBody("task_A-1"); got != want {
		t.Errorf("raw body = %q, want %q", got, want)
	}
	if at := cb.GetReceivedAt().AsTime(); at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("received_at = %v, not around now", at)
	}

	// One log line for the request, with the task, index, status and outcome, and no secret.
	lines := e.logs.FilterMessage("callback").All()
	if got, want := len(lines), 1; got != want {
		t.Fatalf("callback log lines = %d, want %d", got, want)
	}
	f := lines[0].ContextMap()
	if f["task_id"] != "task_A-1" || f["index"] != int64(3) || f["status"] != int64(200) || f["outcome"] != "accepted" {
		t.Errorf("log fields = %v", f)
	}
	if _, ok := f["latency"]; !ok {
		t.Error("log line has no latency")
	}
	for _, entry := range e.logs.All() {
		for k, v := range entry.ContextMap() {
			if s, ok := v.(string); ok && (strings.Contains(s, key) || strings.Contains(s, hdr["X-Webhook-Signature"])) {
				t.Errorf("log field %s leaks a secret: %q", k, s)
			}
		}
	}
}

func TestUnsignedAcceptedWithoutKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	if got := e.logs.FilterMessageSnippet("unsigned callbacks accepted").Len(); got != 1 {
		t.Errorf("warnings about unsigned callbacks = %d, want 1", got)
	}
	r := e.do(req{path: "/v1/callbacks/4k", body: successBody("t1")})
	if got, want := r.status, http.StatusOK; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.raw)
	}
	cb := e.stored(stream.CallbackSubject("t1", 0, stream.Success))
	if cb == nil || cb.GetSignatureVerified() {
		t.Fatalf("stored %v, want a message with signature_verified false", cb)
	}
}

func TestBodySizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	pad := func(b string, size int) string { return strings.Repeat(" ", size-len(b)) + b }
	// The NATS server takes at most max_payload bytes (1 MiB by default) per
	// message, raw body and metadata together: a body that fits the HTTP limit
	// but not the message is refused with 413 (retrying cannot help), never 503.
	room := int(e.nc.MaxPayload()) - 4096
	tests := []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"under the message limit", room, false, http.StatusOK},
		{"under the message limit without length", room, true, http.StatusOK},
		{"at the body limit, over the message limit", 1 << 20, false, http.StatusRequestEntityTooLarge},
		{"one byte over the body limit", 1<<20 + 1, true, http.StatusRequestEntityTooLarge},
	}
	for i, tt := range tests {
		id := "big" + strconv.Itoa(i)
		r := e.do(req{path: "/v1/callbacks/4k/" + id, body: pad(successBody(id), tt.size), chunked: tt.chunked})
		if got, want := r.status, tt.status; got != want {
			t.Errorf("%s: status = %d, want %d (%s)", tt.name, got, want, r.raw)
		}
		if stored := e.stored(stream.CallbackSubject(id, 0, stream.Success)) != nil; stored != (tt.status == http.StatusOK) {
			t.Errorf("%s: stored = %v", tt.name, stored)
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	const key = "secret-key"
	e := newEnv(t, envOpts{keys: []string{key}})
	now := time.Now()
	ok := func(id string) map[string]string { return signed(key, id, now) }
	tooBig := strings.Repeat(" ", 1<<20+1-len(successBody("t"))) + successBody("t")
	withTS := func(id, ts string) map[string]string {
		return map[string]string{"X-Webhook-Timestamp": ts, "X-Webhook-Signature": sign(key, id, ts)}
	}
	unix := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	taskBody := func(id string) string { return `{"code":500,"msg":"x","data":{"taskId":` + strconv.Quote(id) + `}}` }

	tests := []struct {
		name    string
		r       req
		status  int
		errPart string
	}{
		{"not json", req{path: "/v1/callbacks/4k/t", body: "hello", headers: ok("t")}, 400, "not a JSON object"},
		{"truncated json", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"data":{"taskId":"t"`, headers: ok("t")}, 400, "unexpected end"},
		{"empty body", req{path: "/v1/callbacks/4k/t", body: "", headers: ok("t")}, 400, "not a JSON object"},
		{"code is a string", req{path: "/v1/callbacks/4k/t", body: `{"code":"200","data":null}`, headers: ok("t")}, 400, "code"},
		{"data is a string", req{path: "/v1/callbacks/4k/t", body: `{"code":500,"data":"t"}`, headers: ok("t")}, 400, "data"},
		{"urls not a list", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"data":{"taskId":"t","info":{"resultUrls":"https://a/b"}}}`, headers: ok("t")}, 400, "resultUrls"},
		{"success with empty url list", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"data":{"taskId":"t","info":{"resultUrls":[]}}}`, headers: ok("t")}, 400, "without any video url"},
		{"success with data null", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"msg":"ok","data":null}`, headers: ok("t")}, 400, "without any video url"},
		{"ftp video url", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["ftp://a/b.mp4"]}}}`, headers: ok("t")}, 400, "http or https"},
		{"relative video url", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["/b.mp4"]}}}`, headers: ok("t")}, 400, "http or https"},
		{"task id with dot", req{path: "/v1/callbacks/4k", body: taskBody("a.b"), headers: ok("a.b")}, 400, "invalid task id"},
		{"task id with star", req{path: "/v1/callbacks/4k", body: taskBody("a*"), headers: ok("a*")}, 400, "invalid task id"},
		{"task id with gt", req{path: "/v1/callbacks/4k", body: taskBody("a>"), headers: ok("a>")}, 400, "invalid task id"},
		{"task id with space", req{path: "/v1/callbacks/4k", body: taskBody("a b"), headers: ok("a b")}, 400, "invalid task id"},
		{"task id with ../", req{path: "/v1/callbacks/4k", body: taskBody("../etc"), headers: ok("../etc")}, 400, "invalid task id"},
		{"task id of 129 chars", req{path: "/v1/callbacks/4k", body: taskBody(strings.Repeat("a", 129)), headers: ok(strings.Repeat("a", 129))}, 400, "invalid task id"},
		{"task id unicode", req{path: "/v1/callbacks/4k", body: taskBody("tâche"), headers: ok("tâche")}, 400, "invalid task id"},
		{"path id with encoded dot", req{path: "/v1/callbacks/4k/a%2Eb", body: failureNullBody, headers: ok("a.b")}, 400, "task id in the path"},
		{"path id with encoded ../", req{path: "/v1/callbacks/4k/..%2Fetc", body: failureNullBody, headers: ok("../etc")}, 400, "task id in the path"},
		{"path id with encoded gt", req{path: "/v1/callbacks/4k/a%3E", body: failureNullBody, headers: ok("a>")}, 400, "task id in the path"},
		{"path and body ids differ", req{path: "/v1/callbacks/4k/one", body: successBody("two"), headers: ok("two")}, 400, "differ"},
		{"no task id anywhere", req{path: "/v1/callbacks/4k", body: failureNullBody}, 400, "no task id"},
		{"body of 1 MiB + 1", req{path: "/v1/callbacks/4k/t", body: tooBig, headers: ok("t")}, 413, "larger than 1048576"},
		{"body of 1 MiB + 1 without length", req{path: "/v1/callbacks/4k/t", body: tooBig, headers: ok("t"), chunked: true}, 413, "larger than 1048576"},
		{"too large beats wrong type", req{path: "/v1/callbacks/4k/t", ctype: "text/plain", body: tooBig}, 413, "larger than"},
		{"text/plain", req{path: "/v1/callbacks/4k/t", ctype: "text/plain", body: successBody("t"), headers: ok("t")}, 415, "not application/json"},
		{"form", req{path: "/v1/callbacks/4k/t", ctype: "application/x-www-form-urlencoded", body: "a=b", headers: ok("t")}, 415, "not application/json"},
		{"no content type", req{path: "/v1/callbacks/4k/t", ctype: "-", body: successBody("t"), headers: ok("t")}, 415, "content type missing"},
		{"wrong type beats bad json", req{path: "/v1/callbacks/4k/t", ctype: "text/html", body: "<html>"}, 415, "not application/json"},
		{"signature missing", req{path: "/v1/callbacks/4k/t", body: successBody("t")}, 401, "missing"},
		{"signature not base64", req{path: "/v1/callbacks/4k/t", body: successBody("t"),
			headers: map[string]string{"X-Webhook-Timestamp": unix(now), "X-Webhook-Signature": "%%%not base64%%%"}}, 401, "base64"},
		{"signature with wrong key", req{path: "/v1/callbacks/4k/t", body: successBody("t"), headers: signed("other-key", "t", now)}, 401, "does not match"},
		{"signature of another task", req{path: "/v1/callbacks/4k/t", body: successBody("t"), headers: ok("u")}, 401, "does not match"},
		{"signature of the path id when the body has one", req{path: "/v1/callbacks/4k", body: successBody("t"), headers: signed(key, "", now)}, 401, "does not match"},
		{"timestamp 10 min old", req{path: "/v1/callbacks/4k/t", body: successBody("t"), headers: withTS("t", unix(now.Add(-10*time.Minute)))}, 401, "tolerance"},
		{"timestamp 10 min ahead", req{path: "/v1/callbacks/4k/t", body: successBody("t"), headers: withTS("t", unix(now.Add(10*time.Minute)))}, 401, "tolerance"},
		{"timestamp not a number", req{path: "/v1/callbacks/4k/t", body: successBody("t"), headers: withTS("t", "yesterday")}, 401, "not a Unix time"},
		{"shape checked before signature", req{path: "/v1/callbacks/4k/t", body: `{"code":`}, 400, "unexpected end"},
		{"signature checked before urls", req{path: "/v1/callbacks/4k/t", body: `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["ftp://x"]}}}`}, 401, "missing"},
		{"index -1", req{path: "/v1/callbacks/4k/t?index=-1", body: successBody("t"), headers: ok("t")}, 400, "index"},
		{"index 100", req{path: "/v1/callbacks/4k/t?index=100", body: successBody("t"), headers: ok("t")}, 400, "index"},
		{"index abc", req{path: "/v1/callbacks/4k/t?index=abc", body: successBody("t"), headers: ok("t")}, 400, "index"},
		{"index empty", req{path: "/v1/callbacks/4k/t?index=", body: successBody("t"), headers: ok("t")}, 400, "index"},
		{"index twice", req{path: "/v1/callbacks/4k/t?index=1&index=2", body: successBody("t"), headers: ok("t")}, 400, "index"},
		{"GET on callback path", req{method: http.MethodGet, path: "/v1/callbacks/4k/t", ctype: "-"}, 405, "method not allowed"},
		{"PUT on callback path", req{method: http.MethodPut, path: "/v1/callbacks/4k", body: successBody("t"), headers: ok("t")}, 405, "method not allowed"},
		{"DELETE on callback path", req{method: http.MethodDelete, path: "/v1/callbacks/4k/t", ctype: "-"}, 405, "method not allowed"},
		{"unknown path", req{path: "/v1/callbacks/8k/t", body: successBody("t"), headers: ok("t")}, 404, "not found"},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.r)
			if got, want := r.status, tt.status; got != want {
				t.Fatalf("status = %d, want %d (%s)", got, want, r.raw)
			}
			msg, _ := r.body["error"].(string)
			if !strings.Contains(msg, tt.errPart) {
				t.Errorf("error = %q, want it to mention %q", msg, tt.errPart)
			}
			if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("content type = %q, want JSON", got)
			}
			if tt.status == http.StatusMethodNotAllowed && !strings.Contains(r.header.Get("Allow"), http.MethodPost) {
				t.Errorf("Allow = %q, want it to list POST", r.header.Get("Allow"))
			}
		})
	}
	if got, want := e.streamMsgs(), uint64(0); got != want {
		t.Errorf("stream holds %d messages after refused requests, want %d", got, want)
	}
	if got := counterValue(t, e.reg, "veo4k_ingress_callbacks_total", "outcome", "accepted"); got != 0 {
		t.Errorf("accepted counter = %v, want 0", got)
	}
}

func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	const n = 200
	type out struct {
		status int
		dup    bool
	}
	outs := make(chan out, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			r := e.do(req{path: "/v1/callbacks/4k/same?index=2", body: successBody("same")})
			dup, _ := r.body["duplicate"].(bool)
			outs <- out{r.status, dup}
		}()
	}
	close(start)
	dups := 0
	for range n {
		o := <-outs
		if o.status != http.StatusOK {
			t.Errorf("status = %d, want 200", o.status)
		}
		if o.dup {
			dups++
		}
	}
	if got, want := dups, n-1; got != want {
		t.Errorf("duplicates = %d, want %d", got, want)
	}
	if got, want := e.streamMsgs(), uint64(1); got != want {
		t.Errorf("stored messages = %d, want %d", got, want)
	}
	if got, want := counterValue(t, e.reg, "veo4k_ingress_callbacks_total", "outcome", "duplicate"), float64(n-1); got != want {
		t.Errorf("duplicate counter = %v, want %v", got, want)
	}
}

func TestDuplicateAfterMsgIDWindow(t *testing.T) {
	t.Parallel()
	cfg := stream.CallbacksConfig(stream.Options{})
	cfg.Duplicates = 100 * time.Millisecond
	e := newEnv(t, envOpts{streamCfg: &cfg})

	r := e.do(req{path: "/v1/callbacks/4k/late", body: successBody("late")})
	if r.status != http.StatusOK || r.body["duplicate"] != false {
		t.Fatalf("first: %d %s", r.status, r.raw)
	}
	// A probe published after the callback, with a Msg-Id of its own, shows
	// when the window has passed: its repeat stops being a Msg-Id duplicate
	// and meets the per-subject guard instead. The callback's window,
	// opened earlier, has passed by then too.
	probe := &nats.Msg{Subject: stream.CallbackSubject("probe", 0, stream.Success), Header: nats.Header{}, Data: []byte("p")}
	probe.Header.Set(jetstream.MsgIDHeader, "probe")
	ctx := context.Background()
	if _, err := e.js.PublishMsg(ctx, probe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Msg-Id window to pass", 10*time.Second, func() bool {
		ack, err := e.js.PublishMsg(ctx, probe)
		if err == nil && !ack.Duplicate {
			t.Fatalf("probe stored twice: the per-subject guard is missing")
		}
		return ingress.IsPerSubjectLimit(err)
	})

	r = e.do(req{path: "/v1/callbacks/4k/late", body: successBody("late")})
	if got, want := r.status, http.StatusOK; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.raw)
	}
	if got, want := r.body["duplicate"], true; got != want {
		t.Errorf("duplicate = %v, want %v", got, want)
	}
	if got, want := r.body["status"], "duplicate"; got != want {
		t.Errorf("status = %v, want %v", got, want)
	}
	if got, want := e.streamMsgs(), uint64(2); got != want { // the callback and the probe
		t.Errorf("stored messages = %d, want %d", got, want)
	}
	if got, want := counterValue(t, e.reg, "veo4k_ingress_duplicates_total", "layer", "per_subject"), 1.0; got != want {
		t.Errorf("per-subject duplicates = %v, want %v", got, want)
	}
}

func TestEntriesAndOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	steps := []struct {
		name    string
		r       req
		dup     bool
		subject string
	}{
		{"failure with data null, id from the path", req{path: "/v1/callbacks/4k/entry1", body: failureNullBody}, false, stream.CallbackSubject("entry1", 0, stream.Failure)},
		{"same failure again", req{path: "/v1/callbacks/4k/entry1", body: failureNullBody}, true, ""},
		{"success after the failure", req{path: "/v1/callbacks/4k/entry1", body: successBody("entry1")}, false, stream.CallbackSubject("entry1", 0, stream.Success)},
		{"failure after the success", req{path: "/v1/callbacks/4k/entry1", body: `{"code":500,"msg":"late","data":{"taskId":"entry1"}}`}, true, ""},
		{"another index", req{path: "/v1/callbacks/4k/entry1?index=1", body: successBody("entry1")}, false, stream.CallbackSubject("entry1", 1, stream.Success)},
		{"index 99", req{path: "/v1/callbacks/4k?index=99", body: successBody("entry1")}, false, stream.CallbackSubject("entry1", 99, stream.Success)},
		{"same success, id from the body only", req{path: "/v1/callbacks/4k?index=1", body: successBody("entry1")}, true, ""},
	}
	for i, s := range steps {
		r := e.do(s.r)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status = %d (%s)", s.name, r.status, r.raw)
		}
		if got, want := r.body["duplicate"], s.dup; got != want {
			t.Errorf("%s: duplicate = %v, want %v", s.name, got, want)
		}
		if got, want := r.body["taskId"], "entry1"; got != want {
			t.Errorf("%s: taskId = %v, want %v", s.name, got, want)
		}
		if s.subject != "" && e.stored(s.subject) == nil {
			t.Errorf("step %d %s: nothing stored on %s", i, s.name, s.subject)
		}
	}
	if got, want := e.streamMsgs(), uint64(4); got != want {
		t.Errorf("stored messages = %d, want %d", got, want)
	}
	cb := e.stored(stream.CallbackSubject("entry1", 0, stream.Failure))
	if cb.GetTaskId() != "entry1" || cb.GetCode() != 500 || cb.GetMsg() != "The 4K version of this video is unavailable. Please try a different video." || len(cb.GetVideoUrls()) != 0 {
		t.Errorf("failure stored as %v", cb)
	}
}

func TestNATSDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{timeout: 500 * time.Millisecond})
	var accepted []string
	for i := range 3 {
		id := "before" + strconv.Itoa(i)
		if r := e.do(req{path: "/v1/callbacks/4k/" + id, body: successBody(id)}); r.status != http.StatusOK {
			t.Fatalf("before shutdown: %d %s", r.status, r.raw)
		}
		accepted = append(accepted, id)
	}
	if r := e.get("/readyz"); r.status != http.StatusOK {
		t.Fatalf("readyz before shutdown = %d %s", r.status, r.raw)
	}

	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	waitFor(t, "the client to notice", 10*time.Second, func() bool { return e.nc.Status() != nats.CONNECTED })
	for i := range 2 {
		id := "during" + strconv.Itoa(i)
		r := e.do(req{path: "/v1/callbacks/4k/" + id, body: successBody(id)})
		if got, want := r.status, http.StatusServiceUnavailable; got != want {
			t.Fatalf("while down: status = %d, want %d (%s)", got, want, r.raw)
		}
		if got := r.header.Get("Retry-After"); got == "" {
			t.Error("503 without Retry-After")
		}
		if msg, _ := r.body["error"].(string); msg == "" {
			t.Errorf("503 without an error message: %s", r.raw)
		}
	}
	if r := e.get("/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz while down = %d, want 503", r.status)
	}
	if r := e.get("/healthz"); r.status != http.StatusOK {
		t.Errorf("healthz while down = %d, want 200", r.status)
	}

	e.srv.Restart(t)
	waitFor(t, "readyz after restart", 15*time.Second, func() bool { return e.get("/readyz").status == http.StatusOK })
	r := e.do(req{path: "/v1/callbacks/4k/after", body: successBody("after")})
	if got, want := r.status, http.StatusOK; got != want {
		t.Fatalf("after restart: status = %d, want %d (%s)", got, want, r.raw)
	}
	accepted = append(accepted, "after")
	if got, want := e.logs.FilterMessage("callback").Len(), 6; got != want {
		t.Errorf("callback log lines = %d, want one per request (%d)", got, want)
	}
	for _, id := range accepted {
		if e.stored(stream.CallbackSubject(id, 0, stream.Success)) == nil {
			t.Errorf("%s was answered 200 but is not in the stream", id)
		}
	}
}

func TestStreamMissingIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{noStream: true, timeout: time.Second})
	r := e.do(req{path: "/v1/callbacks/4k/t", body: successBody("t")})
	if got, want := r.status, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status = %d, want %d (%s)", got, want, r.raw)
	}
	if got, want := r.header.Get("Retry-After"), "2"; got != want {
		t.Errorf("Retry-After = %q, want %q", got, want)
	}
	if r := e.get("/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz without the stream = %d, want 503", r.status)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	if r := e.get("/healthz"); r.status != http.StatusOK {
		t.Errorf("healthz = %d", r.status)
	}
	if r := e.get("/readyz"); r.status != http.StatusOK {
		t.Errorf("readyz = %d %s", r.status, r.raw)
	}
	e.do(req{path: "/v1/callbacks/4k/m", body: successBody("m")})
	e.do(req{path: "/v1/callbacks/4k/m", body: successBody("m")})
	e.do(req{path: "/v1/callbacks/4k/m", ctype: "text/plain", body: "x"})
	r := e.get("/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("metrics = %d", r.status)
	}
	for _, want := range []string{
		`veo4k_ingress_callbacks_total{outcome="accepted"} 1`,
		`veo4k_ingress_callbacks_total{outcome="duplicate"} 1`,
		`veo4k_ingress_callbacks_total{outcome="unsupported_media_type"} 1`,
		`veo4k_ingress_duplicates_total{layer="msg_id"} 1`,
		`veo4k_ingress_publish_duration_seconds_count 2`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNewRejectsNonGatherer(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, "")
	nc, js := natstest.Connect(t, srv)
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"a": "b"}, prometheus.NewRegistry())
	if _, err := ingress.New(ingress.Config{}, nc, js, zap.NewNop(), reg); err == nil {
		t.Error("New accepted a registry /metrics cannot serve")
	}
	if _, err := ingress.New(ingress.Config{}, nil, nil, zap.NewNop(), nil); err == nil {
		t.Error("New accepted no nats connection")
	}
}

func TestIsPerSubjectLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("maximum messages per subject exceeded"), false},
		{"timeout", context.DeadlineExceeded, false},
		{"per-subject refusal", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages per subject exceeded"}, true},
		{"wrapped per-subject refusal", fmt.Errorf("nats: %w", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages per subject exceeded"}), true},
		{"other storage failure, same code", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}, false},
		{"stream full", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum bytes exceeded"}, false},
		{"other code", &jetstream.APIError{Code: 400, ErrorCode: 10060, Description: "expected stream does not match"}, false},
	}
	for _, tt := range tests {
		if got := ingress.IsPerSubjectLimit(tt.err); got != tt.want {
			t.Errorf("%s: IsPerSubjectLimit = %v, want %v", tt.name, got, tt.want)
		}
	}
}
