package ingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/veo4k/veo4k/pkg/callback"
	"github.com/veo4k/veo4k/pkg/stream"
	veo4kv1 "github.com/veo4k/veo4k/proto/veo4k/v1"
)

// maxIndex is the first index refused: indexes run 0..99.
const maxIndex = 100

// retryAfter is what a 503 tells the provider to wait, in seconds.
const retryAfter = "2"

// Outcomes, as counted in metrics and logged.
const (
	outcomeAccepted     = "accepted"
	outcomeDuplicate    = "duplicate"
	outcomeTooLarge     = "too_large"
	outcomeUnsupported  = "unsupported_media_type"
	outcomeBadRequest   = "bad_request"
	outcomeUnauthorized = "unauthorized"
	outcomeUnavailable  = "unavailable"
)

// publishOverhead bounds the NATS headers (Nats-Msg-Id, Nats-Expected-Stream)
// that travel with a callback and count against the server's max payload.
const publishOverhead = 1024

// errTooLargeToStore: the callback, encoded with its raw body, exceeds what the
// NATS server accepts in one message. Retrying cannot help, so it answers 413,
// not 503.
var errTooLargeToStore = errors.New("callback too large to store")

// Layers of deduplication, as counted in metrics.
const (
	dupMsgID      = "msg_id"
	dupPerSubject = "per_subject"
)

// answer is the body of a 200.
type answer struct {
	Status    string `json:"status"`
	TaskID    string `json:"taskId"`
	Duplicate bool   `json:"duplicate"`
}

// errorBody is the body of every non-200.
type errorBody struct {
	Error string `json:"error"`
}

// reqError is a refusal: the status it answers, and why.
type reqError struct {
	status  int
	outcome string
	msg     string
}

