package providersim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net"
	"net/http"
	"strconv"
	"time"
)

const thumbWidth, thumbHeight = 384, 216

// thumbnail encodes a small JPEG whose colours depend on seed.
func thumbnail(seed uint64, w, h int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r0, g0, b0 := uint8(seed), uint8(seed>>8), uint8(seed>>16)
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: r0 + uint8(x*255/w), G: g0 + uint8(y*255/h), B: b0 + uint8((x+y)/4), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("encoding thumbnail: %w", err)
	}
	return buf.Bytes(), nil
}

// errDropped stops ServeContent's copy once the connection was cut on purpose.
var errDropped = errors.New("connection dropped by fault injection")

// serveFile serves GET/HEAD /files/{taskId}/{index}/{name}, applying the
// task's faults in this order: expiry, 5xx burst, then Range handling,
// throttling and dropping on the body.
func (s *Sim) serveFile(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	t, ok := s.tasks[taskKey{r.PathValue("taskId"), index}]
	var f *simFile
	if ok {
		for _, c := range t.files {
			if c.Name == r.PathValue("name") {
				f = c
			}
		}
	}
	if f == nil || t.state == StateProcessing {
		// Like the provider, no URL exists before the task completes.
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	st := s.fileStats[f.path]
	if st == nil {
		st = &FileStats{}
		s.fileStats[f.path] = st
	}
	st.Requests++
	if r.Header.Get("Range") != "" {
		st.RangeRequests++
	}
	faults := t.spec.Faults
	modified := t.completed
	expired := faults.Expired
	serverError := false
	if !expired && f.served5 < faults.ServerErrors {
		f.served5++
		serverError = true
	}
	drop := false
	if !expired && !serverError && r.Method == http.MethodGet && faults.DropAfterBytes > 0 && (faults.DropTimes <= 0 || f.drops < faults.DropTimes) {
		f.drops++
		drop = true
	}
	switch {
	case expired:
		st.Expired++
	case serverError:
		st.ServerErrors++
	}
	s.mu.Unlock()

	switch {
	case expired:
		code := faults.ExpiredStatus
		if code != http.StatusGone {
			code = http.StatusNotFound
		}
		http.Error(w, "file expired", code)
		return
	case serverError:
		code := faults.ServerErrorStatus
		if code < 500 || code > 599 {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, "temporarily unavailable", code)
		return
	}

	if faults.IgnoreRange {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
	}
	cw := &countingWriter{ResponseWriter: w, sim: s, path: f.path, rate: faults.RateBytesPerSec,
		dropAfter: -1, noRanges: faults.IgnoreRange, start: time.Now(), req: r}
	if drop {
		cw.dropAfter = faults.DropAfterBytes
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("ETag", f.etag)
	http.ServeContent(cw, r, f.Name, modified, f.content.reader())
}

// countingWriter counts body bytes and applies throttling and dropping.
type countingWriter struct {
	http.ResponseWriter
	sim       *Sim
	path      string
	req       *http.Request
	rate      int64
	dropAfter int64 // -1: never
	noRanges  bool
	start     time.Time
	written   int64
	dropped   bool
}

// WriteHeader records the answer's kind and hides Accept-Ranges when Range is ignored.
func (c *countingWriter) WriteHeader(code int) {
	if c.noRanges {
		c.Header().Del("Accept-Ranges")
	}
	c.sim.mu.Lock()
	st := c.sim.fileStats[c.path]
	switch code {
	case http.StatusOK:
		st.Full++
	case http.StatusPartialContent:
		st.Partial++
	}
	c.sim.mu.Unlock()
	c.ResponseWriter.WriteHeader(code)
}

// Write passes p on, slowed to the rate and cut at dropAfter.
func (c *countingWriter) Write(p []byte) (int, error) {
	if c.dropped {
		return 0, errDropped
	}
	total := 0
	for len(p) > 0 {
		chunk := p
		if c.rate > 0 {
			chunk = chunk[:min(int64(len(chunk)), max(c.rate/20, 1))]
		}
		cut := false
		if c.dropAfter >= 0 && c.written+int64(len(chunk)) >= c.dropAfter {
			chunk = chunk[:c.dropAfter-c.written]
			cut = true
		}
		if c.rate > 0 {
			due := c.start.Add(time.Duration(float64(c.written+int64(len(chunk))) / float64(c.rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-timer.C:
				case <-c.req.Context().Done():
					timer.Stop()
					return total, c.req.Context().Err()
				}
			}
		}
		n, err := c.ResponseWriter.Write(chunk)
		total += n
		c.written += int64(n)
		c.sim.mu.Lock()
		c.sim.fileStats[c.path].BytesServed += int64(n)
		c.sim.mu.Unlock()
		if err != nil {
			return total, err
		}
		if c.rate > 0 {
			c.Flush()
		}
		if cut {
			c.drop()
			return total, errDropped
		}
		p = p[len(chunk):]
	}
	return total, nil
}

// drop flushes what was written and closes the connection under the response.
// The drop is counted first, so that a client seeing the cut sees it counted.
func (c *countingWriter) drop() {
	c.dropped = true
	c.sim.mu.Lock()
	c.sim.fileStats[c.path].Drops++
	c.sim.mu.Unlock()
	rc := http.NewResponseController(c.ResponseWriter)
	_ = rc.Flush()
	conn, buf, err := rc.Hijack()
	if err != nil {
		// HTTP/2 or a recorder: abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	closeHijacked(conn, buf)
}

func closeHijacked(conn net.Conn, buf *bufio.ReadWriter) {
	_ = buf.Flush()
	_ = conn.Close()
}

// Flush lets throttled bodies reach the client as they are written.
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
