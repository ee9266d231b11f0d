package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/veo4k/veo4k/pkg/signature"
)

// Fixed vectors, computed outside Go (Python's hmac module):
// base64(HMAC-SHA256(key, taskId + "." + timestamp)).
var vectors = []struct {
	key, taskID, ts, sig string
}{
	{"test-key", "veo_task_example123", "1700000000", "WRYmhOxONe65sdZouYOnmyvPalXcseUSOnQbvoEBgf0="},
	{"whsec_rotated", "abc-DEF_123", "1700000300", "+MoT+wdq0ulYRtEWyBfOzRA6ihYMxvyCEQP3koFIjF0="},
}

// independent signs with crypto/hmac directly, not through the package.
func independent(key, taskID, ts string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(taskID + "." + ts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignVectors(t *testing.T) {
	t.Parallel()
	for _, v := range vectors {
		if got, want := signature.Sign([]byte(v.key), v.taskID, v.ts), v.sig; got != want {
			t.Errorf("Sign(%q, %q, %q) = %q, want %q", v.key, v.taskID, v.ts, got, want)
		}
		if got, want := independent(v.key, v.taskID, v.ts), v.sig; got != want {
			t.Errorf("independent HMAC = %q, want %q (test helper broken)", got, want)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	const tolerance = 5 * time.Minute
	now := time.Unix(1700000000, 0)
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	// Rotation: the old and the new key are both accepted.
	v := signature.NewVerifier([]string{"old-key", "", "new-key"}, tolerance)
	if !v.Enabled() {
		t.Fatal("Enabled = false with keys")
	}
	tests := []struct {
		name    string
		taskID  string
		ts, sig string
		want    error
	}{
		{"old key", "task1", ts(0), independent("old-key", "task1", ts(0)), nil},
		{"new key", "task1", ts(0), independent("new-key", "task1", ts(0)), nil},
		{"just inside the past tolerance", "task1", ts(-tolerance), independent("new-key", "task1", ts(-tolerance)), nil},
		{"just inside the future tolerance", "task1", ts(tolerance), independent("new-key", "task1", ts(tolerance)), nil},
		{"past the tolerance", "task1", ts(-tolerance - time.Second), independent("new-key", "task1", ts(-tolerance-time.Second)), signature.ErrStale},
		{"ahead of the tolerance", "task1", ts(tolerance + time.Second), independent("new-key", "task1", ts(tolerance+time.Second)), signature.ErrStale},
		{"10 minutes old", "task1", ts(-10 * time.Minute), independent("new-key", "task1", ts(-10*time.Minute)), signature.ErrStale},
		{"10 minutes ahead", "task1", ts(10 * time.Minute), independent("new-key", "task1", ts(10*time.Minute)), signature.ErrStale},
		{"wrong key", "task1", ts(0), independent("retired-key", "task1", ts(0)), signature.ErrMismatch},
		{"other task", "task2", ts(0), independent("new-key", "task1", ts(0)), signature.ErrMismatch},
		{"other timestamp signed", "task1", ts(0), independent("new-key", "task1", ts(time.Second)), signature.ErrMismatch},
		{"hex instead of base64", "task1", ts(0), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", signature.ErrEncoding},
		{"malformed base64", "task1", ts(0), "not*base64!", signature.ErrEncoding},
		{"url-safe base64", "task1", ts(0), "-_-_" + independent("new-key", "task1", ts(0))[4:], signature.ErrEncoding},
		{"truncated signature", "task1", ts(0), base64.StdEncoding.EncodeToString([]byte("short")), signature.ErrEncoding},
		{"signature missing", "task1", ts(0), "", signature.ErrMissing},
		{"timestamp missing", "task1", "", independent("new-key", "task1", ""), signature.ErrMissing},
		{"timestamp not a number", "task1", "yesterday", independent("new-key", "task1", "yesterday"), signature.ErrTimestamp},
		{"timestamp in milliseconds", "task1", strconv.FormatInt(now.UnixMilli(), 10), independent("new-key", "task1", strconv.FormatInt(now.UnixMilli(), 10)), signature.ErrStale},
		{"timestamp with fraction", "task1", ts(0) + ".5", independent("new-key", "task1", ts(0)+".5"), signature.ErrTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(tt.taskID, tt.ts, tt.sig, now)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify = %v, want success", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifierWithoutKeys(t *testing.T) {
	t.Parallel()
	if signature.NewVerifier(nil, time.Minute).Enabled() {
		t.Error("Enabled = true without keys")
	}
	if signature.NewVerifier([]string{"", ""}, time.Minute).Enabled() {
		t.Error("Enabled = true with only empty keys")
	}
}

// FuzzVerify checks that no header value panics Verify, that every failure
// is one of the documented errors, and that only a signature made with the
// key over exactly that task id and timestamp passes.
func FuzzVerify(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.taskID, v.ts, v.sig)
	}
	f.Add("t", "", "")
	f.Add("t", "abc", "====")
	f.Add("t", "-9223372036854775808", "AAAA")
	f.Add("t", "9223372036854775807", independent("fuzz-key", "t", "9223372036854775807"))
	const key = "fuzz-key"
	v := signature.NewVerifier([]string{key}, 5*time.Minute)
	now := time.Unix(1700000000, 0)
	known := []error{signature.ErrMissing, signature.ErrTimestamp, signature.ErrStale, signature.ErrEncoding, signature.ErrMismatch}
	f.Fuzz(func(t *testing.T, taskID, ts, sig string) {
		err := v.Verify(taskID, ts, sig, now)
		if err != nil {
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("Verify error of unknown kind: %v", err)
		}
		if sig != independent(key, taskID, ts) {
			t.Fatalf("accepted a signature not made with the key: task %q ts %q sig %q", taskID, ts, sig)
		}
		// And the genuine signature of a fresh timestamp always passes.
		fresh := strconv.FormatInt(now.Unix(), 10)
		if err := v.Verify(taskID, fresh, independent(key, taskID, fresh), now); err != nil {
			t.Fatalf("genuine signature refused: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := signature.NewVerifier([]string{"old-key", "new-key"}, 5*time.Minute)
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := independent("new-key", "veo_task_example123", ts)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify("veo_task_example123", ts, sig, now); err != nil {
			b.Fatal(err)
		}
	}
}
