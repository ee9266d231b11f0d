package providersim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/veo4k/veo4k/pkg/signature"
)

const testKey = "test-hmac-key"

func TestCallbackBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec TaskSpec
		want string // the body, with URLs replaced by the task's
		code int
	}{
		{"camelCase success", TaskSpec{TaskID: "cb-camel"}, `{"code":200,"msg":"4K Video generated successfully.","data":{"taskId":"cb-camel","info":{"resultUrls":[%v],"imageUrls":[%i]}}}`, 200},
		{"snake_case success", TaskSpec{TaskID: "cb-snake", SnakeCase: true}, `{"code":200,"msg":"4K Video generated successfully.","data":{"task_id":"cb-snake","info":{"result_urls":[%v],"image_urls":[%i]}}}`, 200},
		{"unavailable", TaskSpec{TaskID: "cb-unavail", Callback: CallbackUnavailable}, `{"code":500,"msg":"The 4K version of this video is unavailable. Please try a different video.","data":null}`, 500},
		{"unavailable with data", TaskSpec{TaskID: "cb-unavail-data", Callback: CallbackUnavailable, FailureWithData: true}, `{"code":500,"msg":"The 4K version of this video is unavailable. Please try a different video.","data":{"taskId":"cb-unavail-data"}}`, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			sim, _ := startSim(t, Config{CallbackBaseURL: rc.srv.URL + "/v1/callbacks/4k", HMACKey: testKey, DefaultVideoBytes: 100_000})
			tc.spec.Index = 2
			task := mustAdd(t, sim, tc.spec)
			res, err := sim.SendCallback(context.Background(), tc.spec.TaskID, 2)
			if err != nil {
				t.Fatalf("SendCallback: %v (%+v)", err, res)
			}
			if res.Attempts != 1 || res.Delivered != 1 || res.LastStatus != 200 {
				t.Errorf("result %+v: want one delivered attempt", res)
			}
			reqs := rc.requests()
			if got, want := len(reqs), 1; got != want {
				t.Fatalf("%d requests, want %d", got, want)
			}
			r := reqs[0]
			if got, want := r.path, "/v1/callbacks/4k/"+tc.spec.TaskID; got != want {
				t.Errorf("path %q, want %q", got, want)
			}
			if got, want := r.query, "index=2"; got != want {
				t.Errorf("query %q, want %q", got, want)
			}
			if got, want := r.header.Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type %q, want %q", got, want)
			}
			want := tc.want
			if len(task.VideoURLs) > 0 {
				v, _ := json.Marshal(task.VideoURLs[0])
				i, _ := json.Marshal(task.ImageURLs[0])
				want = strings.NewReplacer("%v", string(v), "%i", string(i)).Replace(want)
			}
			if got := compactJSON(t, r.body); got != compactJSON(t, []byte(want)) {
				t.Errorf("body\n%s\nwant\n%s", got, want)
			}
			var parsed struct {
				Code int `json:"code"`
			}
			if err := json.Unmarshal(r.body, &parsed); err != nil || parsed.Code != tc.code {
				t.Errorf("code %d (%v), want %d", parsed.Code, err, tc.code)
			}
			// The signature covers the task id, also for a failure whose body has none.
			ts, sig := r.header.Get(signature.HeaderTimestamp), r.header.Get(signature.HeaderSignature)
			v := signature.NewVerifier([]string{"old-key", testKey}, 5*time.Minute)
			if err := v.Verify(tc.spec.TaskID, ts, sig, time.Now()); err != nil {
				t.Errorf("pkg/signature rejects the signature: %v", err)
			}
			m := hmac.New(sha256.New, []byte(testKey))
			m.Write([]byte(tc.spec.TaskID + "." + ts))
			if got, want := sig, base64.StdEncoding.EncodeToString(m.Sum(nil)); got != want {
				t.Errorf("signature %q, independently computed %q", got, want)
			}
		})
	}
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestCallbackSignatureModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		mode    string
		headers bool
		want    error
	}{
		{"unsigned without a key", "", SignatureDefault, false, nil},
		{"none despite a key", testKey, SignatureNone, false, nil},
		{"bad", testKey, SignatureBad, true, signature.ErrMismatch},
		{"stale", testKey, SignatureStale, true, signature.ErrStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			sim, _ := startSim(t, Config{CallbackBaseURL: rc.srv.URL, HMACKey: tc.key, DefaultVideoBytes: 100_000})
			mustAdd(t, sim, TaskSpec{TaskID: "sig", Signature: tc.mode})
			if _, err := sim.SendCallback(context.Background(), "sig", 0); err != nil {
				t.Fatal(err)
			}
			h := rc.requests()[0].header
			ts, sig := h.Get(signature.HeaderTimestamp), h.Get(signature.HeaderSignature)
			if got := ts != "" && sig != ""; got != tc.headers {
				t.Fatalf("signature headers present = %v, want %v", got, tc.headers)
			}
			if !tc.headers {
				return
			}
			err := signature.NewVerifier([]string{testKey}, 5*time.Minute).Verify("sig", ts, sig, time.Now())
			if !errors.Is(err, tc.want) {
				t.Errorf("verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCallbackRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    func(n int) int
		attempts  int
		delivered int
		statuses  string
	}{
		{"accepted at once", func(int) int { return 200 }, 1, 1, "[200]"},
		{"accepted on the second try", func(n int) int { return map[bool]int{true: 503, false: 200}[n == 1] }, 2, 1, "[503 200]"},
		{"given up after three", func(int) int { return 500 }, 3, 0, "[500 500 500]"},
		{"201 is not 200", func(int) int { return 201 }, 3, 0, "[201 201 201]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tc.status)
			sim, _ := startSim(t, Config{CallbackBaseURL: rc.srv.URL, CallbackRetryDelay: 10 * time.Millisecond, DefaultVideoBytes: 100_000})
			mustAdd(t, sim, TaskSpec{TaskID: "retry"})
			res, err := sim.SendCallback(context.Background(), "retry", 0)
			if gaveUp := tc.delivered == 0; gaveUp != errors.Is(err, ErrGaveUp) {
				t.Errorf("err %v, gave up %v", err, gaveUp)
			}
			if got, want := res.Attempts, tc.attempts; got != want {
				t.Errorf("attempts %d, want %d", got, want)
			}
			if got, want := len(rc.requests()), tc.attempts; got != want {
				t.Errorf("receiver got %d requests, want %d", got, want)
			}
			if got, want := res.Delivered, tc.delivered; got != want {
				t.Errorf("delivered %d, want %d", got, want)
			}
			if got, want := fmtInts(res.Statuses), tc.statuses; got != want {
				t.Errorf("statuses %s, want %s", got, want)
			}
			cbs := sim.Stats().Callbacks
			if len(cbs) != 1 || cbs[0].Attempts != tc.attempts || cbs[0].GaveUp != 1-tc.delivered {
				t.Errorf("recorded callbacks %+v", cbs)
			}
		})
	}
}

func fmtInts(v []int) string {
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), ",", " ")
}

func TestCallbackTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(n int) int {
		if n == 1 {
			<-release
		}
		return 200
	})
	t.Cleanup(func() { close(release) })
	sim, _ := startSim(t, Config{CallbackBaseURL: rc.srv.URL, CallbackTimeout: 200 * time.Millisecond,
		CallbackRetryDelay: time.Millisecond, DefaultVideoBytes: 100_000})
	mustAdd(t, sim, TaskSpec{TaskID: "slow-receiver"})
	res, err := sim.SendCallback(context.Background(), "slow-receiver", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmtInts(res.Statuses), "[0 200]"; got != want {
		t.Errorf("statuses %s, want %s (a timeout, then a delivery)", got, want)
	}
	if len(res.Errors) != 1 {
		t.Errorf("errors %v, want the timeout", res.Errors)
	}
}

func TestCallbackDuplicates(t *testing.T) {
	t.Parallel()
	for _, concurrent := range []bool{false, true} {
		t.Run(map[bool]string{false: "sequential", true: "concurrent"}[concurrent], func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			sim, _ := startSim(t, Config{CallbackBaseURL: rc.srv.URL, DefaultVideoBytes: 100_000})
			mustAdd(t, sim, TaskSpec{TaskID: "dups", Duplicates: 4, Concurrent: concurrent})
			res, err := sim.SendCallback(context.Background(), "dups", 0)
			if err != nil {
				t.Fatal(err)
			}
			if res.Copies != 4 || res.Delivered != 4 || res.Attempts != 4 {
				t.Errorf("result %+v, want 4 copies delivered in 4 attempts", res)
			}
			reqs := rc.requests()
			if got, want := len(reqs), 4; got != want {
				t.Fatalf("receiver got %d, want %d", got, want)
			}
			for _, r := range reqs[1:] {
				if string(r.body) != string(reqs[0].body) {
					t.Error("duplicates differ")
				}
			}
			// A second send is another callback of the same task.
			if _, err := sim.SendCallback(context.Background(), "dups", 0); err != nil {
				t.Fatal(err)
			}
			if got, want := len(rc.requests()), 8; got != want {
				t.Errorf("receiver got %d after resending, want %d", got, want)
			}
		})
	}
}

func TestCallbackExplicitURL(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	sim, _ := startSim(t, Config{CallbackBaseURL: "http://127.0.0.1:1/unused", DefaultVideoBytes: 100_000})
	mustAdd(t, sim, TaskSpec{TaskID: "explicit", CallbackURL: rc.srv.URL + "/hook?x=1"})
	if _, err := sim.SendCallback(context.Background(), "explicit", 0); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	if r.path != "/hook" || r.query != "x=1" {
		t.Errorf("got %s?%s, want /hook?x=1", r.path, r.query)
	}
	if _, err := sim.SendCallback(context.Background(), "missing", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown task: %v", err)
	}
}
