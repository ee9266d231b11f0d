// Command load is the ingress benchmark's load generator: closed-loop HTTP
// load (a fixed number of connections, each sending its next request as soon
// as the previous one is answered) for a fixed duration, built on the vegeta
// library. Every request is a realistic signed success callback for its own
// task id; bodies and signatures are generated before the attack starts, so
// the load generator spends its time sending. A warm-up attack runs first and
// is discarded. It prints one JSON line with vegeta's own figures.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/veo4k/veo4k/pkg/signature"
)

// Result is what one measured attack came to.
type Result struct {
	Name     string         `json:"name"`
	Requests uint64         `json:"requests"`
	Seconds  float64        `json:"seconds"`
	RPS      float64        `json:"rps"`
	P50ms    float64        `json:"p50_ms"`
	P99ms    float64        `json:"p99_ms"`
	P999ms   float64        `json:"p999_ms"`
	Non2xx   uint64         `json:"non2xx"`
	Codes    map[string]int `json:"codes"`
	Errors   []string       `json:"errors,omitempty"`
	// WarmupRequests is how many requests the discarded warm-up sent.
	WarmupRequests uint64 `json:"warmup_requests"`
	// Reused counts requests that had to reuse a task id (targets ran out):
	// they hit the ingress's duplicate path. Should be 0.
	Reused uint64 `json:"reused"`
}

func main() {
	var (
		base     = flag.String("url", "http://127.0.0.1:18080/v1/callbacks/4k", "callback base URL; /{taskId} is appended")
		key      = flag.String("key", "", "HMAC signing key (empty: unsigned)")
		conns    = flag.Int("conns", 64, "connections (and concurrent requests)")
		duration = flag.Duration("duration", 10*time.Second, "measured attack duration")
		warmup   = flag.Duration("warmup", 2*time.Second, "discarded warm-up attack duration")
		prefix   = flag.String("prefix", "bench", "task id prefix; make it unique per run so no id repeats")
		n        = flag.Int("targets", 600000, "distinct task ids to pre-generate")
		name     = flag.String("name", "", "label of this run in the output")
	)
	flag.Parse()
	if err := run(*base, *key, *conns, *duration, *warmup, *prefix, *n, *name); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// call is one pre-generated request.
type call struct {
	url  string
	body []byte
	sig  string
}

func run(base, key string, conns int, duration, warmup time.Duration, prefix string, n int, name string) error {
	if conns < 1 || n < 1 || duration <= 0 {
		return errors.New("conns, targets and duration must be positive")
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	calls := make([]call, n)
	for i := range calls {
		id := prefix + "_" + strconv.Itoa(i)
		c := call{url: base + "/" + id, body: successBody(id)}
		if key != "" {
			c.sig = signature.Sign([]byte(key), id, ts)
		}
		calls[i] = c
	}
	var next, reused atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		i := next.Add(1) - 1
		if i >= uint64(len(calls)) {
			reused.Add(1)
		}
		c := &calls[i%uint64(len(calls))]
		t.Method, t.URL, t.Body = http.MethodPost, c.url, c.body
		t.Header = http.Header{"Content-Type": {"application/json"}}
		if c.sig != "" {
			t.Header["X-Webhook-Timestamp"] = []string{ts}
			t.Header["X-Webhook-Signature"] = []string{c.sig}
		}
		return nil
	}
	attacker := func() *vegeta.Attacker {
		return vegeta.NewAttacker(
			vegeta.Workers(uint64(conns)), vegeta.MaxWorkers(uint64(conns)),
			vegeta.Connections(conns), vegeta.MaxConnections(conns),
			vegeta.KeepAlive(true), vegeta.HTTP2(false),
			vegeta.Timeout(30*time.Second),
		)
	}
	// Rate 0 with MaxWorkers: each worker sends as soon as its last request
	// was answered (closed loop).
	closed := vegeta.Rate{Freq: 0}
	var warm uint64
	if warmup > 0 {
		for range attacker().Attack(targeter, closed, warmup, "warmup") {
			warm++
		}
	}
	reused.Store(0)
	var m vegeta.Metrics
	for res := range attacker().Attack(targeter, closed, duration, "measure") {
		m.Add(res)
	}
	m.Close()

	out := Result{
		Name:     name,
		Requests: m.Requests,
		Seconds:  (m.Duration + m.Wait).Seconds(),
		P50ms:    ms(m.Latencies.P50),
		P99ms:    ms(m.Latencies.P99),
		P999ms:   ms(m.Latencies.Quantile(0.999)),
		Codes:    m.StatusCodes,
		Errors:   m.Errors,
		Reused:   reused.Load(),

		WarmupRequests: warm,
	}
	if out.Seconds > 0 {
		out.RPS = float64(m.Requests) / out.Seconds
	}
	var ok uint64
	for code, count := range m.StatusCodes {
		if len(code) == 3 && code[0] == '2' {
			ok += uint64(count)
		}
	}
	out.Non2xx = m.Requests - ok
	if len(out.Errors) > 5 {
		out.Errors = out.Errors[:5]
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// successBody is the provider's documented success callback (PROVIDER.md §1)
// for task id.
func successBody(id string) []byte {
	return []byte(`{"code":200,"msg":"4K Video generated successfully.","data":{"taskId":"` + id +
		`","info":{"resultUrls":["https://file.aiquickdraw.com/v/` + id + `.mp4"],"imageUrls":["https://file.aiquickdraw.com/v/` + id + `.jpg"]}}}`)
}
