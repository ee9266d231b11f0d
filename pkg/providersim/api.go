package providersim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// routes maps the simulator's endpoints.
func (s *Sim) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/veo/get-4k-video", s.handleGet4K)
	mux.HandleFunc("GET /api/v1/veo/record-info", s.handleRecordInfo)
	mux.HandleFunc("GET /files/{taskId}/{index}/{name}", s.serveFile)
	mux.HandleFunc("POST /sim/tasks", s.handleCreateTask)
	mux.HandleFunc("GET /sim/tasks/{taskId}", s.handleGetTask)
	mux.HandleFunc("PATCH /sim/tasks/{taskId}", s.handlePatchTask)
	mux.HandleFunc("POST /sim/tasks/{taskId}/callback", s.handleCallback)
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiAnswer is the provider API's envelope: business codes travel in the
// body with HTTP 200, except 401 which is also the HTTP status.
type apiAnswer struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data"`
}

// authorised checks the bearer key; on failure it has answered 401.
func (s *Sim) authorised(w http.ResponseWriter, r *http.Request) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" || (s.cfg.APIKey != "" && key != s.cfg.APIKey) {
		writeJSON(w, http.StatusUnauthorized, apiAnswer{Code: 401, Msg: "You do not have access permissions"})
		return false
	}
	return true
}

type fourKData struct {
	TaskID     string   `json:"taskId"`
	ResultURLs []string `json:"resultUrls"`
	ImageURLs  []string `json:"imageUrls"`
}

