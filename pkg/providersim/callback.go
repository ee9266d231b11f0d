package providersim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/signature"
)

// The provider's messages (PROVIDER.md).
const (
	MsgSuccess     = "4K Video generated successfully."
	MsgUnavailable = "The 4K version of this video is unavailable. Please try a different video."
	MsgProcessing  = "4k is processing. It should be ready in 5-10 minutes..."
	MsgGenerated   = "The video has been generated successfully"
)

// CallbackResult reports one SendCallback: every copy (duplicate) sent and
// every delivery attempt of each.
type CallbackResult struct {
	TaskID string `json:"taskId"`
	Index  int    `json:"index"`
	URL    string `json:"url"`
	// Copies is how many copies were sent (TaskSpec.Duplicates).
	Copies int `json:"copies"`
	// Attempts counts deliveries over all copies; each copy makes at most
	// MaxCallbackAttempts.
	Attempts int `json:"attempts"`
	// Delivered counts copies answered 200; GaveUp those that never were.
	Delivered int `json:"delivered"`
	GaveUp    int `json:"gaveUp"`
	// Statuses lists each attempt's HTTP status (0: no answer), in order per copy.
	Statuses []int `json:"statuses"`
	// Errors lists transport errors of failed attempts.
	Errors []string `json:"errors,omitempty"`
	// LastStatus is the status of the last attempt to finish.
	LastStatus int `json:"lastStatus"`
}

// SendCallback sends the task's callback as the provider does: to its
// callback URL, signed per the task's Signature mode, TaskSpec.Duplicates
// times (concurrently if Concurrent), each copy retried after a non-200 or
// a timeout up to MaxCallbackAttempts deliveries in total. The result is
// also recorded in Stats. It returns ErrGaveUp if any copy was never accepted.
func (s *Sim) SendCallback(ctx context.Context, taskID string, index int) (CallbackResult, error) {
	s.mu.Lock()
	t, ok := s.tasks[taskKey{taskID, index}]
	if !ok {
		s.mu.Unlock()
		return CallbackResult{}, fmt.Errorf("%w: %s index %d", ErrNotFound, taskID, index)
	}
	spec, state, view := t.spec, t.state, s.viewLocked(t)
	s.mu.Unlock()
	if state == StateProcessing {
		return CallbackResult{}, fmt.Errorf("task %s index %d is still processing", taskID, index)
	}
	body, err := callbackBody(spec, state, view)
	if err != nil {
		return CallbackResult{}, err
	}
	target := spec.CallbackURL
	if target == "" {
		target = s.cfg.CallbackBaseURL + "/" + url.PathEscape(taskID) + "?index=" + strconv.Itoa(index)
	}
	res := CallbackResult{TaskID: taskID, Index: index, URL: target, Copies: spec.Duplicates}
	copies := make([]delivery, spec.Duplicates)
	if spec.Concurrent {
		var wg sync.WaitGroup
		for i := range copies {
			wg.Go(func() { copies[i] = s.deliver(ctx, target, taskID, spec.Signature, body) })
		}
		wg.Wait()
	} else {
		for i := range copies {
			copies[i] = s.deliver(ctx, target, taskID, spec.Signature, body)
		}
	}
	var last time.Time
	for _, d := range copies {
		res.Attempts += len(d.statuses)
		res.Statuses = append(res.Statuses, d.statuses...)
		res.Errors = append(res.Errors, d.errors...)
		if d.ok {
			res.Delivered++
		} else {
			res.GaveUp++
		}
		if d.end.After(last) && len(d.statuses) > 0 {
			last, res.LastStatus = d.end, d.statuses[len(d.statuses)-1]
		}
	}
	s.mu.Lock()
	s.callbacks = append(s.callbacks, res)
	s.mu.Unlock()
	s.log.Info("callback finished", zap.String("task_id", taskID), zap.Int("index", index),
		zap.Int("copies", res.Copies), zap.Int("attempts", res.Attempts),
		zap.Int("delivered", res.Delivered), zap.Int("gave_up", res.GaveUp))
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("sending callback: %w", err)
	}
	if res.GaveUp > 0 {
		return res, fmt.Errorf("%w: %d of %d copies, statuses %v", ErrGaveUp, res.GaveUp, res.Copies, res.Statuses)
	}
	return res, nil
}

// sendAsync sends a task's callback in the background, bounded by Close.
func (s *Sim) sendAsync(taskID string, index int) {
	s.background(func() {
		if _, err := s.SendCallback(s.ctx, taskID, index); err != nil {
			s.log.Warn("callback not delivered", zap.String("task_id", taskID), zap.Int("index", index), zap.Error(err))
		}
	})
}

type delivery struct {
	statuses []int
	errors   []string
	ok       bool
	end      time.Time
}

// deliver posts one copy, retrying until a 200 or MaxCallbackAttempts.
func (s *Sim) deliver(ctx context.Context, target, taskID, sigMode string, body []byte) delivery {
	var d delivery
	for attempt := 1; attempt <= MaxCallbackAttempts; attempt++ {
		if attempt > 1 {
			timer := time.NewTimer(s.cfg.CallbackRetryDelay)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				d.end = time.Now()
				return d
			}
		}
		status, err := s.post(ctx, target, taskID, sigMode, body)
		d.statuses = append(d.statuses, status)
		if err != nil {
			d.errors = append(d.errors, err.Error())
		}
		d.end = time.Now()
		if status == http.StatusOK {
			d.ok = true
			return d
		}
		if ctx.Err() != nil {
			return d
		}
	}
	return d
}

// post makes one delivery attempt and returns the answer's status (0 if none).
func (s *Sim) post(ctx context.Context, target, taskID, sigMode string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "veo4k-providersim")
	s.sign(req, taskID, sigMode)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("posting callback: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// sign sets the signature headers per mode.
func (s *Sim) sign(req *http.Request, taskID, mode string) {
	now := time.Now()
	key := s.cfg.HMACKey
	switch mode {
	case SignatureNone:
		return
	case SignatureBad:
		key = "not-" + key + "-the-key"
	case SignatureStale:
		now = now.Add(-time.Hour)
	default:
		if key == "" {
			return
		}
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(signature.HeaderTimestamp, ts)
	req.Header.Set(signature.HeaderSignature, signature.Sign([]byte(key), taskID, ts))
}

// callbackBody returns the JSON body of the task's callback (PROVIDER.md §1).
func callbackBody(spec TaskSpec, state string, view Task) ([]byte, error) {
	var v any
	if state == StateUnavailable {
		var data any
		if spec.FailureWithData {
			data = map[string]string{"taskId": spec.TaskID}
		}
		v = struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
			Data any    `json:"data"`
		}{500, MsgUnavailable, data}
	} else if spec.SnakeCase {
		v = map[string]any{"code": 200, "msg": MsgSuccess, "data": map[string]any{
			"task_id": spec.TaskID,
			"info":    map[string]any{"result_urls": view.VideoURLs, "image_urls": view.ImageURLs},
		}}
	} else {
		v = map[string]any{"code": 200, "msg": MsgSuccess, "data": map[string]any{
			"taskId": spec.TaskID,
			"info":   map[string]any{"resultUrls": view.VideoURLs, "imageUrls": view.ImageURLs},
		}}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding callback: %w", err)
	}
	return b, nil
}
