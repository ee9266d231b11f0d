package providersim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

// call sends a JSON request and decodes the JSON answer into out.
func call(t *testing.T, method, url, bearer string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decoding answer: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

type answer struct {
	Code int             `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

type recordInfo struct {
	TaskID      string `json:"taskId"`
	SuccessFlag int    `json:"successFlag"`
	Response    *struct {
		TaskID     string   `json:"taskId"`
		ResultURLs []string `json:"resultUrls"`
		Resolution string   `json:"resolution"`
	} `json:"response"`
	ErrorCode    *int    `json:"errorCode"`
	ErrorMessage string  `json:"errorMessage"`
	CreateTime   string  `json:"createTime"`
	CompleteTime *string `json:"completeTime"`
}

func TestProviderAPIAuth(t *testing.T) {
	t.Parallel()
	_, srv := startSim(t, Config{APIKey: "api-key"})
	tests := []struct {
		name, method, path, bearer string
		status                     int
	}{
		{"4k without key", http.MethodPost, "/api/v1/veo/get-4k-video", "", 401},
		{"4k wrong key", http.MethodPost, "/api/v1/veo/get-4k-video", "nope", 401},
		{"record-info without key", http.MethodGet, "/api/v1/veo/record-info?taskId=x", "", 401},
		{"record-info wrong key", http.MethodGet, "/api/v1/veo/record-info?taskId=x", "nope", 401},
		{"record-info unknown task", http.MethodGet, "/api/v1/veo/record-info?taskId=x", "api-key", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			var body any
			if tc.method == http.MethodPost {
				body = map[string]any{"taskId": "x", "index": 0}
			}
			if got, want := call(t, tc.method, srv.URL+tc.path, tc.bearer, body, &a), tc.status; got != want {
				t.Errorf("HTTP %d, want %d", got, want)
			}
			if tc.status == 401 && a.Code != 401 {
				t.Errorf("code %d, want 401", a.Code)
			}
		})
	}
}

func TestProviderAPILifecycle(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	sim, srv := startSim(t, Config{APIKey: "api-key", CompleteAfter: time.Second, HMACKey: testKey, DefaultVideoBytes: 100_000})
	hook := rc.srv.URL + "/v1/callbacks/4k/life?index=1"
	req := map[string]any{"taskId": "life", "index": 1, "callBackUrl": hook}
	get4K := srv.URL + "/api/v1/veo/get-4k-video"
	info := srv.URL + "/api/v1/veo/record-info?taskId=life&index=1"

	var a answer
	call(t, http.MethodPost, get4K, "api-key", req, &a)
	if got, want := a.Code, 200; got != want {
		t.Fatalf("first request: code %d (%s), want %d", got, a.Msg, want)
	}
	if got, want := string(a.Data), `{"taskId":"life","resultUrls":null,"imageUrls":null}`; got != want {
		t.Errorf("first request data %s, want %s", got, want)
	}
	call(t, http.MethodPost, get4K, "api-key", req, &a)
	if a.Code != 422 || a.Msg != MsgProcessing {
		t.Errorf("while processing: %d %q, want 422 %q", a.Code, a.Msg, MsgProcessing)
	}
	var ri struct {
		answer
		Data recordInfo `json:"data"`
	}
	call(t, http.MethodGet, info, "api-key", nil, &ri)
	if ri.Data.SuccessFlag != 0 || ri.Data.Response != nil || ri.Data.CompleteTime != nil {
		t.Errorf("record-info while processing: %+v", ri.Data)
	}

	if resp, _, _ := get(t, srv.URL+"/files/life/1/video_0.mp4", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("file while processing: %d, want 404", resp.StatusCode)
	}

	waitFor(t, "the callback", 10*time.Second, func() bool { return len(rc.requests()) == 1 })
	cb := rc.requests()[0]
	if got, want := cb.path+"?"+cb.query, "/v1/callbacks/4k/life?index=1"; got != want {
		t.Errorf("callback to %s, want %s", got, want)
	}
	var body struct {
		Code int `json:"code"`
		Data struct {
			TaskID string `json:"taskId"`
			Info   struct {
				ResultURLs []string `json:"resultUrls"`
			} `json:"info"`
		} `json:"data"`
	}
	if err := json.Unmarshal(cb.body, &body); err != nil || body.Code != 200 || body.Data.TaskID != "life" || len(body.Data.Info.ResultURLs) != 1 {
		t.Fatalf("callback body %s (%v)", cb.body, err)
	}

	var done struct {
		answer
		Data fourKData `json:"data"`
	}
	call(t, http.MethodPost, get4K, "api-key", req, &done)
	if done.Code != 422 || done.Msg != MsgGenerated || len(done.Data.ResultURLs) != 1 || done.Data.ResultURLs[0] != body.Data.Info.ResultURLs[0] {
		t.Errorf("after completion: %+v", done)
	}

	call(t, http.MethodGet, info, "api-key", nil, &ri)
	d := ri.Data
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	if d.TaskID != "life" || d.SuccessFlag != 1 || d.ErrorCode != nil || d.ErrorMessage != "" {
		t.Errorf("record-info: %+v", d)
	}
	if d.Response == nil || d.Response.Resolution != "3840x2160" || len(d.Response.ResultURLs) != 1 {
		t.Errorf("record-info response: %+v", d.Response)
	}
	if !stamp.MatchString(d.CreateTime) || d.CompleteTime == nil || !stamp.MatchString(*d.CompleteTime) {
		t.Errorf("record-info times %q %v", d.CreateTime, d.CompleteTime)
	}
	// The file the callback names is served.
	resp, video, err := get(t, body.Data.Info.ResultURLs[0], nil)
	if err != nil || resp.StatusCode != 200 || int64(len(video)) != 100_000 {
		t.Errorf("downloading the result: %d, %d bytes, %v", resp.StatusCode, len(video), err)
	}
	if body.Data.Info.ResultURLs[0] != srv.URL+"/files/life/1/video_0.mp4" {
		t.Errorf("result URL %s", body.Data.Info.ResultURLs[0])
	}
	if got, want := sim.Stats().Paths["/api/v1/veo/get-4k-video"], int64(3); got != want {
		t.Errorf("get-4k-video requests %d, want %d", got, want)
	}
}

func TestRecordInfoUnavailable(t *testing.T) {
	t.Parallel()
	sim, srv := startSim(t, Config{})
	mustAdd(t, sim, TaskSpec{TaskID: "gone", Callback: CallbackUnavailable})
	var ri struct {
		answer
		Data recordInfo `json:"data"`
	}
	call(t, http.MethodGet, srv.URL+"/api/v1/veo/record-info?taskId=gone", "any", nil, &ri)
	if d := ri.Data; d.SuccessFlag != 2 || d.ErrorCode == nil || *d.ErrorCode != 500 || d.ErrorMessage != MsgUnavailable || d.Response != nil {
		t.Errorf("record-info of an unavailable task: %+v", d)
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int) int {
		if n == 3 {
			return 500
		}
		return 200
	})
	sim, srv := startSim(t, Config{CallbackBaseURL: rc.srv.URL + "/v1/callbacks/4k", CallbackRetryDelay: time.Millisecond})

	var task Task
	spec := map[string]any{"taskId": "ctl", "index": 0, "videoBytes": 50_000, "duplicates": 2,
		"snakeCase": true, "faults": map[string]any{"expired": true}}
	if got, want := call(t, http.MethodPost, srv.URL+"/sim/tasks", "", spec, &task), http.StatusCreated; got != want {
		t.Fatalf("POST /sim/tasks: %d, want %d", got, want)
	}
	if task.TaskID != "ctl" || len(task.VideoURLs) != 1 || task.Files[0].Size != 50_000 || !task.Faults.Expired {
		t.Fatalf("task %+v", task)
	}
	waitFor(t, "two callbacks recorded", 10*time.Second, func() bool { return len(sim.Stats().Callbacks) == 1 })
	if got, want := len(rc.requests()), 2; got != want {
		t.Fatalf("receiver got %d callbacks, want %d", got, want)
	}
	if !bytes.Contains(rc.requests()[0].body, []byte(`"result_urls"`)) {
		t.Errorf("snake case not honoured: %s", rc.requests()[0].body)
	}
	if got, want := call(t, http.MethodPost, srv.URL+"/sim/tasks", "", spec, nil), http.StatusConflict; got != want {
		t.Errorf("duplicate POST /sim/tasks: %d, want %d", got, want)
	}
	if got, want := call(t, http.MethodPost, srv.URL+"/sim/tasks", "", map[string]any{"taskId": "x", "bogus": 1}, nil), http.StatusBadRequest; got != want {
		t.Errorf("unknown field: %d, want %d", got, want)
	}

	resp, _, _ := get(t, task.VideoURLs[0], nil)
	if resp.StatusCode != 404 {
		t.Errorf("expired file: %d", resp.StatusCode)
	}
	// PATCH changes only the fields it names.
	var patched Task
	if got, want := call(t, http.MethodPatch, srv.URL+"/sim/tasks/ctl", "", map[string]any{"expired": false, "serverErrors": 1}, &patched), 200; got != want {
		t.Fatalf("PATCH: %d, want %d", got, want)
	}
	if patched.Faults.Expired || patched.Faults.ServerErrors != 1 {
		t.Errorf("faults after PATCH %+v", patched.Faults)
	}
	resp, _, _ = get(t, task.VideoURLs[0], nil)
	if resp.StatusCode != 503 {
		t.Errorf("after PATCH first request: %d, want 503", resp.StatusCode)
	}
	resp, body, err := get(t, task.VideoURLs[0], nil)
	if err != nil || resp.StatusCode != 200 || sha(body) != task.Files[0].SHA256 {
		t.Errorf("after PATCH second request: %d, %v", resp.StatusCode, err)
	}

	// Sending again: receiver answers 500 once (3rd request), then 200.
	var res CallbackResult
	if got, want := call(t, http.MethodPost, srv.URL+"/sim/tasks/ctl/callback?index=0", "", nil, &res), 200; got != want {
		t.Fatalf("POST callback: %d, want %d", got, want)
	}
	if res.Copies != 2 || res.Attempts != 3 || res.Delivered != 2 {
		t.Errorf("resend result %+v, want 2 copies in 3 attempts", res)
	}
	if got, want := call(t, http.MethodPost, srv.URL+"/sim/tasks/none/callback", "", nil, nil), 404; got != want {
		t.Errorf("callback of unknown task: %d, want %d", got, want)
	}

	var got Task
	if code := call(t, http.MethodGet, srv.URL+"/sim/tasks/ctl", "", nil, &got); code != 200 || got.State != StateSuccess {
		t.Errorf("GET task: %d %+v", code, got)
	}
	var st Stats
	if code := call(t, http.MethodGet, srv.URL+"/sim/stats", "", nil, &st); code != 200 {
		t.Fatalf("GET /sim/stats: %d", code)
	}
	path := "/files/ctl/0/video_0.mp4"
	if fs := st.Files[path]; fs.Requests != 3 || fs.Expired != 1 || fs.ServerErrors != 1 || fs.Full != 1 {
		t.Errorf("file stats %+v", fs)
	}
	if st.Paths[path] != 3 || len(st.Callbacks) != 2 {
		t.Errorf("paths %v, callbacks %+v", st.Paths, st.Callbacks)
	}
}

// TestCloseStopsScheduledWork checks that Close does not wait for a
// scheduled completion and that nothing is called back afterwards.
func TestCloseStopsScheduledWork(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	sim := New(Config{CompleteAfter: time.Hour})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	var a answer
	call(t, http.MethodPost, srv.URL+"/api/v1/veo/get-4k-video", "k", map[string]any{"taskId": "later", "callBackUrl": rc.srv.URL}, &a)
	if a.Code != 200 {
		t.Fatalf("code %d", a.Code)
	}
	closed := make(chan struct{})
	go func() {
		_ = sim.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the scheduled completion")
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("%d callbacks after Close", n)
	}
	if task, err := sim.Task("later", 0); err != nil || task.State != StateProcessing {
		t.Errorf("task %+v, %v: want still processing", task, err)
	}
}
