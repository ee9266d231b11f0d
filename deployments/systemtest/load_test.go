//go:build system

package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// loadGen plays a provider under steady load: each worker creates a fresh
// task in the simulator and posts its callback to an ingress, over and over,
// recording every answer.
type loadGen struct {
	s        *stack
	failover bool // on no answer, try the next ingress (as a load balancer would)
	hc       *http.Client
	stopc    chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	answers []answer
	tasks   map[string]simTask
	errs    []string
}

type answer struct {
	taskID     string
	status     int // 0: no answer at all
	retryAfter string
	sent, at   time.Time
}

func (s *stack) startLoad(prefix string, workers int, failover bool) *loadGen {
	l := &loadGen{s: s, failover: failover, stopc: make(chan struct{}), tasks: map[string]simTask{},
		hc: &http.Client{Timeout: 20 * time.Second}}
	for w := range workers {
		l.wg.Go(func() {
			tick := time.NewTicker(150 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-l.stopc:
					return
				case <-tick.C:
				}
				l.one(fmt.Sprintf("%s-%d-%d", prefix, w, n), w+n)
			}
		})
	}
	return l
}

func (l *loadGen) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

// one creates a task and sends its callback once (with failover, to the
// next ingress as long as none answers).
func (l *loadGen) one(id string, pick int) {
	b, _ := json.Marshal(map[string]any{"taskId": id, "videoBytes": 64_000, "callback": "none"})
	resp, err := l.hc.Post(l.s.sim.url+"/sim/tasks", "application/json", bytes.NewReader(b))
	if err != nil {
		l.fail("creating task %s: %v", id, err)
		return
	}
	var task simTask
	err = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		l.fail("creating task %s: status %d, %v", id, resp.StatusCode, err)
		return
	}
	l.mu.Lock()
	l.tasks[id] = task
	l.mu.Unlock()

	sent := time.Now()
	status := 0
	var header http.Header
	tries := 1
	if l.failover {
		tries = 4 * len(l.s.ingress)
	}
	for i := 0; i < tries && status == 0; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		status, header, _ = sendCallbackHeader(ctx, l.hc, l.s.ingress[(pick+i)%len(l.s.ingress)].url, task)
		cancel()
		if status == 0 && i+1 < tries {
			<-time.After(100 * time.Millisecond)
		}
	}
	l.mu.Lock()
	l.answers = append(l.answers, answer{taskID: id, status: status, retryAfter: header.Get("Retry-After"), sent: sent, at: time.Now()})
	l.mu.Unlock()
}

func (l *loadGen) stop() {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		l.s.t.Error("load: " + e)
	}
}

func (l *loadGen) snapshot() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]answer(nil), l.answers...)
}

// waitOK waits for n answers 200 to callbacks sent after since.
func (l *loadGen) waitOK(since time.Time, n int, timeout time.Duration) {
	l.s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := 0
		for _, a := range l.snapshot() {
			if a.status == http.StatusOK && a.sent.After(since) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			l.s.t.Fatalf("only %d callbacks sent after %s answered 200 within %v", got, since.Format(time.TimeOnly), timeout)
		}
		poll()
	}
}

// TestNATSDownUnderLoad: NATS is stopped for 20 s under steady callback
// load → the ingress answers 503 (never 200) while it is down, recovers by
// itself when NATS is back on its volume, and every callback answered 200
// is catalogued; the provider's retries of the 503s are catalogued too.
func TestNATSDownUnderLoad(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	l := s.startLoad("natsdown", 4, false)
	l.waitOK(time.Time{}, 10, time.Minute)

	s.stop(s.nats, 10*time.Second)
	down := time.Now()
	<-time.After(20 * time.Second) // the outage
	up := time.Now()
	s.startAgain(s.nats)
	l.waitOK(up, 10, 2*time.Minute) // recovered by itself
	l.stop()

	answers := l.snapshot()
	var ok, refused []string
	during := map[int]int{}
	for _, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok = append(ok, a.taskID)
		case http.StatusServiceUnavailable:
			refused = append(refused, a.taskID)
			if a.retryAfter == "" {
				t.Errorf("503 for %s without Retry-After", a.taskID)
			}
		default:
			t.Errorf("callback %s answered %d (sent %s)", a.taskID, a.status, a.sent.Format(time.TimeOnly))
		}
		if a.sent.After(down) && a.at.Before(up) {
			during[a.status]++
		}
	}
	if during[http.StatusServiceUnavailable] == 0 || len(during) != 1 {
		t.Errorf("answers while NATS was down: %v, want only 503s", during)
	}
	recovered := time.Duration(-1)
	for _, a := range answers {
		if a.status == http.StatusOK && a.sent.After(up) && (recovered < 0 || a.at.Sub(up) < recovered) {
			recovered = a.at.Sub(up)
		}
	}
	t.Logf("%d callbacks: %d answered 200, %d answered 503; while NATS was down: %v; first 200 %v after NATS was started again",
		len(answers), len(ok), len(refused), during, recovered.Round(time.Millisecond))

	ready := s.waitStatus(ok, "ready", 3*time.Minute)
	for _, id := range ok {
		s.verifyFiles(l.tasks[id], ready[id])
	}

	// The provider retries what got 503: now accepted and catalogued.
	for _, id := range refused {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		code, err := sendCallback(ctx, s.http, s.ingress[0].url, l.tasks[id])
		cancel()
		if code != http.StatusOK {
			t.Errorf("retried callback %s: status %d, %v", id, code, err)
		}
	}
	s.waitStatus(refused, "ready", 3*time.Minute)
	s.checkEvents(append(ok, refused...), nil)
}

// TestRollingRestartUnderLoad: each ingress and fetcher container is
// restarted in turn (SIGTERM, graceful) under steady load, with the callers
// failing over between the two ingresses → no answer other than 200 (NATS
// stays up), and every entry catalogued once.
func TestRollingRestartUnderLoad(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{ingress: 2})
	l := s.startLoad("rolling", 4, true)
	l.waitOK(time.Time{}, 10, time.Minute)

	for _, v := range []*svc{s.ingress[0], s.ingress[1], s.fetchers[0], s.fetchers[1]} {
		s.stop(v, 20*time.Second)
		s.startAgain(v)
		l.waitOK(time.Now(), 5, time.Minute)
	}
	l.stop()

	answers := l.snapshot()
	var ids []string
	for _, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("callback %s answered %d (0: no ingress answered)", a.taskID, a.status)
			continue
		}
		ids = append(ids, a.taskID)
	}
	t.Logf("%d callbacks through the rolling restart", len(answers))
	ready := s.waitStatus(ids, "ready", 3*time.Minute)
	for _, id := range ids {
		s.verifyFiles(l.tasks[id], ready[id])
	}
	s.checkEvents(ids, nil)
}
