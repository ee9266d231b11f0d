//go:build system

package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestDuplicateStorm: 500 callbacks for 50 entries, each sent 10 times at
// once through 2 ingress containers → every answer 200, 50 entries, one
// download per file, 50 VideoCataloged events.
func TestDuplicateStorm(t *testing.T) {
	t.Parallel()
	const entries, copies = 50, 10
	s := newStack(t, stackOptions{ingress: 2})

	tasks := make([]simTask, entries)
	ids := make([]string, entries)
	for i := range tasks {
		tasks[i] = s.createTask(map[string]any{"taskId": fmt.Sprintf("storm-%02d", i),
			"videoBytes": 64_000 + i*1000, "callback": "none"})
		ids[i] = tasks[i].TaskID
	}

	// All 500 callbacks in flight together, alternating between the ingresses.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	statuses := make(map[int]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for c := 0; c < copies; c++ {
		for i, task := range tasks {
			ingress := s.ingress[(c+i)%len(s.ingress)]
			wg.Go(func() {
				<-start
				code, err := sendCallback(ctx, hc, ingress.url, task)
				if err != nil {
					t.Errorf("callback %s via %s: %v", task.TaskID, ingress.name, err)
				}
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			})
		}
	}
	close(start)
	wg.Wait()
	if got, want := statuses[http.StatusOK], entries*copies; got != want {
		t.Errorf("callbacks answered 200: %d of %d (statuses %v)", got, want, statuses)
	}

	ready := s.waitStatus(ids, "ready", 3*time.Minute)
	for _, task := range tasks {
		s.verifyFiles(task, ready[task.TaskID])
	}

	// Exactly 50 entries in the catalog.
	var page struct {
		Items      []catalogEntry `json:"items"`
		NextCursor string         `json:"nextCursor"`
	}
	if code := s.do(http.MethodGet, s.fetchers[0].url+"/v1/videos?limit=100", nil, &page); code != http.StatusOK {
		t.Fatalf("GET /v1/videos: status %d", code)
	}
	if got, want := len(page.Items), entries; got != want || page.NextCursor != "" {
		t.Errorf("catalog lists %d entries (next cursor %q), want %d", got, page.NextCursor, want)
	}

	// One download per file: the simulator answered each file once.
	st := s.stats()
	for _, task := range tasks {
		for _, f := range task.Files {
			fs := st.Files[task.path(f)]
			if got, want := fs.Full+fs.Partial, int64(1); got != want {
				t.Errorf("%s: %d downloads (%+v), want %d", f.URL, got, fs, want)
			}
		}
	}

	s.checkEvents(ids, nil)
}