func refuse(status int, outcome, format string, args ...any) *reqError {
	return &reqError{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

// handleCallback runs the checks in the contract's order (size, content
// type, shape and task id, signature, the rest), publishes, and answers.
func (s *Server) handleCallback(c echo.Context) error {
	start := time.Now()
	r := c.Request()
	res := s.accept(c)

	s.metrics.requests.WithLabelValues(res.outcome).Inc()
	fields := []zap.Field{
		zap.String("task_id", res.taskID),
		zap.Int("index", res.index),
		zap.Int("status", res.status),
		zap.String("outcome", res.outcome),
		zap.Duration("latency", time.Since(start)),
		zap.String("remote", r.RemoteAddr),
	}
	if res.err != "" {
		fields = append(fields, zap.String("reason", res.err))
	}
	if res.cause != nil {
		fields = append(fields, zap.Error(res.cause))
	}
	switch {
	case res.status >= 500:
		s.log.Warn("callback", fields...)
	default:
		s.log.Info("callback", fields...)
	}

	if res.status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", retryAfter)
	}
	if res.err != "" {
		return c.JSON(res.status, errorBody{Error: res.err})
	}
	return c.JSON(res.status, answer{Status: res.outcome, TaskID: res.taskID, Duplicate: res.outcome == outcomeDuplicate})
}

// result is what one callback request came to.
type result struct {
	status  int
	outcome string
	taskID  string
	index   int
	err     string
	// cause is the internal error behind a 503, logged but not answered.
	cause error
}

func (s *Server) accept(c echo.Context) result {
	res := result{index: -1}
	rec, outcome, e := s.check(c, &res)
	if e != nil {
		res.status, res.outcome, res.err = e.status, e.outcome, e.msg
		return res
	}
	dup, layer, err := s.publish(c.Request().Context(), rec, outcome)
	if errors.Is(err, errTooLargeToStore) {
		res.status, res.outcome, res.err = http.StatusRequestEntityTooLarge, outcomeTooLarge, err.Error()
		return res
	}
	if err != nil {
		res.status, res.outcome, res.err = http.StatusServiceUnavailable, outcomeUnavailable,
			"the callback could not be stored: JetStream did not confirm it in time; retry later"
		res.cause = err
		return res
	}
	res.status, res.outcome = http.StatusOK, outcomeAccepted
	if dup {
		res.outcome = outcomeDuplicate
		s.metrics.duplicates.WithLabelValues(layer).Inc()
	}
	return res
}

// check runs every check and builds the message to publish. It fills res's
// task id and index as soon as they are known, for the log line.
func (s *Server) check(c echo.Context, res *result) (*veo4kv1.CallbackReceived, stream.Outcome, *reqError) {
	r := c.Request()
	received := s.now()

	// 1. Size.
	body, e := s.readBody(r)
	if e != nil {
		return nil, "", e
	}

	// 2. Content type.
	if e := checkContentType(r.Header.Get(echo.HeaderContentType)); e != nil {
		return nil, "", e
	}

	// 3. Shape, task id and index.
	pathID, e := pathTaskID(c)
	if e != nil {
		return nil, "", e
	}
	index, e := parseIndex(r.URL.RawQuery)
	if e != nil {
		return nil, "", e
	}
	res.index = index
	cb, err := callback.Parse(body)
	if err != nil {
		return nil, "", refuse(http.StatusBadRequest, outcomeBadRequest, "%v", err)
	}
	taskID := cb.TaskID
	switch {
	case taskID == "" && pathID == "":
		return nil, "", refuse(http.StatusBadRequest, outcomeBadRequest,
			"no task id: neither data.taskId/data.task_id in the body nor %s/{taskId} in the path", CallbackPath)
	case taskID == "":
		taskID = pathID
	case pathID != "" && pathID != taskID:
		return nil, "", refuse(http.StatusBadRequest, outcomeBadRequest,
			"task id in the path %q and in the body %q differ", pathID, taskID)
	}
	res.taskID = taskID

	// 4. Signature, over the task id that identifies the entry.
	verified := false
	if s.verifier.Enabled() {
		err := s.verifier.Verify(taskID, r.Header.Get("X-Webhook-Timestamp"), r.Header.Get("X-Webhook-Signature"), received)
		if err != nil {
			return nil, "", refuse(http.StatusUnauthorized, outcomeUnauthorized, "signature refused: %v", err)
		}
		verified = true
	}

	// 5. The rest.
	if err := cb.Validate(); err != nil {
		return nil, "", refuse(http.StatusBadRequest, outcomeBadRequest, "%v", err)
	}

	outcome := stream.Failure
	if cb.Success() {
		outcome = stream.Success
	}
	return &veo4kv1.CallbackReceived{
		TaskId:            taskID,
		Index:             uint32(index),
		Code:              cb.Code,
		Msg:               cb.Msg,
		VideoUrls:         cb.VideoURLs,
		ImageUrls:         cb.ImageURLs,
		ReceivedAt:        timestamppb.New(received),
		SignatureVerified: verified,
		RawBody:           body,
	}, outcome, nil
}

// readBody reads at most MaxBodyBytes; one byte more means 413.
func (s *Server) readBody(r *http.Request) ([]byte, *reqError) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, refuse(http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than %d bytes", limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case int64(buf.Len()) > limit || errors.As(err, &mbe):
		return nil, refuse(http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than %d bytes", limit)
	case err != nil:
		return nil, refuse(http.StatusBadRequest, outcomeBadRequest, "reading body: %v", err)
	}
	return buf.Bytes(), nil
}

func checkContentType(ct string) *reqError {
	if ct == "" {
		return refuse(http.StatusUnsupportedMediaType, outcomeUnsupported, "content type missing: send application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return refuse(http.StatusUnsupportedMediaType, outcomeUnsupported, "content type %q is not application/json", truncate(ct))
	}
	return nil
}

// pathTaskID is the percent-decoded task id of the path, "" on the route
// without one. Echo hands over the raw (still encoded) segment when the
// request's URL has a RawPath.
func pathTaskID(c echo.Context) (string, *reqError) {
	id := c.Param("taskId")
	if id == "" {
		return "", nil
	}
	if c.Request().URL.RawPath != "" {
		dec, err := url.PathUnescape(id)
		if err != nil {
			return "", refuse(http.StatusBadRequest, outcomeBadRequest, "task id in the path is not valid percent-encoding")
		}
		id = dec
	}
	if !callback.ValidTaskID(id) {
		return "", refuse(http.StatusBadRequest, outcomeBadRequest,
			"task id in the path %q must match ^[A-Za-z0-9_-]{1,128}$", truncate(id))
	}
	return id, nil
}

// parseIndex reads ?index=N: absent means 0; otherwise exactly one decimal
// integer in 0..99.
func parseIndex(rawQuery string) (int, *reqError) {
	if !strings.Contains(rawQuery, "index") {
		return 0, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, refuse(http.StatusBadRequest, outcomeBadRequest, "query string does not parse")
	}
	vals, ok := q["index"]
	if !ok {
		return 0, nil
	}
	bad := refuse(http.StatusBadRequest, outcomeBadRequest, "index must be one integer from 0 to 99, got %q", truncate(strings.Join(vals, ",")))
	if len(vals) != 1 || vals[0] == "" || len(vals[0]) > 3 {
		return 0, bad
	}
	n := 0
	for i := 0; i < len(vals[0]); i++ {
		ch := vals[0][i]
		if ch < '0' || ch > '9' {
			return 0, bad
		}
		n = n*10 + int(ch-'0')
	}
	if n >= maxIndex {
		return 0, bad
	}
	return n, nil
}

// publish stores rec and waits for the PubAck. It reports a duplicate when
// JetStream already holds the entry: a PubAck marked Duplicate (the Msg-Id
// window), or the refusal of the stream's per-subject guard.
func (s *Server) publish(ctx context.Context, rec *veo4kv1.CallbackReceived, o stream.Outcome) (dup bool, layer string, err error) {
	data, err := proto.Marshal(rec)
	if err != nil {
		return false, "", fmt.Errorf("encoding callback: %w", err)
	}
	if max := s.nc.MaxPayload(); max > 0 && int64(len(data))+publishOverhead > max {
		return false, "", fmt.Errorf("%w: %d bytes with its metadata, the NATS server takes at most %d", errTooLargeToStore, len(data), max)
	}
	idx := int(rec.GetIndex())
	msg := &nats.Msg{
		Subject: stream.CallbackSubject(rec.GetTaskId(), idx, o),
		Header:  nats.Header{},
		Data:    data,
	}
	msg.Header.Set(jetstream.MsgIDHeader, stream.CallbackMsgID(rec.GetTaskId(), idx, o))
	msg.Header.Set(jetstream.ExpectedStreamHeader, s.cfg.Stream)

	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	ack, err := s.js.PublishMsg(ctx, msg)
	s.metrics.publishSeconds.Observe(time.Since(start).Seconds())
	switch {
	case err == nil && ack.Duplicate:
		return true, dupMsgID, nil
	case err == nil:
		return false, "", nil
	case IsPerSubjectLimit(err):
		return true, dupPerSubject, nil
	default:
		return false, "", fmt.Errorf("publishing to %s: %w", msg.Subject, err)
	}
}

// perSubjectLimitMsg is the description nats-server gives the refusal of a
// message by MaxMsgsPerSubject with DiscardNewPerSubject (its
// ErrMaxMsgsPerSubject, server/store.go), sent under the API error code
// JSStreamStoreFailedF (10077), which it shares with other storage failures.
const (
	perSubjectLimitMsg                           = "maximum messages per subject exceeded"
	errCodeStreamStoreFailed jetstream.ErrorCode = 10077
)

// IsPerSubjectLimit reports whether err is JetStream refusing a publish
// because its subject already holds the most messages allowed (the permanent
// per-entry guard of VEO4K_CALLBACKS). Both the API error code and the
// description must match: the code alone also covers real storage failures,
// which must answer 503, not "duplicate".
func IsPerSubjectLimit(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == errCodeStreamStoreFailed &&
		strings.Contains(strings.ToLower(apiErr.Description), perSubjectLimitMsg)
}

func truncate(s string) string {
	const max = 160
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