// handleGet4K answers POST /api/v1/veo/get-4k-video: the first request for
// (taskId, index) starts a task that completes after CompleteAfter and calls
// back callBackUrl; later ones answer 422 with its progress.
func (s *Sim) handleGet4K(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	var req struct {
		TaskID      string `json:"taskId"`
		Index       int    `json:"index"`
		CallBackURL string `json:"callBackUrl"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.TaskID == "" {
		writeJSON(w, http.StatusOK, apiAnswer{Code: 400, Msg: "taskId is required"})
		return
	}
	if t, err := s.Task(req.TaskID, req.Index); err == nil {
		switch t.State {
		case StateProcessing:
			writeJSON(w, http.StatusOK, apiAnswer{Code: 422, Msg: MsgProcessing,
				Data: fourKData{TaskID: t.TaskID}})
		case StateSuccess:
			writeJSON(w, http.StatusOK, apiAnswer{Code: 422, Msg: MsgGenerated,
				Data: fourKData{TaskID: t.TaskID, ResultURLs: t.VideoURLs, ImageURLs: t.ImageURLs}})
		default:
			writeJSON(w, http.StatusOK, apiAnswer{Code: 500, Msg: MsgUnavailable, Data: fourKData{TaskID: t.TaskID}})
		}
		return
	}
	spec := TaskSpec{TaskID: req.TaskID, Index: req.Index, CallbackURL: req.CallBackURL}
	if req.CallBackURL == "" {
		spec.Callback = CallbackNone
	}
	if _, err := s.addTask(spec, true); err != nil {
		code := 500
		if errors.Is(err, ErrInvalid) {
			code = 422
		}
		writeJSON(w, http.StatusOK, apiAnswer{Code: code, Msg: err.Error()})
		return
	}
	s.log.Info("4k requested", zap.String("task_id", req.TaskID), zap.Int("index", req.Index))
	s.background(func() { s.complete(req.TaskID, req.Index) })
	writeJSON(w, http.StatusOK, apiAnswer{Code: 200, Msg: "success", Data: fourKData{TaskID: req.TaskID}})
}

// complete finishes a processing task after CompleteAfter and calls back.
func (s *Sim) complete(taskID string, index int) {
	timer := time.NewTimer(s.cfg.CompleteAfter)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	t := s.tasks[taskKey{taskID, index}]
	t.state = StateSuccess
	t.completed = time.Now().UTC().Truncate(time.Second)
	callback := t.spec.Callback
	s.mu.Unlock()
	if callback == CallbackNone {
		return
	}
	if _, err := s.SendCallback(s.ctx, taskID, index); err != nil {
		s.log.Warn("callback not delivered", zap.String("task_id", taskID), zap.Int("index", index), zap.Error(err))
	}
}

const providerTime = "2006-01-02 15:04:05"

// handleRecordInfo answers GET /api/v1/veo/record-info?taskId=&index=.
func (s *Sim) handleRecordInfo(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	index, _ := strconv.Atoi(r.URL.Query().Get("index"))
	t, err := s.Task(r.URL.Query().Get("taskId"), index)
	if err != nil {
		writeJSON(w, http.StatusOK, apiAnswer{Code: 404, Msg: "record not found"})
		return
	}
	type response struct {
		TaskID     string   `json:"taskId"`
		ResultURLs []string `json:"resultUrls"`
		ImageURLs  []string `json:"imageUrls"`
		Resolution string   `json:"resolution"`
	}
	data := struct {
		TaskID       string    `json:"taskId"`
		SuccessFlag  int       `json:"successFlag"`
		Response     *response `json:"response"`
		ErrorCode    *int      `json:"errorCode"`
		ErrorMessage string    `json:"errorMessage"`
		CreateTime   string    `json:"createTime"`
		CompleteTime *string   `json:"completeTime"`
	}{TaskID: t.TaskID, CreateTime: t.CreatedAt.Format(providerTime)}
	if !t.CompletedAt.IsZero() {
		ct := t.CompletedAt.Format(providerTime)
		data.CompleteTime = &ct
	}
	switch t.State {
	case StateSuccess:
		data.SuccessFlag = 1
		res := &response{TaskID: t.TaskID, ResultURLs: t.VideoURLs, ImageURLs: t.ImageURLs}
		for _, f := range t.Files {
			if f.Kind == "video" && f.Width > 0 {
				res.Resolution = strconv.Itoa(f.Width) + "x" + strconv.Itoa(f.Height)
				break
			}
		}
		data.Response = res
	case StateUnavailable:
		data.SuccessFlag = 2
		code := 500
		data.ErrorCode = &code
		data.ErrorMessage = MsgUnavailable
	}
	writeJSON(w, http.StatusOK, apiAnswer{Code: 200, Msg: "success", Data: data})
}

// handleCreateTask answers POST /sim/tasks: it adds the task from a JSON
// TaskSpec and, unless its callback is "none", sends the callback(s) in the
// background. 201 with the Task.
func (s *Sim) handleCreateTask(w http.ResponseWriter, r *http.Request) {
	var spec TaskSpec
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decoding task spec: " + err.Error()})
		return
	}
	t, err := s.AddTask(spec)
	if err != nil {
		writeError(w, err)
		return
	}
	if spec.Callback != CallbackNone {
		s.sendAsync(t.TaskID, t.Index)
	}
	writeJSON(w, http.StatusCreated, t)
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrExists):
		status = http.StatusConflict
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrGaveUp):
		status = http.StatusBadGateway
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// indexParam reads ?index= (default 0).
func indexParam(r *http.Request) (int, bool) {
	v := r.URL.Query().Get("index")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

func (s *Sim) handleGetTask(w http.ResponseWriter, r *http.Request) {
	index, ok := indexParam(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad index"})
		return
	}
	t, err := s.Task(r.PathValue("taskId"), index)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// handlePatchTask answers PATCH /sim/tasks/{taskId}?index=: a JSON Faults
// object whose present fields replace the task's; counters restart.
func (s *Sim) handlePatchTask(w http.ResponseWriter, r *http.Request) {
	index, ok := indexParam(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad index"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading body: " + err.Error()})
		return
	}
	err = s.updateFaults(r.PathValue("taskId"), index, func(f *Faults) error {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(f); err != nil {
			return errors.Join(ErrInvalid, err)
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := s.Task(r.PathValue("taskId"), index)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// handleCallback answers POST /sim/tasks/{taskId}/callback?index=: it sends
// the callback again, waits for the outcome and answers the CallbackResult
// (200 when every copy was accepted, 502 when some were not).
func (s *Sim) handleCallback(w http.ResponseWriter, r *http.Request) {
	index, ok := indexParam(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad index"})
		return
	}
	res, err := s.SendCallback(r.Context(), r.PathValue("taskId"), index)
	switch {
	case errors.Is(err, ErrGaveUp):
		writeJSON(w, http.StatusBadGateway, res)
	case err != nil:
		writeError(w, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
