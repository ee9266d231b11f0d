//go:build system

package systemtest

import (
	"fmt"
	"testing"
	"time"
)

// waitServed waits until the simulator has served at least min bytes of
// each file, i.e. the downloads are under way.
func (s *stack) waitServed(paths []string, min int64, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.stats()
		done := true
		for _, p := range paths {
			if st.Files[p].BytesServed < min {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("downloads of %v not under way after %v: %+v", paths, timeout, st.Files)
		}
		poll()
	}
}

func videoPaths(tasks ...simTask) []string {
	var out []string
	for _, task := range tasks {
		for _, f := range task.Files {
			if f.Kind == "video" {
				out = append(out, task.path(f))
			}
		}
	}
	return out
}

// TestFetcherKilledMidDownload: the fetcher downloading a large, slow file
// is killed (SIGKILL) → the other fetcher completes it, resuming with Range
// from the partial file on the shared volume; the file is byte-identical
// and there is exactly one VideoCataloged.
func TestFetcherKilledMidDownload(t *testing.T) {
	t.Parallel()
	const size = 24_000_000
	s := newStack(t, stackOptions{})
	first, second := s.fetchers[0], s.fetchers[1]
	// Only the first fetcher runs when the callback arrives, so it is the
	// one downloading.
	s.stop(second, 15*time.Second)

	task := s.createTask(map[string]any{"taskId": "killed-1", "videoBytes": size, "noImages": true,
		"faults": map[string]any{"rateBytesPerSec": 1_500_000}})
	video := videoPaths(task)
	s.waitServed(video, size/4, 2*time.Minute)

	s.startAgain(second)
	s.kill(first)
	s.fetchers = []*svc{second} // the catalog API is read through the survivor

	e := s.waitStatus([]string{task.TaskID}, "ready", 4*time.Minute)[task.TaskID]
	s.verifyFiles(task, e)

	fs := s.stats().Files[video[0]]
	if fs.Full != 1 || fs.Partial < 1 || fs.RangeRequests < 1 {
		t.Errorf("video requests %+v: want the first full one and at least one Range resume", fs)
	}
	if fs.BytesServed >= 2*size {
		t.Errorf("%d bytes served for a %d-byte file: the download restarted from zero", fs.BytesServed, size)
	}
	s.checkEvents([]string{task.TaskID}, nil)
}

// TestNATSRestartedMidDownload: NATS restarts while the fetchers are in the
// middle of downloads → every download finishes or resumes; every entry is
// ready with the exact bytes and exactly one VideoCataloged.
func TestNATSRestartedMidDownload(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	var tasks []simTask
	var ids []string
	for i := range 6 {
		task := s.createTask(map[string]any{"taskId": fmt.Sprintf("natsrestart-%d", i), "videoBytes": 6_000_000,
			"faults": map[string]any{"rateBytesPerSec": 1_000_000}})
		tasks = append(tasks, task)
		ids = append(ids, task.TaskID)
	}
	s.waitServed(videoPaths(tasks...), 500_000, 2*time.Minute)
	for i, id := range ids {
		if e, ok := s.entry(i, id); ok && e.Status == "ready" {
			t.Fatalf("%s already ready before NATS restarts: the test would prove nothing", id)
		}
	}

	s.stop(s.nats, 5*time.Second)
	s.startAgain(s.nats)

	ready := s.waitStatus(ids, "ready", 4*time.Minute)
	for _, task := range tasks {
		s.verifyFiles(task, ready[task.TaskID])
	}
	s.checkEvents(ids, nil)
}

// TestProviderNetworkCut: the fetchers lose the provider's network in the
// middle of downloads and get it back later → they retry and complete;
// files byte-identical, one VideoCataloged each. A short cut is ridden out
// by TCP itself; a cut longer than the fetcher's idle-read timeout (60 s)
// breaks the connections, so the downloads must resume with Range.
func TestProviderNetworkCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		outage     time.Duration
		wantResume bool
	}{
		{"short", 10 * time.Second, false},
		{"longer than the idle-read timeout", 75 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOptions{})
			var tasks []simTask
			var ids []string
			for i := range 4 {
				task := s.createTask(map[string]any{"taskId": fmt.Sprintf("netcut-%d", i), "videoBytes": 8_000_000,
					"faults": map[string]any{"rateBytesPerSec": 1_000_000}})
				tasks = append(tasks, task)
				ids = append(ids, task.TaskID)
			}
			s.waitServed(videoPaths(tasks...), 1_000_000, 2*time.Minute)

			for _, f := range s.fetchers {
				s.disconnect(f)
			}
			<-time.After(tc.outage) // the outage
			for _, f := range s.fetchers {
				s.reconnect(f)
			}

			ready := s.waitStatus(ids, "ready", 5*time.Minute)
			for _, task := range tasks {
				s.verifyFiles(task, ready[task.TaskID])
			}
			if tc.wantResume {
				st := s.stats()
				for _, p := range videoPaths(tasks...) {
					if fs := st.Files[p]; fs.Partial == 0 || fs.BytesServed >= 2*8_000_000 {
						t.Errorf("%s: %+v: want a Range resume, not a download from zero", p, fs)
					}
				}
			}
			s.checkEvents(ids, nil)
		})
	}
}
