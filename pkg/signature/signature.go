// Package signature signs and verifies the provider's webhook signature
// (PROVIDER.md §2): base64(HMAC-SHA256(key, taskId + "." + timestamp)), with
// the timestamp in X-Webhook-Timestamp (Unix seconds) and the signature in
// X-Webhook-Signature. The body is not covered.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The headers that carry the signature.
const (
	HeaderTimestamp = "X-Webhook-Timestamp"
	HeaderSignature = "X-Webhook-Signature"
)

// Errors a verification can end with; all mean 401.
var (
	ErrMissing   = errors.New("signature or timestamp header missing")
	ErrTimestamp = errors.New("timestamp is not a Unix time in seconds")
	ErrStale     = errors.New("timestamp outside the accepted tolerance")
	ErrEncoding  = errors.New("signature is not standard base64")
	ErrMismatch  = errors.New("signature does not match")
)

// Sign returns the signature of taskID at timestamp ts (Unix seconds, as sent).
func Sign(key []byte, taskID, ts string) string {
	return base64.StdEncoding.EncodeToString(mac(key, taskID, ts))
}

func mac(key []byte, taskID, ts string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(taskID))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	return m.Sum(nil)
}

// Verifier checks signatures against one or more keys (several during key
// rotation) and a clock-skew tolerance applied both ways.
type Verifier struct {
	keys      [][]byte
	tolerance time.Duration
}

// NewVerifier returns a verifier for keys. With no keys, Enabled is false and
// the caller accepts unsigned callbacks.
func NewVerifier(keys []string, tolerance time.Duration) *Verifier {
	v := &Verifier{tolerance: tolerance}
	for _, k := range keys {
		if k != "" {
			v.keys = append(v.keys, []byte(k))
		}
	}
	return v
}

// Enabled reports whether at least one key is configured.
func (v *Verifier) Enabled() bool { return len(v.keys) > 0 }

// Verify checks the signature header sig of taskID at timestamp header ts,
// against now. Every key is tried in constant time.
func (v *Verifier) Verify(taskID, ts, sig string, now time.Time) error {
	if ts == "" || sig == "" {
		return ErrMissing
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(secs, 0)); d > v.tolerance || d < -v.tolerance {
		return fmt.Errorf("%w (%s)", ErrStale, d.Round(time.Second))
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return ErrEncoding
	}
	ok := 0
	for _, k := range v.keys {
		ok |= boolInt(hmac.Equal(got, mac(k, taskID, ts)))
	}
	if ok == 0 {
		return ErrMismatch
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
