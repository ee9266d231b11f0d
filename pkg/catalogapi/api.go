// Package catalogapi serves the fetcher's HTTP contract (DESIGN.md, "Fetcher
// HTTP contract"): the catalog's entries, their stored files with Range
// support, dead letters, and the health, readiness and metrics endpoints.
//
// A file is served only when the catalog lists it in a ready entry, so a
// client never receives a file that is still being written or verified.
package catalogapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/veo4k/veo4k/pkg/catalog"
	"github.com/veo4k/veo4k/pkg/storage"
)

// DeadLetter describes a callback that exhausted its deliveries.
type DeadLetter struct {
	TaskID   string    `json:"taskId"`
	Index    int       `json:"index"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	FailedAt time.Time `json:"failedAt"`
}

// DeadLetters lists dead letters and hands one back to the fetcher.
type DeadLetters interface {
	List(ctx context.Context) ([]DeadLetter, error)
	// Replay returns an error wrapping catalog.ErrNotFound when there is no
	// such dead letter.
	Replay(ctx context.Context, k catalog.Key) error
}

// Config is what the API serves from.
type Config struct {
	// Catalog and Storage are required.
	Catalog catalog.Catalog
	Storage *storage.Local
	// DeadLetters may be nil: the dead-letter endpoints then answer 501.
	DeadLetters DeadLetters
	// Ready reports why the process cannot serve (e.g. catalog unreachable,
	// NATS disconnected); nil means always ready.
	Ready func(context.Context) error
	// Gatherer is served on /metrics; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	// Log records server-side failures; nil discards them.
	Log *zap.Logger
}

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// API is the fetcher's HTTP handler.
type API struct {
	cfg  Config
	log  *zap.Logger
	echo *echo.Echo
}

// New builds the API's routes.
func New(cfg Config) *API {
	a := &API{cfg: cfg, log: cfg.Log}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = a.handleError
	e.GET("/v1/videos", a.listVideos)
	e.GET("/v1/videos/:taskId", a.getVideo)
	e.GET("/v1/videos/:taskId/files/:name", a.getFile)
	e.HEAD("/v1/videos/:taskId/files/:name", a.getFile)
	e.GET("/v1/deadletters", a.listDeadLetters)
	e.POST("/v1/deadletters/:taskId/replay", a.replayDeadLetter)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", a.ready)
	if cfg.Gatherer != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	}
	a.echo = e
	return a
}

// ServeHTTP serves the API's routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.echo.ServeHTTP(w, r) }

// Errors the handlers return; handleError maps them (and the catalog's and
// storage's sentinels) to HTTP statuses.
var (
	errNotReady          = errors.New("entry is not ready")
	errFileUnknown       = errors.New("no such file in the entry")
	errNoDeadLetters     = errors.New("dead letters are not available in this process")
	errNoSuchDeadLetter  = errors.New("no such dead letter")
	errStoredFileDamaged = errors.New("stored file does not match the catalog")
)

// badRequest is a client error with a message meant for the client.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// statusOf is the one place errors become HTTP statuses and client messages.
func statusOf(err error) (int, string) {
	var br badRequest
	var he *echo.HTTPError
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, br.msg
	case errors.Is(err, catalog.ErrBadCursor):
		return http.StatusBadRequest, "invalid cursor: pass the nextCursor of the previous page"
	case errors.Is(err, storage.ErrInvalidKey):
		return http.StatusBadRequest, "invalid task id or index"
	case errors.Is(err, errNoSuchDeadLetter):
		return http.StatusNotFound, errNoSuchDeadLetter.Error()
	case errors.Is(err, catalog.ErrNotFound):
		return http.StatusNotFound, "entry not found"
	case errors.Is(err, errNotReady), errors.Is(err, errFileUnknown), errors.Is(err, storage.ErrInvalidName):
		return http.StatusNotFound, "file not found"
	case errors.Is(err, errNoDeadLetters):
		return http.StatusNotImplemented, errNoDeadLetters.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request cancelled or timed out"
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, "not found"
		case http.StatusMethodNotAllowed:
			return he.Code, "method not allowed"
		}
		return he.Code, fmt.Sprint(he.Message)
	}
	return http.StatusInternalServerError, "internal error"
}

func (a *API) handleError(err error, c echo.Context) {
	code, msg := statusOf(err)
	if code >= http.StatusInternalServerError {
		a.log.Error("request failed", zap.String("method", c.Request().Method),
			zap.String("path", c.Request().URL.Path), zap.Int("status", code), zap.Error(err))
	}
	if c.Response().Committed {
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, errorBody{Error: msg})
}

// param returns a path parameter decoded: Echo routes on the escaped path
// when the request has one, and leaves its parameters escaped.
func param(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", badRequest{fmt.Sprintf("invalid %s: bad escaping", name)}
	}
	return u, nil
}

// key reads :taskId and ?index= (default 0) and validates them as the ingress does.
func key(c echo.Context) (catalog.Key, error) {
	id, err := param(c, "taskId")
	if err != nil {
		return catalog.Key{}, err
	}
	if !storage.ValidTaskID(id) {
		return catalog.Key{}, badRequest{"invalid task id: want 1 to 128 of A-Z a-z 0-9 _ -"}
	}
	k := catalog.Key{TaskID: id}
	if s := c.QueryParam("index"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > storage.MaxIndex {
			return catalog.Key{}, badRequest{fmt.Sprintf("invalid index %q: want an integer from 0 to %d", s, storage.MaxIndex)}
		}
		k.Index = n
	}
	return k, nil
}

func (a *API) listVideos(c echo.Context) error {
	q := catalog.ListQuery{
		Status: catalog.Status(c.QueryParam("status")),
		Cursor: c.QueryParam("cursor"),
	}
	if q.Status != "" && !q.Status.Valid() {
		return badRequest{fmt.Sprintf("invalid status %q: want pending, downloading, ready, unavailable or failed", q.Status)}
	}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return badRequest{fmt.Sprintf("invalid limit %q: want a positive integer (at most %d are returned)", s, catalog.MaxLimit)}
		}
		q.Limit = min(n, catalog.MaxLimit)
	}
	p, err := a.cfg.Catalog.List(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := pageView{Items: make([]entryView, 0, len(p.Items)), NextCursor: p.NextCursor}
	for _, e := range p.Items {
		out.Items = append(out.Items, viewOf(e))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getVideo(c echo.Context) error {
	k, err := key(c)
	if err != nil {
		return err
	}
	e, err := a.cfg.Catalog.Get(c.Request().Context(), k)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(e))
}

func (a *API) getFile(c echo.Context) error {
	k, err := key(c)
	if err != nil {
		return err
	}
	name, err := param(c, "name")
	if err != nil {
		return err
	}
	if !storage.ValidName(name) {
		return errFileUnknown
	}
	e, err := a.cfg.Catalog.Get(c.Request().Context(), k)
	if err != nil {
		return err
	}
	if e.Status != catalog.Ready {
		return errNotReady
	}
	var file *catalog.File
	for i := range e.Files {
		if e.Files[i].Name == name {
			file = &e.Files[i]
			break
		}
	}
	if file == nil {
		return errFileUnknown
	}
	f, err := a.cfg.Storage.Open(file.Location)
	if err != nil {
		return fmt.Errorf("serving %s/%d/%s: %w", k.TaskID, k.Index, name, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("serving %s/%d/%s: %w", k.TaskID, k.Index, name, err)
	}
	// Never serve something other than what the catalog verified.
	if !fi.Mode().IsRegular() || fi.Size() != file.Bytes {
		return fmt.Errorf("serving %s/%d/%s: %w (size %d, catalog %d)", k.TaskID, k.Index, name,
			errStoredFileDamaged, fi.Size(), file.Bytes)
	}
	h := c.Response().Header()
	ct := file.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set(echo.HeaderContentType, ct)
	h.Set("X-Content-Type-Options", "nosniff")
	if file.SHA256 != "" {
		h.Set("ETag", strconv.Quote(file.SHA256))
	}
	http.ServeContent(c.Response(), c.Request(), name, fi.ModTime(), f)
	return nil
}

func (a *API) ready(c echo.Context) error {
	if a.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if err := a.cfg.Ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unready", "reason": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (a *API) listDeadLetters(c echo.Context) error {
	if a.cfg.DeadLetters == nil {
		return errNoDeadLetters
	}
	items, err := a.cfg.DeadLetters.List(c.Request().Context())
	if err != nil {
		return fmt.Errorf("listing dead letters: %w", err)
	}
	if items == nil {
		items = []DeadLetter{}
	}
	return c.JSON(http.StatusOK, map[string][]DeadLetter{"items": items})
}

// replayResponse answers a successful replay.
type replayResponse struct {
	Status string `json:"status"`
	TaskID string `json:"taskId"`
	Index  int    `json:"index"`
}

func (a *API) replayDeadLetter(c echo.Context) error {
	if a.cfg.DeadLetters == nil {
		return errNoDeadLetters
	}
	k, err := key(c)
	if err != nil {
		return err
	}
	if err := a.cfg.DeadLetters.Replay(c.Request().Context(), k); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: %w", errNoSuchDeadLetter, err)
		}
		return fmt.Errorf("replaying dead letter %s/%d: %w", k.TaskID, k.Index, err)
	}
	return c.JSON(http.StatusAccepted, replayResponse{Status: "replayed", TaskID: k.TaskID, Index: k.Index})
}
