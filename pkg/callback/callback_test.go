package callback_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/veo4k/veo4k/pkg/callback"
)

const (
	successBody = `{"code": 200, "msg": "4K Video generated successfully.",
 "data": {"taskId": "veo_task_example123",
          "info": {"resultUrls": ["https://file.aiquickdraw.com/v/example_task_1234567890.mp4"],
                   "imageUrls":  ["https://file.aiquickdraw.com/v/example_task_1234567890.jpg"]}}}`
	failureBody = `{"code": 500, "msg": "The 4K version of this video is unavailable. Please try a different video.",
 "data": null}`
)

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	const v1, v2, i1 = "https://file.aiquickdraw.com/a.mp4", "https://tempfile.aiquickdraw.com/b.mp4", "https://file.aiquickdraw.com/a.jpg"
	tests := []struct {
		name   string
		body   string
		want   callback.Callback
		wantOK bool // Validate passes
	}{
		{"documented success", successBody, callback.Callback{
			Code: 200, Msg: "4K Video generated successfully.", TaskID: "veo_task_example123",
			VideoURLs: []string{"https://file.aiquickdraw.com/v/example_task_1234567890.mp4"},
			ImageURLs: []string{"https://file.aiquickdraw.com/v/example_task_1234567890.jpg"},
		}, true},
		{"documented failure with data null", failureBody, callback.Callback{
			Code: 500, Msg: "The 4K version of this video is unavailable. Please try a different video.",
		}, true},
		{"failure with task id", `{"code":400,"msg":"bad","data":{"taskId":"t-1"}}`,
			callback.Callback{Code: 400, Msg: "bad", TaskID: "t-1"}, true},
		{"snake case", `{"code":200,"msg":"ok","data":{"task_id":"t_2","info":{"result_urls":["` + v1 + `"],"image_urls":["` + i1 + `"],"media_ids":["x"]}}}`,
			callback.Callback{Code: 200, Msg: "ok", TaskID: "t_2", VideoURLs: []string{v1}, ImageURLs: []string{i1}}, true},
		{"urls directly under data", `{"code":200,"msg":"ok","data":{"taskId":"t","result_urls":["` + v1 + `"],"resultUrls":["` + v2 + `"],"imageUrls":["` + i1 + `"]}}`,
			callback.Callback{Code: 200, Msg: "ok", TaskID: "t", VideoURLs: []string{v2, v1}, ImageURLs: []string{i1}}, true},
		{"spellings merged without repeats", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["` + v1 + `"],"result_urls":["` + v1 + `","` + v2 + `"]}}}`,
			callback.Callback{Code: 200, TaskID: "t", VideoURLs: []string{v1, v2}}, true},
		{"unknown fields ignored", `{"code":200,"msg":"ok","extra":{"a":[1,2]},"data":{"taskId":"t","fallbackFlag":true,"creditsConsumed":3,"info":{"resultUrls":["` + v1 + `"],"other":null}}}`,
			callback.Callback{Code: 200, Msg: "ok", TaskID: "t", VideoURLs: []string{v1}}, true},
		{"both id spellings agreeing", `{"code":500,"data":{"taskId":"t","task_id":"t"}}`,
			callback.Callback{Code: 500, TaskID: "t"}, true},
		{"http url and leading space", ` {"code":200,"data":{"taskId":"t","info":{"resultUrls":["http://127.0.0.1:8080/x.mp4"]}}}`,
			callback.Callback{Code: 200, TaskID: "t", VideoURLs: []string{"http://127.0.0.1:8080/x.mp4"}}, true},
		{"info null", `{"code":500,"msg":"x","data":{"taskId":"t","info":null}}`,
			callback.Callback{Code: 500, Msg: "x", TaskID: "t"}, true},
		{"128-char id", `{"code":500,"data":{"taskId":"` + strings.Repeat("a", 128) + `"}}`,
			callback.Callback{Code: 500, TaskID: strings.Repeat("a", 128)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := callback.Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Code != tt.want.Code || got.Msg != tt.want.Msg || got.TaskID != tt.want.TaskID ||
				!slices.Equal(got.VideoURLs, tt.want.VideoURLs) || !slices.Equal(got.ImageURLs, tt.want.ImageURLs) {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if err := got.Validate(); (err == nil) != tt.wantOK {
				t.Errorf("Validate = %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, callback.ErrSyntax},
		{"not json", `hello`, callback.ErrSyntax},
		{"truncated", `{"code":200,"data":{"taskId":"t"`, callback.ErrSyntax},
		{"array", `[1,2]`, callback.ErrSyntax},
		{"null", `null`, callback.ErrSyntax},
		{"trailing garbage", `{"code":200}x`, callback.ErrSyntax},
		{"code missing", `{"msg":"x","data":null}`, callback.ErrType},
		{"code null", `{"code":null}`, callback.ErrType},
		{"code string", `{"code":"200","data":null}`, callback.ErrType},
		{"code float", `{"code":200.5,"data":null}`, callback.ErrType},
		{"code too big", `{"code":99999999999,"data":null}`, callback.ErrType},
		{"msg number", `{"code":500,"msg":5}`, callback.ErrType},
		{"data string", `{"code":500,"data":"t"}`, callback.ErrType},
		{"data array", `{"code":500,"data":[]}`, callback.ErrType},
		{"data number", `{"code":500,"data":1}`, callback.ErrType},
		{"task id number", `{"code":500,"data":{"taskId":5}}`, callback.ErrType},
		{"info string", `{"code":200,"data":{"taskId":"t","info":"x"}}`, callback.ErrType},
		{"urls string", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":"https://a/b"}}}`, callback.ErrType},
		{"url number", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":[1]}}}`, callback.ErrType},
		{"id with dot", `{"code":500,"data":{"taskId":"a.b"}}`, callback.ErrTaskID},
		{"id with star", `{"code":500,"data":{"taskId":"a*"}}`, callback.ErrTaskID},
		{"id with gt", `{"code":500,"data":{"taskId":">"}}`, callback.ErrTaskID},
		{"id with space", `{"code":500,"data":{"taskId":"a b"}}`, callback.ErrTaskID},
		{"id traversal", `{"code":500,"data":{"taskId":"../x"}}`, callback.ErrTaskID},
		{"id unicode", `{"code":500,"data":{"taskId":"tâche"}}`, callback.ErrTaskID},
		{"id 129", `{"code":500,"data":{"taskId":"` + strings.Repeat("a", 129) + `"}}`, callback.ErrTaskID},
		{"ids differ", `{"code":500,"data":{"taskId":"a","task_id":"b"}}`, callback.ErrTaskID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := callback.Parse([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			if err.Error() == "" {
				t.Error("error message is empty")
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want error
	}{
		{"success without data", `{"code":200,"data":null}`, callback.ErrNoVideo},
		{"success with empty list", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":[]}}}`, callback.ErrNoVideo},
		{"success with images only", `{"code":200,"data":{"taskId":"t","info":{"imageUrls":["https://a/b.jpg"]}}}`, callback.ErrNoVideo},
		{"relative url", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["/v/a.mp4"]}}}`, callback.ErrURL},
		{"ftp url", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["ftp://a/b.mp4"]}}}`, callback.ErrURL},
		{"file url", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["file:///etc/passwd"]}}}`, callback.ErrURL},
		{"empty url", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":[""]}}}`, callback.ErrURL},
		{"null url", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":[null]}}}`, callback.ErrURL},
		{"no host", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["https:///a.mp4"]}}}`, callback.ErrURL},
		{"opaque", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["https:a.mp4"]}}}`, callback.ErrURL},
		{"space in host", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["https://a b/x"]}}}`, callback.ErrURL},
		{"bad image url", `{"code":200,"data":{"taskId":"t","info":{"resultUrls":["https://a/b.mp4"],"imageUrls":["javascript:alert(1)"]}}}`, callback.ErrURL},
		{"bad url on failure", `{"code":500,"data":{"taskId":"t","resultUrls":["nope"]}}`, callback.ErrURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := callback.Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(); !errors.Is(err, tt.want) {
				t.Fatalf("Validate error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidTaskID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true}, {"A-z_09", true}, {strings.Repeat("x", 128), true},
		{"", false}, {strings.Repeat("x", 129), false}, {"a.b", false}, {"*", false},
		{">", false}, {"a b", false}, {"../a", false}, {"a/b", false}, {"é", false}, {"a\x00", false},
	}
	for _, tt := range tests {
		if got := callback.ValidTaskID(tt.id); got != tt.want {
			t.Errorf("ValidTaskID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// FuzzParse checks that no input panics, that every error is one of the
// documented kinds, and that whatever is accepted keeps the invariants the
// ingress relies on (a subject-safe task id, only absolute http(s) URLs, a
// video URL on every success).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		successBody, failureBody, ``, `{}`, `null`, `{"code":200}`,
		`{"code":200,"data":{"task_id":"x","result_urls":["https://a/b"],"image_urls":["http://c/d"]}}`,
		`{"code":500,"data":{"taskId":"a.b"}}`, `{"code":"200"}`, `{"code":200,"data":"x"}`,
		`{"code":200,"data":{"taskId":"t","info":{"resultUrls":["ftp://x"]}}}`,
	} {
		f.Add([]byte(s))
	}
	kinds := []error{callback.ErrSyntax, callback.ErrType, callback.ErrTaskID, callback.ErrURL, callback.ErrNoVideo}
	known := func(err error) bool {
		return slices.ContainsFunc(kinds, func(k error) bool { return errors.Is(err, k) })
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := callback.Parse(b)
		if err != nil {
			if !known(err) {
				t.Fatalf("Parse error of unknown kind: %v", err)
			}
			return
		}
		if c.TaskID != "" && !callback.ValidTaskID(c.TaskID) {
			t.Fatalf("accepted invalid task id %q", c.TaskID)
		}
		if err := c.Validate(); err != nil {
			if !known(err) {
				t.Fatalf("Validate error of unknown kind: %v", err)
			}
			return
		}
		if c.Success() && len(c.VideoURLs) == 0 {
			t.Fatal("success accepted without a video url")
		}
		for _, raw := range append(slices.Clone(c.VideoURLs), c.ImageURLs...) {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("accepted url %q that is not absolute http(s)", raw)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	body := []byte(successBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		c, err := callback.Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFixtures parses the shared fixture bodies in testdata/callbacks.
func TestFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		code    int32
		taskID  string
		videos  int
		images  int
		success bool
	}{
		{"success.json", 200, "veo_task_example123", 1, 1, true},
		{"success_snake.json", 200, "veo_task_example123", 1, 1, true},
		{"success_data_level.json", 200, "veo_task_example123", 1, 0, true},
		{"failure_null.json", 500, "", 0, 0, false},
		{"failure_with_task.json", 400, "veo_task_example123", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "callbacks", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := callback.Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if c.Code != tt.code || c.TaskID != tt.taskID || len(c.VideoURLs) != tt.videos || len(c.ImageURLs) != tt.images || c.Success() != tt.success {
				t.Errorf("got %+v", c)
			}
		})
	}
}
