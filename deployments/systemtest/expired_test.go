//go:build system

package systemtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/veo4k/veo4k/deployments/internal/watch"
)

// TestExpiredFilesDeadLetterReplay: the provider's files are gone (404) →
// the entry is failed with the reason, exactly one VideoFailed is announced,
// the callback is dead-lettered, and once the provider serves the file again
// a replay through the fetcher API makes the entry ready, with one
// VideoCataloged and no further VideoFailed.
func TestExpiredFilesDeadLetterReplay(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})

	task := s.createTask(map[string]any{"taskId": "expired-1", "videoBytes": 300_000,
		"faults": map[string]any{"expired": true, "expiredStatus": 404}})
	e := s.waitStatus([]string{task.TaskID}, "failed", 2*time.Minute)[task.TaskID]
	if !strings.Contains(e.Message, "404") {
		t.Errorf("failed entry's message %q does not give the 404", e.Message)
	}
	c := s.checkEvents(nil, []string{task.TaskID})
	if got := c.FailedReasons[watch.Key{TaskID: task.TaskID}]; len(got) == 1 && !strings.Contains(got[0], "404") {
		t.Errorf("VideoFailed reason %q does not give the 404", got[0])
	}

	var dls struct {
		Items []struct {
			TaskID string `json:"taskId"`
			Index  int    `json:"index"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	if code := s.do(http.MethodGet, s.fetchers[1].url+"/v1/deadletters", nil, &dls); code != http.StatusOK {
		t.Fatalf("GET /v1/deadletters: status %d", code)
	}
	found := false
	for _, d := range dls.Items {
		found = found || (d.TaskID == task.TaskID && strings.Contains(d.Reason, "404"))
	}
	if !found {
		t.Fatalf("dead letters %+v do not hold %s with the 404", dls.Items, task.TaskID)
	}

	// The provider serves the file again; the operator replays.
	s.patchFaults(task.TaskID, map[string]any{"expired": false})
	if code := s.do(http.MethodPost, s.fetchers[0].url+"/v1/deadletters/"+task.TaskID+"/replay", nil, nil); code/100 != 2 {
		t.Fatalf("replay: status %d", code)
	}
	e = s.waitStatus([]string{task.TaskID}, "ready", 2*time.Minute)[task.TaskID]
	s.verifyFiles(task, e)

	c = s.checkEvents([]string{}, nil)
	k := watch.Key{TaskID: task.TaskID}
	if got, want := c.Cataloged[k], 1; got != want {
		t.Errorf("VideoCataloged events after replay = %d, want %d", got, want)
	}
	if got, want := c.Failed[k], 1; got != want {
		t.Errorf("VideoFailed events after replay = %d, want %d (the one before)", got, want)
	}
}
